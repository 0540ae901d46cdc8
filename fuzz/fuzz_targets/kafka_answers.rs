//! Arbitrary bytes read as each answer the Kafka consumer takes from a
//! group's coordinator (`FindCoordinator`, `OffsetFetch`, `OffsetCommit`,
//! `JoinGroup`, `SyncGroup`, `Heartbeat`, `LeaveGroup`, `SaslHandshake`,
//! `SaslAuthenticate`, the members' subscriptions and assignments):
//! never a panic or an allocation beyond the answer's size, and a
//! coordinator taken is a plain host and a port.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tether_kafka::fuzz::answers(data);
});
