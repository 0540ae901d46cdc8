//! Benchmark support code, and the load generator behind the `loadgen`
//! binary.
// A measuring and testing tool, not a server: it panics where it cannot go on, and indexes its own buffers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

pub mod floor;
pub mod loadgen;
