//! Pretend tether nodes for the bridge tests: a bridge with the brokers
//! of two pretend event loops, and what the bridge posted to each loop.

#![allow(dead_code, unreachable_pub)]

#[path = "../../../hub/tests/pretend_loops/mod.rs"]
mod pretend_loops;

use std::ops::{Deref, DerefMut};

use super::support::{RedisServer, wait_until};
use tether_hub::{BrokerState, EventId};
use tether_redis::{RedisBridge, RedisBroker, RedisConfig};

#[allow(unused_imports)] // each test file uses a part
pub use pretend_loops::{Cx, LOOPS, Loops, data};

pub const PREFIX: &str = "tether-test:";

pretend_loops::bridge_node!(RedisBridge, RedisBroker, RedisConfig);

/// The ids of a stream, from Redis itself.
pub fn stream_ids(redis: &RedisServer, topic: &str) -> Vec<EventId> {
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(format!("{PREFIX}{topic}"))
        .arg("-")
        .arg("+")
        .query(&mut redis.client())
        .unwrap();
    entries.iter().map(|(id, _)| id.parse().unwrap()).collect()
}
