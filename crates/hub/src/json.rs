//! The little JSON the hub writes: string literals and control messages.

use core::fmt::Write as _;

use crate::id::EventId;

/// The event type reserved for the "you missed events" signal on event
/// streams; publishing it is refused.
pub const GAP_EVENT_TYPE: &str = "gap";

/// Appends `text` as a JSON string literal, quotes included.
pub(crate) fn push_json_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut plain = 0;
    for (i, b) in text.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[plain..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
    out.push('"');
}

/// `text` as a JSON string literal.
///
/// ```
/// assert_eq!(tether_hub::json_string("a\"b\n"), r#""a\"b\n""#);
/// ```
pub fn json_string(text: &str) -> String {
    let mut out = String::new();
    push_json_string(&mut out, text);
    out
}

/// The "you missed events" signal: some events after the id a subscriber
/// resumed from are no longer held, or the id is not one this topic knows.
///
/// What is still held follows the signal (from [`Gap::first`] on), then the
/// live events. [`Gap::resume`] is the id to resume from to get exactly
/// that again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first event still held (the first one that follows the signal),
    /// or `None` if none is.
    pub first: Option<EventId>,
    /// The id a subscriber is at once it has the signal: the last event
    /// dropped from the backlog, or [`EventId::ZERO`]; for a replay across
    /// events lost ([`Gap::lost`]), the id asked for.
    pub resume: EventId,
    /// Events known lost after the id asked for (a durable log damaged):
    /// the first and last ids lost, of the first such hole. `None` when
    /// the events missed are those dropped from the backlog.
    pub lost: Option<(EventId, EventId)>,
}

impl Gap {
    /// The signal's JSON object, as an event stream's `gap` event carries
    /// it in its data and a long poll in its `gap` field:
    /// `{"topic":"T","requested":"ID","first":"ID"|null,"resume":"ID"}`
    /// (`requested` is what the client sent, as a string), with
    /// `"lost":{"first":"ID","last":"ID"}` after `resume` when events are
    /// known lost ([`Gap::lost`]).
    ///
    /// ```
    /// use tether_hub::{EventId, Gap};
    ///
    /// let gap = Gap { first: Some(EventId::new(5, 3)), resume: EventId::new(5, 2), lost: None };
    /// assert_eq!(
    ///     gap.json("news", "4-9"),
    ///     r#"{"topic":"news","requested":"4-9","first":"5-3","resume":"5-2"}"#
    /// );
    /// let lost = Gap {
    ///     first: Some(EventId::new(5, 2)),
    ///     resume: EventId::new(5, 1),
    ///     lost: Some((EventId::new(5, 4), EventId::new(5, 6))),
    /// };
    /// assert_eq!(
    ///     lost.json("news", "5-1"),
    ///     r#"{"topic":"news","requested":"5-1","first":"5-2","resume":"5-1","lost":{"first":"5-4","last":"5-6"}}"#
    /// );
    /// ```
    pub fn json(&self, topic: &str, requested: &str) -> String {
        self.object(topic, requested, "")
    }

    /// The signal as a WebSocket control message: the object of
    /// [`Gap::json`] with `"control":"gap"` first.
    ///
    /// ```
    /// use tether_hub::{EventId, Gap};
    ///
    /// let gap = Gap { first: None, resume: EventId::ZERO, lost: None };
    /// assert_eq!(
    ///     gap.ws_json("news", "x"),
    ///     r#"{"control":"gap","topic":"news","requested":"x","first":null,"resume":"0-0"}"#
    /// );
    /// ```
    pub fn ws_json(&self, topic: &str, requested: &str) -> String {
        self.object(topic, requested, "\"control\":\"gap\",")
    }

    /// The signal as an event-stream event: type `gap`, the data of
    /// [`Gap::json`], and [`Gap::resume`] as its id, so that a client that
    /// reconnects right after it resumes without another gap.
    ///
    /// ```
    /// use tether_hub::{EventId, Gap};
    ///
    /// let gap = Gap { first: Some(EventId::new(5, 3)), resume: EventId::new(5, 2), lost: None };
    /// assert_eq!(
    ///     String::from_utf8(gap.sse("n", "1-1")).unwrap(),
    ///     "id: 5-2\nevent: gap\ndata: {\"topic\":\"n\",\"requested\":\"1-1\",\"first\":\"5-3\",\"resume\":\"5-2\"}\n\n"
    /// );
    /// ```
    pub fn sse(&self, topic: &str, requested: &str) -> Vec<u8> {
        let data = self.json(topic, requested);
        let id = self.resume.to_string();
        let mut out = Vec::with_capacity(data.len() + 40);
        // The id has no line break and the type is fixed: this cannot fail.
        let _ = tether_sse::Event::new()
            .id(&id)
            .event(GAP_EVENT_TYPE)
            .data(&data)
            .encode(&mut out);
        out
    }

