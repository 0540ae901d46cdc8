//! Arbitrary bytes sent to a running hub (two loops, a publish token, a
//! short long-poll timeout, small limits) as one connection's requests:
//! the answer is a clean close or well-formed HTTP/1.1 responses, nothing
//! panics, and `GET /healthz` still answers afterwards. The proptest
//! `hub_routes` in tether-hub-app (crates/hub-app/tests/hub_routes.rs)
//! drives the same harness with structured requests.
//!
//! Seeds in `seeds/hub_routes/` are whole requests as a client sends them;
//! the publish ones carry the harness's token.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The fuzz target uses only part of what the proptest needs.
#[allow(dead_code)]
#[path = "../../crates/hub-app/tests/routes/harness.rs"]
mod harness;

/// Larger inputs only fill the server's buffers past its limits, which
/// small inputs reach already (the head limit is 4 KiB, the body 8 KiB).
const MAX_INPUT: usize = 32 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    if let Err(e) = harness::harness().exchange(data) {
        panic!("{e}");
    }
});
