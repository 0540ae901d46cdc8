//! The answer of the application's backend to a question the hub put to
//! it (may this connection in, as whom; may it subscribe), as it comes
//! back to the loop that asked (inside [`crate::ControlMessage::Decided`]).
//! How the question travels is the application's business; this is only
//! the answer, as data.

/// What the backend decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Go on, as it says.
    Allow(Allowed),
    /// Refused, with the HTTP status (400 to 499) and the reason to give.
    Deny {
        /// The status of a refused request.
        status: u16,
        /// Why, for the client (at most 123 bytes: a WebSocket close
        /// reason).
        reason: String,
    },
    /// No decision: the backend was slow, down, or answered something
    /// that is not a decision. Never taken as an allow: the client is
    /// answered 503 with `Retry-After`.
    Unavailable {
        /// Why, for the logs and the counters (`timeout`, `down`,
        /// `malformed`, `busy`, ...).
        reason: &'static str,
    },
}

/// What an allow says, each part where the question asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Allowed {
    /// Who the connection is (connect).
    pub subject: Option<String>,
    /// Patterns of the topics it may subscribe to (connect), as in a
    /// token's `tether` claim.
    pub subscribe: Vec<String>,
    /// Patterns of the topics it may publish to (connect).
    pub publish: Vec<String>,
    /// Until when (Unix seconds) it is good (connect).
    pub expires_at: Option<u64>,
    /// The data to publish in place of the data asked about (publish);
    /// the call's result, as JSON text (rpc); the topic's current value
    /// (latest).
    pub data: Option<String>,
    /// The type of the event the current value is published as (latest).
    pub event: Option<String>,
}

impl Allowed {
    /// An allow that says nothing more.
    pub fn new() -> Allowed {
        Allowed::default()
    }

    /// With who the connection is and what it may do.
    pub fn identity(
        mut self,
        subject: Option<String>,
        subscribe: Vec<String>,
        publish: Vec<String>,
    ) -> Allowed {
        self.subject = subject;
        self.subscribe = subscribe;
        self.publish = publish;
        self
    }

    /// With when it stops being good.
    pub fn expires_at(mut self, expires_at: Option<u64>) -> Allowed {
        self.expires_at = expires_at;
        self
    }

    /// With the data to publish instead.
    pub fn data(mut self, data: Option<String>) -> Allowed {
        self.data = data;
        self
    }

    /// With the type of the event its data is published as.
    pub fn event(mut self, event: Option<String>) -> Allowed {
        self.event = event;
        self
    }
}
