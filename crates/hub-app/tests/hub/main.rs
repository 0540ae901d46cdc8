//! The pub/sub hub end to end, over real sockets on one event loop, one
//! module per subject: publishing and who may, publish keys, replay over
//! SSE (header and query) and WebSocket with the gap signal, long polls,
//! tickets, the origin allowlist, the metrics page, unknown routes.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

// Shared with the other test targets of the crate, one directory up.
#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod metrics;
mod origin;
mod poll;
mod publish_keys;
mod publishing;
mod resume;
mod routes;
mod tickets;
