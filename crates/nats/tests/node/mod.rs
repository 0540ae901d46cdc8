//! Pretend tether nodes for the bridge tests: a bridge with the brokers
//! of two pretend event loops, and what the bridge posted to each loop.

#![allow(dead_code, unreachable_pub)]

#[path = "../../../hub/tests/pretend_loops/mod.rs"]
mod pretend_loops;

use std::ops::{Deref, DerefMut};

use super::support::wait_until;
use tether_hub::BrokerState;
use tether_nats::{NatsBridge, NatsBroker, NatsConfig};

#[allow(unused_imports)] // each test file uses a part
pub use pretend_loops::{Cx, LOOPS, Loops, data};

pub const PREFIX: &str = "tether-test";

/// A bridge with the brokers of two pretend loops, and what the bridge
/// posted to each loop, in order (the steps of a test on them are
/// [`Loops`]'s).
pub struct Node {
    pub bridge: NatsBridge,
    loops: Loops<NatsBroker>,
}

impl Node {
    pub fn start(url: &str, tweak: impl FnOnce(&mut NatsConfig)) -> Node {
        let mut config = NatsConfig::new(url);
        config.prefix = PREFIX.to_owned();
        tweak(&mut config);
        let bridge = NatsBridge::new(config).expect("a valid configuration");
        let (loops, posted) = Loops::new(|| bridge.broker());
        bridge
            .start(move |to, message| {
                let _ = posted.send((to, message));
            })
            .expect("the thread starts");
        let node = Node { bridge, loops };
        node.wait_for_state(BrokerState::Up);
        node
    }

    pub fn wait_for_state(&self, state: BrokerState) {
        wait_until(&format!("the bridge to be {state:?}"), || {
            self.bridge.status().state == state
        });
    }
}

impl Deref for Node {
    type Target = Loops<NatsBroker>;

    fn deref(&self) -> &Self::Target {
        &self.loops
    }
}

impl DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.loops
    }
}
