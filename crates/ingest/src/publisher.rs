//! What a source hands each event to, and what it is told back.

/// One event to publish, borrowed from the source's own record of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The topic to publish to.
    pub topic: &'a str,
    /// The event type (`None`: the hub's default, `message`).
    pub event_type: Option<&'a str>,
    /// The event's data.
    pub data: &'a str,
    /// The publish key: the same each time the source hands over the same
    /// event (after a crash between the publish and the source's record
    /// that it was done), so that a publisher that remembers keys makes no
    /// second event.
    pub key: &'a str,
}

/// What became of one publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged (or recognised as a duplicate of an acknowledged
    /// one): the source may record it as done.
    Published,
    /// Refused for good (a bad topic, an event too large, a namespace
    /// that takes no publishes), for this reason: publishing it again
    /// would be refused again.
    Refused(String),
    /// Not published now (the hub is shutting down, its bus is away, no
    /// answer came): the source publishes it again, after a backoff,
    /// before anything after it.
    Unavailable(String),
}

/// Publishes a source's events, one at a time, in the source's order;
/// each call returns once the publish is acknowledged or refused. Runs on
/// the source's thread.
pub trait Publisher: Send + 'static {
    /// Publishes `event`.
    fn publish(&mut self, event: &Event<'_>) -> Outcome;
}

impl<F> Publisher for F
where
    F: FnMut(&Event<'_>) -> Outcome + Send + 'static,
{
    fn publish(&mut self, event: &Event<'_>) -> Outcome {
        self(event)
    }
}
