//! What tether's sources of events from outside the hub share (a
//! PostgreSQL outbox, Kafka topics): the [`Event`] each publishes, the
//! [`Outcome`] its [`Publisher`] answers, its thread ([`Worker`]) and
//! the [`StopSignal`] it watches, the [`HealthCell`] its health is shared in, and
//! [`write_metric`] for its counters.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

mod health;
mod metrics;
mod publisher;
mod stop;
mod worker;

pub use health::HealthCell;
pub use metrics::write_metric;
pub use publisher::{Event, Outcome, Publisher};
pub use stop::StopSignal;
pub use worker::Worker;
