//! Decisions the hub leaves to the application's backend: who a
//! connection is (connect), whether it may subscribe to a topic
//! (subscribe), whether, and as what, a publish goes out (publish),
//! what a client's call answers (rpc), and what the current value of a
//! latest-value topic with no event is (latest).
//! The hub puts a
//! [`Question`] to a [`Backend`] and never waits on its loop: the request
//! is held ([`tether_server::Reply::Hold`]) until the answer comes back as
//! a post, and a backend that is slow, down or busy is a 503 with
//! `Retry-After`, never an allow.

use std::fmt;
use std::time::Duration;

use tether_hub::Decision;

/// The kinds of question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Who is this connection (a request that presents no credential).
    Connect,
    /// May it subscribe to this topic (namespaces with `subscribe=hook`).
    Subscribe,
    /// May this be published, and as what (namespaces with
    /// `publish=hook`).
    Publish,
    /// A later expiry for a connection the backend let in, about to
    /// expire.
    Refresh,
    /// A client's call: its answer goes back to that caller alone.
    Rpc,
    /// The current value of a latest-value topic with no event, published
    /// to it.
    Latest,
}

impl Hook {
    /// Every kind, in a fixed order.
    pub const ALL: [Hook; 6] = [
        Hook::Connect,
        Hook::Subscribe,
        Hook::Publish,
        Hook::Refresh,
        Hook::Rpc,
        Hook::Latest,
    ];

    /// Its name, as in metrics and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Connect => "connect",
            Hook::Subscribe => "subscribe",
            Hook::Publish => "publish",
            Hook::Refresh => "refresh",
            Hook::Rpc => "rpc",
            Hook::Latest => "latest",
        }
    }
}

/// A question to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Question {
    /// Who is this: the request's transport (`websocket`, `sse`, `poll`,
    /// `presence`, `http`), its topic, and the header fields and cookies
    /// the backend was configured to see.
    Connect {
        /// How it connects.
        transport: &'static str,
        /// The topic it asks for.
        topic: Option<String>,
        /// The peer's IP address, as text: the TCP or QUIC peer, which
        /// behind a proxy is the proxy (forward the proxy's header, such
        /// as `x-forwarded-for`, for the client's).
        remote: Option<String>,
        /// The forwarded header fields, names in lower case.
        headers: Vec<(String, String)>,
        /// The forwarded cookies.
        cookies: Vec<(String, String)>,
    },
    /// May `subject` subscribe to `topic` over `transport`.
    Subscribe {
        /// Who, if anyone is known.
        subject: Option<String>,
        /// The topic.
        topic: String,
        /// How.
        transport: &'static str,
    },
    /// May `subject` publish `data` (of type `event`) to `topic`; an allow
    /// may give other data to publish instead.
    Publish {
        /// Who, if anyone is known.
        subject: Option<String>,
        /// The topic.
        topic: String,
        /// The event's data.
        data: String,
        /// The event's type, if it is not the default one.
        event: Option<String>,
        /// `Some("base64")` when the publish is binary and `data` its
        /// bytes in base64.
        encoding: Option<&'static str>,
    },
    /// Until when may `subject`'s connection, let in by the connect hook
    /// and about to expire, stay (an allow says a later expiry).
    Refresh {
        /// Who.
        subject: String,
        /// How it is connected.
        transport: &'static str,
    },
    /// `subject` (over `transport`) calls `method` with `data`: an allow
    /// carries the result, as JSON text, in [`tether_hub::Allowed::data`];
    /// a refusal is the caller's error.
    Rpc {
        /// Who calls, if anyone is known.
        subject: Option<String>,
        /// How (`websocket`, or `http` for `POST /rpc`).
        transport: &'static str,
        /// The method's name (1 to 64 bytes of letters, digits and
        /// `._-:/`).
        method: String,
        /// The call's data (JSON `null` when it had none).
        data: serde_json::Value,
    },
    /// What is the current value of `topic`, a latest-value topic with no
    /// event that a subscriber arrived at from nowhere: an allow's
    /// [`tether_hub::Allowed::data`] (and `event`) is published to it,
    /// unless an event came meanwhile.
    Latest {
        /// The topic.
        topic: String,
    },
}

impl Question {
    /// Its kind.
    pub fn hook(&self) -> Hook {
        match self {
            Question::Connect { .. } => Hook::Connect,
            Question::Subscribe { .. } => Hook::Subscribe,
            Question::Publish { .. } => Hook::Publish,
            Question::Refresh { .. } => Hook::Refresh,
            Question::Rpc { .. } => Hook::Rpc,
            Question::Latest { .. } => Hook::Latest,
        }
    }
}

/// The backend has as many questions outstanding from this loop as it
/// takes: the client is answered 503 at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Where the answer to a question goes: called once, on any thread.
pub type AnswerTo = Box<dyn FnOnce(Decision) + Send>;

/// What answers the hub's questions: the application's backend over HTTP
/// (the `tether` binary's `--hook-*` options), or an embedder's own code.
/// Its methods are called on the event loops and must not block.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Whether it answers questions of this kind (none that it does not
    /// answer is put to it).
    fn answers(&self, hook: Hook) -> bool;

    /// Puts `question`, from the loop `loop_index`; `answer` is called
    /// exactly once with the decision (a backend that cannot decide in
    /// time answers [`Decision::Unavailable`]). [`Busy`] when this loop
    /// already has as many questions outstanding as the backend takes;
    /// `answer` is then dropped uncalled.
    ///
    /// # Errors
    ///
    /// [`Busy`], as above.
    fn ask(&self, loop_index: usize, question: Question, answer: AnswerTo) -> Result<(), Busy>;

    /// The longest it takes to answer (its timeout): a request waits this
    /// long, and a little more, before it is answered 503.
    fn timeout(&self) -> Duration;

    /// The request header fields (lower-case names) that a connect
    /// question carries.
    fn forwarded_headers(&self) -> &[String];

    /// The cookies that a connect question carries.
    fn forwarded_cookies(&self) -> &[String];
}
