//! Benchmark support code, and the load generator behind the `loadgen`
//! binary.
// A measuring and testing tool, not a server: it stops with a panic on what
// it cannot go on from, and indexes buffers it built itself.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

pub mod floor;
pub mod loadgen;
