//! Where a subscriber starts in its topic.

/// Where a subscriber starts: after an id it names, or, from nowhere (no
/// id), at the topic's next event or at its latest one.
///
/// ```
/// use tether_hub::Start;
///
/// assert_eq!(Start::from_last_id(Some("5-1"), true), Start::After("5-1"));
/// assert_eq!(Start::from_last_id(None, true), Start::Latest);
/// assert_eq!(Start::from_last_id(None, false), Start::Next);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start<'a> {
    /// From nowhere: nothing replayed, live from the topic's next event.
    Next,
    /// From nowhere: the topic's latest event replayed (if it has one and
    /// its backlog still holds it), then live. For topics whose latest
    /// event is a value a page shows at once (a score, a price).
    Latest,
    /// Resuming after this id (`Last-Event-ID`, `lastEventId`, `since`,
    /// as the client sent it): exactly what follows it, or a gap signal.
    After(&'a str),
}

impl<'a> Start<'a> {
    /// After `last_id` when there is one; else [`Start::Latest`] where
    /// `latest` (the topic replays its latest event), [`Start::Next`]
    /// where not.
    pub fn from_last_id(last_id: Option<&'a str>, latest: bool) -> Start<'a> {
        match last_id {
            Some(id) => Start::After(id),
            None if latest => Start::Latest,
            None => Start::Next,
        }
    }

    /// The id it resumes after, if any.
    pub fn last_id(self) -> Option<&'a str> {
        match self {
            Start::After(id) => Some(id),
            Start::Next | Start::Latest => None,
        }
    }
}
