//! A transactional outbox for PostgreSQL: the application writes each
//! event as a row of an outbox table in the same transaction as the data
//! it is about, and a [`Consumer`] reads the rows in order, hands each to
//! a [`Publisher`], and deletes it once the publish is acknowledged. A
//! transaction that rolls back publishes nothing; a crash anywhere loses
//! nothing; a row published again after a crash between its publish and
//! its deletion carries the same publish key, so a publisher that
//! remembers keys (tether's hub does) makes no second event.
//!
//! - **The table** is the application's: create it with the SQL of
//!   [`TableName::schema`] in its own migrations. An insert notifies the
//!   consumer (a trigger, `NOTIFY`); it also polls, every
//!   [`OutboxConfig::poll_interval`].
//! - **One consumer per table at a time**: a consumer takes a
//!   session-level advisory lock on the table before reading it; the
//!   others stand by and take over when its connection ends. So the rows
//!   are published in the table's order (by `id`), and per topic in that
//!   order, whatever the number of nodes.
//! - **Rows refused for good** (a bad topic, too large) are marked
//!   failed (`failed_at`, `failure`) and kept; the rows after them go on.
//!   Rows the publisher cannot take now wait, and those after them too.
//!
//! The consumer runs on a thread of its own, with a blocking client
//! (`postgres`); TLS to the database with rustls (`?sslmode=require`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

mod config;
mod consumer;
mod error;
mod publisher;
mod stats;
mod table;

pub use config::OutboxConfig;
pub use consumer::{Consumer, OutboxWatch};
pub use error::Error;
pub use publisher::{OutboxEvent, Outcome, Publisher};
pub use stats::{Health, Stats};
pub use table::{MAX_TABLE_NAME_LEN, TableName};
