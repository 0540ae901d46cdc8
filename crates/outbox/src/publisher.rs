//! What the consumer hands each row to, and what it is told back.

/// One pending row of the outbox, as the consumer hands it to its
/// [`Publisher`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// The row's id (its place in the table's order).
    pub id: i64,
    /// The topic to publish to.
    pub topic: String,
    /// The event type (`None`: the hub's default, `message`).
    pub event_type: Option<String>,
    /// The event's data.
    pub data: String,
    /// The publish key: the row's own, or `outbox:TABLE:ID`. Publishing
    /// the row again with it (after a crash between the publish and the
    /// row's deletion) makes no second event.
    pub key: String,
}

/// What became of one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged (or recognised as a duplicate of an acknowledged
    /// one): the row is deleted.
    Published,
    /// Refused for good (a bad topic, an event too large, a namespace
    /// that takes no publishes): the row is marked failed with this
    /// reason and left in the table, and the rows after it go on.
    Refused(String),
    /// Not published now (the hub is shutting down, its bus is away, no
    /// answer came): the row stays pending and is published again, after
    /// a backoff, before any row after it.
    Unavailable(String),
}

/// Publishes the outbox's rows, one at a time, in the table's order; each
/// call returns once the publish is acknowledged or refused. Runs on the
/// consumer's thread.
pub trait Publisher: Send + 'static {
    /// Publishes `event`.
    fn publish(&mut self, event: &OutboxEvent) -> Outcome;
}

impl<F> Publisher for F
where
    F: FnMut(&OutboxEvent) -> Outcome + Send + 'static,
{
    fn publish(&mut self, event: &OutboxEvent) -> Outcome {
        self(event)
    }
}
