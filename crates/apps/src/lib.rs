//! Ready-made tether applications, each an [`App`](tether_server::App)
//! on `tether-server`: the pub/sub hub ([`HubApp`]: HTTP publish,
//! WebSocket and SSE subscribe, long poll, tickets, metrics; its topics,
//! ids and backlogs are `tether-hub`'s sans-IO core), an echo (what
//! Autobahn|Testsuite runs against), a chat room, a clock feed, and the
//! demo that serves them with a page that uses the hub.
//!
//! The hub is its own crate, `tether-hub-app`, re-exported here.
//!
//! `tether-server` knows none of them: they use only its public
//! interface, as an embedder's own application does.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

// Everything here handles bytes and numbers from the network: nothing may
// panic on them. These lints make every exception visible, each `allow`
// with its reason beside it (tests are exempt).
mod chat;
mod clock;
mod demo;
mod echo;
mod mount;

pub use chat::Chat;
pub use clock::Clock;
pub use demo::{DEFAULT_DEMO_TOKEN_TTL, Demo, DemoLogin, MAX_DEMO_NAME_LEN, MAX_DEMO_TEXT_LEN};
pub use echo::Echo;
pub use mount::{Mount, MountState};
pub use tether_hub_app::{
    AnswerTo, Backend, Busy, DEFAULT_AUTH_TIMEOUT, DEFAULT_PER_LOOP, DEFAULT_REVOCATION_TTL,
    DEFAULT_TOKEN_COOKIE, Hook, HttpBackend, HubApp, HubAuth, HubPublisher, HubSettings, HubShared,
    MAX_REVOCATIONS, Namespace, Origins, PublishError, PublishFuture, PublishRate, Question, Revocation,
    RevocationListFull, Revoked, UnknownNamespace, WhoPublishes, WhoSubscribes,
};
