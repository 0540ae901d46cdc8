#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
mod broker;
mod record;
mod sync;

pub use broker::{DurableBroker, DurableConfig, Recovered};
/// The log's fsync policy ([`DurableConfig::fsync`]).
pub use tether_log::Fsync;
