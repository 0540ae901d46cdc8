//! What the bridge tests share: the patience of a hang guard and a wait.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

/// How long anything may take before a test gives up (a hang guard).
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until `done`, failing the test after [`PATIENCE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
