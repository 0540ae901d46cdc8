//! What the consumer hands each row to, and what it is told back (the
//! [`Outcome`] every source of tether-ingest shares).

pub use tether_ingest::Outcome;

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

impl OutboxEvent {
    /// The row as the event every source hands over (`tether-ingest`).
    pub fn event(&self) -> tether_ingest::Event<'_> {
        tether_ingest::Event {
            topic: &self.topic,
            event_type: self.event_type.as_deref(),
            data: &self.data,
            key: &self.key,
        }
    }
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
