//! Many topics on one WebSocket (`GET /ws`) end to end, over real
//! sockets: each subscription with its own position (replay, gap
//! signal), rights, namespace, ticket, hook decision and presence; a
//! refusal is an answer and the others keep flowing; publishing with
//! acknowledgements; tokens replaced, expired and revoked; the limits and
//! hostile messages; the server subscribing and unsubscribing a live
//! socket. One module per subject.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

// Shared with the other test targets of the crate, one directory up.
#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod auth;
mod hooks;
mod hostile;
mod polls;
mod presence;
mod publish;
mod server_side;
mod streams;
mod topics;
