//! The policy of tether's clients, written once and driven by two I/O
//! drivers: `tether-client` (blocking threads and mio loops) and
//! `tether-tokio` (async).
//!
//! - [`url`]: the target URL: `ws`, `wss`, `http`, `https`; host (IPv6
//!   literals in brackets), port defaults, path and query, no user
//!   information, the fragment kept apart; and references (a redirect's
//!   `Location`) resolved against it.
//! - [`redirect`]: after a 3xx, follow to which URL and with which of the
//!   caller's headers, or refuse and why (no `Location`, too many hops,
//!   `https` to `http`, a scheme the client cannot use).
//! - [`event_source`]: the EventSource's reconnection: what a response
//!   head means (open, stop, redirect, fail), the wait before the next
//!   attempt (the reconnection time that `retry:` sets, bounded, plus a
//!   backoff after connections that delivered nothing), when to give up,
//!   and which `Last-Event-ID` is sent.
//! - [`limits`]: the defaults of the clients' limits.
//!
//! **Calling contract** (the same in every sans-IO crate of tether): no
//! threads, files, sockets or clocks inside; the driver does the I/O,
//! passes in what happened (a response head, an event, the end of a
//! stream, a network error) and gets back what to do next, with any wait
//! as a [`Duration`](std::time::Duration) that the driver sleeps itself.
//!
//! ```
//! use tether_client_core::event_source::{Head, Reconnection};
//! use tether_client_core::redirect::Redirects;
//! use tether_client_core::url::{Scheme, Url};
//!
//! let url = Url::parse("http://example.com/events")?;
//! let mut redirects = Redirects::new(&url, 20);
//! let mut policy = Reconnection::new();
//! match policy.head(302, None) {
//!     Head::Redirect => {
//!         let next = redirects.follow(&url, 302, Some("https://cdn.example.com/e"), &[Scheme::Http, Scheme::Https])?;
//!         assert_eq!(next.to_string(), "https://cdn.example.com/e");
//!         // Another origin: the caller's credentials stay behind.
//!         assert!(!redirects.sends("Authorization"));
//!     }
//!     other => unreachable!("{other:?}"),
//! }
//! # Ok::<(), tether_client_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod event_source;
pub mod limits;
pub mod redirect;
pub mod url;

pub use error::Error;

/// The README's example, run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
