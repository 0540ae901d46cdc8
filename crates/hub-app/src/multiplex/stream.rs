//! What a multi-topic event stream (`GET /events?topic=A&topic=B`) keeps
//! beside its subscriptions: its list of topics, in the order the cursor
//! is made for, and the cursor itself, moved by each event or gap signal
//! it writes and written after it as its `id:` line.

use std::sync::Arc;

use tether_hub::{Cursor, EventId};

/// A multi-topic event stream's topics and cursor. A topic's subscription
/// is numbered its place in the list plus one, so that a delivery finds
/// its position without a search.
#[derive(Debug)]
pub(crate) struct StreamCursor {
    topics: Box<[Arc<str>]>,
    cursor: Cursor,
    /// The `id:` line's bytes, reused from one event to the next.
    line: Vec<u8>,
}

impl StreamCursor {
    /// The cursor of `topics`, every position empty.
    pub(crate) fn new(topics: Vec<Arc<str>>) -> StreamCursor {
        StreamCursor {
            cursor: Cursor::new(topics.iter()),
            topics: topics.into_boxed_slice(),
            line: Vec::new(),
        }
    }

    /// Reads a client's `Last-Event-ID` into the positions (all of them,
    /// or none on an error).
    pub(crate) fn resume(&mut self, text: &str) -> Result<(), tether_hub::Error> {
        self.cursor.decode(text)
    }

    pub(crate) fn topics(&self) -> &[Arc<str>] {
        &self.topics
    }

    /// The subscription number of `topic`: its place in the list plus one.
    pub(crate) fn number_of(&self, topic: &str) -> Option<u16> {
        let index = self.topics.iter().position(|t| **t == *topic)?;
        u16::try_from(index + 1).ok()
    }

    /// The position of subscription `number`.
    pub(crate) fn position(&self, number: u16) -> Option<EventId> {
        let index = usize::from(number).checked_sub(1)?;
        self.cursor.positions().get(index).copied().flatten()
    }

    /// Moves subscription `number`'s position to `id`.
    pub(crate) fn set(&mut self, number: u16, id: EventId) {
        if let Some(index) = usize::from(number).checked_sub(1)
            && let Some(slot) = self.cursor.positions_mut().get_mut(index)
        {
            *slot = Some(id);
        }
    }

    /// The cursor as the `id:` line that ends an event (`id: CURSOR`, then
    /// the blank line), in a buffer of the stream's own.
    pub(crate) fn id_line(&mut self) -> Arc<[u8]> {
        self.line.clear();
        self.line.extend_from_slice(b"id: ");
        self.cursor.encode(&mut self.line);
        self.line.extend_from_slice(b"\n\n");
        Arc::from(&self.line[..])
    }

    /// The cursor's text, as a long poll answers it in `next`.
    pub(crate) fn text(&self) -> String {
        self.cursor.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_places_in_the_list_and_the_line_carries_every_position() {
        let mut stream = StreamCursor::new(vec![Arc::from("a"), Arc::from("b")]);
        assert_eq!((stream.number_of("a"), stream.number_of("b")), (Some(1), Some(2)));
        assert_eq!(stream.number_of("c"), None);
        assert_eq!((stream.position(0), stream.position(3)), (None, None));
        stream.set(2, EventId::new(5, 1));
        stream.set(0, EventId::new(9, 9));
        stream.set(3, EventId::new(9, 9));
        assert_eq!(
            (stream.position(1), stream.position(2)),
            (None, Some(EventId::new(5, 1)))
        );
        let line = stream.id_line();
        let text = std::str::from_utf8(&line).unwrap();
        let cursor = text.strip_prefix("id: ").unwrap().strip_suffix("\n\n").unwrap();
        assert_eq!(cursor, stream.text());
        let mut again = StreamCursor::new(vec![Arc::from("a"), Arc::from("b")]);
        again.resume(cursor).unwrap();
        assert_eq!(again.position(2), Some(EventId::new(5, 1)));
        // Another list's cursor changes nothing.
        let mut other = StreamCursor::new(vec![Arc::from("b"), Arc::from("a")]);
        assert!(other.resume(cursor).is_err());
        assert_eq!(other.position(1), None);
    }
}
