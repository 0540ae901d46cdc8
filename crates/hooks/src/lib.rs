//! The client side of decisions by the application's backend ("proxy
//! hooks"): the hub asks the deployer's backend over HTTP who a connection
//! is ([`HookKind::Connect`]), whether a subject may read a topic
//! ([`HookKind::Subscribe`]), whether and what it may publish
//! ([`HookKind::Publish`]), for a later expiry
//! ([`HookKind::Refresh`]), what a client's call answers
//! ([`HookKind::Rpc`]), and what a topic's current value is
//! ([`HookKind::Latest`]). The JSON contract a backend implements is in
//! the crate's README.
//!
//! # Calling contract
//!
//! - [`Hooks::start`] checks a [`Config`] and starts the worker threads
//!   (one keep-alive HTTP/1.1 connection per backend each, plain `http://`
//!   only). Keep the [`Hooks`] for the life of the server; dropping it (or
//!   [`Hooks::shutdown`]) stops them.
//! - Each event loop takes its own [`HookQueue`] with
//!   [`Hooks::queue`]`(bound)`: at most `bound` of its asks are
//!   outstanding, so one busy loop cannot starve the others.
//! - [`HookQueue::ask`] never blocks: it queues the ask and returns its id,
//!   or refuses at once ([`AskError::Busy`] and the others; the callback is
//!   then dropped uncalled). An accepted ask's callback is called exactly
//!   once, on a worker thread, with an [`Answer`]: a [`Decision`] (allow
//!   or deny) or [`Unavailable`] with its reason. Post it back to the
//!   loop; do not block in it.
//! - [`Unavailable`] is never an allow: the hub answers 503 with
//!   `Retry-After` (or closes a WebSocket with 1013).
//! - [`parse_answer`] is the answer grammar on its own, without I/O.
//!
//! ```no_run
//! use std::time::Duration;
//! use tether_hooks::{Config, HookKind, HookRequest, Hooks, SubscribeRequest, Transport};
//!
//! let config = Config::new()
//!     .hook(HookKind::Subscribe, "http://127.0.0.1:8080/tether/subscribe", Duration::from_secs(1))?;
//! let hooks = Hooks::start(config)?;
//! let queue = hooks.queue(1024); // one per event loop
//! let request = HookRequest::Subscribe(SubscribeRequest {
//!     subject: Some("u1".into()),
//!     topic: "chat.7".into(),
//!     transport: Transport::WebSocket,
//! });
//! let (tx, rx) = std::sync::mpsc::channel();
//! match queue.ask(request, None, move |answer| { let _ = tx.send(answer); }) {
//!     Ok(_id) => println!("{:?}", rx.recv()),
//!     Err(refused) => println!("503: {refused}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

mod answer;
mod config;
mod endpoint;
mod error;
mod exchange;
mod job;
mod outage;
mod pool;
mod protocol;
mod shared;
mod stats;
mod worker;

pub use answer::{
    Allow, Answer, Decision, Deny, Grant, MAX_PATTERNS, MAX_REASON_LEN, MAX_SUBJECT_LEN, Unavailable,
    parse_answer,
};
pub use config::{
    Config, ConfigError, DEFAULT_MAX_BODY, DEFAULT_QUEUE_BOUND, DEFAULT_TIMEOUT, DEFAULT_WORKERS, HookTarget,
};
pub use endpoint::Endpoint;
pub use pool::{AskError, HookQueue, Hooks};
pub use protocol::{
    ConnectRequest, HookKind, HookRequest, LatestRequest, PublishRequest, RefreshRequest, RpcRequest,
    SubscribeRequest, Transport,
};
pub use stats::{LATENCY_BOUNDS_MS, Stats, UnavailableCounts};
