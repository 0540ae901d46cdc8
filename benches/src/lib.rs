//! Benchmark support code, and the load generator behind the `loadgen`
//! binary.

pub mod floor;
pub mod loadgen;
