//! The hub asking the application's backend (through the `Backend` trait,
//! here an in-process one that answers from its own threads, as the HTTP
//! hooks do), one module per hook: who a request without credentials is
//! (connect), who may subscribe where a namespace says `subscribe=hook`,
//! whether and as what a publish goes out where one says `publish=hook`,
//! whether a connection may stay (refresh), and the server API beside
//! them; and what happens when the backend refuses, is slow, or is busy;
//! over every transport, through sockets, on two event loops.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// Shared with the other test targets of the crate, one directory up.
#[path = "../support/mod.rs"]
mod support;

mod helpers;

mod api;
mod connect;
mod latency;
mod multiplexed;
mod publish;
mod refresh;
mod subscribe;
