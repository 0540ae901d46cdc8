//! Pretend tether nodes for the bridge tests: a bridge with the brokers
//! of two pretend event loops, and what the bridge posted to each loop.

#![allow(dead_code, unreachable_pub)]

#[path = "../../../hub/tests/pretend_loops/mod.rs"]
mod pretend_loops;

use std::ops::{Deref, DerefMut};

use super::support::wait_until;
use tether_hub::BrokerState;
use tether_rabbitmq::{RabbitBridge, RabbitBroker, RabbitConfig};

#[allow(unused_imports)] // each test file uses a part
pub use pretend_loops::{Cx, LOOPS, Loops, data};

/// Each test's prefix is its own (one broker serves them all); the
/// macro's `Node::start` sets this one, which a test's tweak replaces.
pub const PREFIX: &str = "tether-test";

pretend_loops::bridge_node!(RabbitBridge, RabbitBroker, RabbitConfig);