    /// The signal as a multi-topic event stream sends it, but for its id:
    /// `event: gap` and the data of [`Gap::json`] (which names the
    /// topic). The stream adds its own `id: CURSOR\n\n`, the cursor with
    /// this topic at [`Gap::resume`], so that a client that reconnects
    /// right after it resumes this topic without another gap.
    ///
    /// ```
    /// use tether_hub::{EventId, Gap};
    ///
    /// let gap = Gap { first: Some(EventId::new(5, 3)), resume: EventId::new(5, 2), lost: None };
    /// assert_eq!(
    ///     String::from_utf8(gap.sse_multi("A", "1-1")).unwrap(),
    ///     "event: gap\ndata: {\"topic\":\"A\",\"requested\":\"1-1\",\"first\":\"5-3\",\"resume\":\"5-2\"}\n"
    /// );
    /// ```
    pub fn sse_multi(&self, topic: &str, requested: &str) -> Vec<u8> {
        let data = self.json(topic, requested);
        let mut out = Vec::with_capacity(data.len() + 18);
        // The type is fixed and JSON escapes line breaks: one line each.
        let _ = tether_sse::Event::new()
            .event(GAP_EVENT_TYPE)
            .data(&data)
            .encode(&mut out);
        // The encoder ends the event with its blank line; the stream's
        // id line goes before it.
        if out.ends_with(b"\n\n") {
            out.pop();
        }
        out
    }

    fn object(&self, topic: &str, requested: &str, prefix: &str) -> String {
        let mut out = String::with_capacity(96 + requested.len());
        out.push('{');
        out.push_str(prefix);
        out.push_str("\"topic\":");
        push_json_string(&mut out, topic);
        out.push_str(",\"requested\":");
        push_json_string(&mut out, requested);
        out.push_str(",\"first\":");
        match self.first {
            Some(first) => {
                let _ = write!(out, "\"{first}\"");
            }
            None => out.push_str("null"),
        }
        let _ = write!(out, ",\"resume\":\"{}\"", self.resume);
        if let Some((first, last)) = self.lost {
            let _ = write!(out, ",\"lost\":{{\"first\":\"{first}\",\"last\":\"{last}\"}}");
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{Gap, json_string};
    use crate::EventId;

    #[test]
    fn the_multi_topic_gap_takes_the_streams_id_line() {
        // A requested id with what JSON escapes, and lost events.
        let gap = Gap {
            first: None,
            resume: EventId::new(4, 1),
            lost: Some((EventId::new(4, 2), EventId::new(4, 5))),
        };
        let mut stream = gap.sse_multi("A", "~not\"a\ncursor");
        stream.extend_from_slice(b"id: ~AQHM9gvEAA\n\n");
        let mut parser = tether_sse::Parser::new();
        parser.feed(&stream);
        let Some(Ok(tether_sse::Item::Event(parsed))) = parser.poll() else {
            panic!("one event")
        };
        assert_eq!(parsed.event_type(), "gap");
        assert_eq!(parsed.data(), gap.json("A", "~not\"a\ncursor"));
        assert!(
            parsed
                .data()
                .starts_with(r#"{"topic":"A","requested":"~not\"a\ncursor","first":null"#)
        );
        assert_eq!(parsed.last_event_id(), "~AQHM9gvEAA");
        assert!(parser.poll().is_none());
    }

    #[test]
    fn escapes_what_json_requires() {
        assert_eq!(json_string(""), "\"\"");
        assert_eq!(json_string("plain é ✓"), "\"plain é ✓\"");
        assert_eq!(
            json_string("\"\\\n\r\t\u{0}\u{1f}\u{7f}"),
            "\"\\\"\\\\\\n\\r\\t\\u0000\\u001f\u{7f}\""
        );
    }
}
