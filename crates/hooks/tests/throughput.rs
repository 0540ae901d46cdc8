//! Many decisions a second: 30 000 asks from 4 loops against a fast
//! backend (in Rust: the Python one is the bottleneck well below 10 000 a
//! second), every one answered allow with its own id. The rate is
//! printed, never asserted.
// Tests may panic on what they check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use support::drive::drive;
use support::fast_backend::FastBackend;
use tether_hooks::{Config, HookKind, Hooks};

#[test]
fn thirty_thousand_asks_each_answered_with_its_own_id() {
    let backend = FastBackend::start();
    let config = Config::new()
        .hook(
            HookKind::Connect,
            &backend.url("/connect"),
            Duration::from_secs(30),
        )
        .unwrap();
    let hooks = Hooks::start(config).unwrap();
    let (loops, per_loop) = (4, 7500);
    let took = drive(&hooks, loops, per_loop, 256);
    let total = loops * per_loop;
    let stats = hooks.stats();
    assert_eq!(stats.asked, total as u64);
    assert_eq!(stats.allowed, total as u64);
    assert_eq!(stats.answered(), total as u64);
    println!(
        "{total} decisions in {took:?}: {:.0} decisions/s (16 workers, 4 loops of 256)",
        total as f64 / took.as_secs_f64()
    );
}
