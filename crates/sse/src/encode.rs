//! The encoder: what a server writes.

use alloc::vec::Vec;

use crate::error::Error;
use crate::scan::{find_eol, split_eol};

/// One event to send, with borrowed fields, built like
/// `Event::new().id("7").event("tick").data("...")`.
///
/// Every field is optional. [`Event::encode`] writes the comment lines, then
/// `retry`, `id`, `event` and the `data` lines, then the blank line that
/// makes a client dispatch the event. An event without data dispatches
/// nothing on the client, but its `id` still becomes the client's last event
/// ID.
///
/// Data that contains line breaks (CRLF, CR or LF) is written as one `data`
/// line per line, which a client joins back with LF: it receives the same
/// string with every line break turned into LF (the format has no way to
/// carry a CR). Values are always written after `": "`, so a value that
/// starts with a space survives the one space a client strips.
///
/// ```
/// use tether_sse::Event;
///
/// let mut out = Vec::new();
/// Event::new().id("7").event("tick").data("line one\nline two").encode(&mut out)?;
/// assert_eq!(out, b"id: 7\nevent: tick\ndata: line one\ndata: line two\n\n");
/// # Ok::<(), tether_sse::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event<'a> {
    id: Option<&'a str>,
    event: Option<&'a str>,
    data: Option<&'a str>,
    retry: Option<u64>,
    comment: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// An event with no fields: it encodes as a lone blank line.
    pub const fn new() -> Self {
        Event {
            id: None,
            event: None,
            data: None,
            retry: None,
            comment: None,
        }
    }

    /// Sets the event ID. An empty ID resets the client's last event ID.
    /// It must not contain CR, LF or NUL ([`Event::encode`] checks).
    pub const fn id(mut self, id: &'a str) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the event type; clients treat an empty type as `"message"`.
    /// It must not contain CR or LF ([`Event::encode`] checks).
    pub const fn event(mut self, event_type: &'a str) -> Self {
        self.event = Some(event_type);
        self
    }

    /// Sets the data; any string is fine, including line breaks and the
    /// empty string (which still dispatches an event, with empty data).
    pub const fn data(mut self, data: &'a str) -> Self {
        self.data = Some(data);
        self
    }

    /// Sets the reconnection time hint, in milliseconds.
    pub const fn retry(mut self, ms: u64) -> Self {
        self.retry = Some(ms);
        self
    }

    /// Adds a comment, written before the fields as one `:` line per line
    /// of `text`. Clients ignore it.
    pub const fn comment(mut self, text: &'a str) -> Self {
        self.comment = Some(text);
        self
    }

    /// Checks that the event can be encoded: the errors [`Event::encode`]
    /// would return.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(id) = self.id {
            if find_eol(id.as_bytes()).is_some() {
                return Err(Error::IdContainsLineBreak);
            }
            if id.as_bytes().contains(&0) {
                return Err(Error::IdContainsNul);
            }
        }
        if let Some(event) = self.event
            && find_eol(event.as_bytes()).is_some()
        {
            return Err(Error::EventTypeContainsLineBreak);
        }
        Ok(())
    }

    /// Appends the encoded event to `out`.
    ///
    /// Allocates nothing of its own (only `out` may grow). Validation comes
    /// first, so on error `out` is left exactly as it was.
    ///
    /// # Errors
    ///
    /// [`Error::IdContainsLineBreak`], [`Error::IdContainsNul`] and
    /// [`Error::EventTypeContainsLineBreak`]: written as is, such a value
    /// would let one field inject others.
    ///
    /// ```
    /// use tether_sse::{Error, Event};
    ///
    /// let mut out = b"kept".to_vec();
    /// let bad = Event::new().id("1\nevent: spoofed").data("x");
    /// assert_eq!(bad.encode(&mut out), Err(Error::IdContainsLineBreak));
    /// assert_eq!(out, b"kept");
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        self.validate()?;
        out.reserve(self.size_hint());
        if let Some(text) = self.comment {
            comment(text, out);
        }
        if let Some(ms) = self.retry {
            retry(ms, out);
        }
        if let Some(id) = self.id {
            field(b"id", id.as_bytes(), out);
        }
        if let Some(event) = self.event {
            field(b"event", event.as_bytes(), out);
        }
        if let Some(data) = self.data {
            for_each_line(data.as_bytes(), |line| field(b"data", line, out));
        }
        out.push(b'\n');
        Ok(())
    }

    /// About the encoded length (exact when no value holds a line break or
    /// is empty, with the `retry` line counted at its longest), so that one
    /// `reserve` usually covers the whole event.
    fn size_hint(&self) -> usize {
        let len = |name: &[u8], v: Option<&str>| v.map_or(0, |v| name.len() + 3 + v.len());
        len(b"", self.comment)
            + self.retry.map_or(0, |_| 28)
            + len(b"id", self.id)
            + len(b"event", self.event)
            + len(b"data", self.data)
            + 1
    }
}

/// Appends a comment: one `:` line per line of `text` (an empty `text`
/// gives a bare `:` line). Clients ignore comments; servers send them to
/// keep idle connections open. Safe to write between any two events.
///
/// ```
/// let mut out = Vec::new();
/// tether_sse::comment("still here", &mut out);
/// assert_eq!(out, b": still here\n");
/// ```
pub fn comment(text: &str, out: &mut Vec<u8>) {
    for_each_line(text.as_bytes(), |line| {
        out.push(b':');
        if !line.is_empty() {
            out.push(b' ');
            out.extend_from_slice(line);
        }
        out.push(b'\n');
    });
}

/// Appends the shortest heartbeat, a bare `:` comment line.
///
/// ```
/// let mut out = Vec::new();
/// tether_sse::heartbeat(&mut out);
/// assert_eq!(out, b":\n");
/// ```
pub fn heartbeat(out: &mut Vec<u8>) {
    out.extend_from_slice(b":\n");
}

/// Appends a `retry` line: the client waits `ms` milliseconds before it
/// reconnects. A client applies it as soon as it reads the line, so it is
/// safe to write between any two events.
///
/// ```
/// let mut out = Vec::new();
/// tether_sse::retry(3000, &mut out);
/// assert_eq!(out, b"retry: 3000\n");
/// ```
pub fn retry(ms: u64, out: &mut Vec<u8>) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = ms;
    for digit in digits.iter_mut().rev() {
        // n % 10 < 10: the narrowing is exact.
        *digit = b'0' + u8::try_from(n % 10).unwrap_or_default();
        at -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    field(b"retry", digits.get(at..).unwrap_or_default(), out);
}

/// Writes `name: value` (or `name:` for an empty value) and a LF.
#[inline]
fn field(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(name);
    if value.is_empty() {
        out.push(b':');
    } else {
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
    }
    out.push(b'\n');
}

/// Calls `f` with each line of `text`, split on CRLF, CR and LF the way the
/// parser splits them, so that a client sees the same line structure.
#[inline]
fn for_each_line(text: &[u8], mut f: impl FnMut(&[u8])) {
    let mut rest = text;
    while let Some((line, eol)) = split_eol(rest) {
        f(line);
        rest = match eol {
            [b'\r', b'\n', after @ ..] | [_, after @ ..] => after,
            [] => eol,
        };
    }
    f(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn encoded(event: Event<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        event.encode(&mut out).unwrap();
        out
    }

    #[test]
    fn fields_in_a_fixed_order_then_a_blank_line() {
        let event = Event::new().data("d").event("e").id("i").retry(5).comment("c");
        assert_eq!(encoded(event), b": c\nretry: 5\nid: i\nevent: e\ndata: d\n\n");
    }

    #[test]
    fn empty_event_is_a_blank_line() {
        assert_eq!(encoded(Event::new()), b"\n");
    }

    #[test]
    fn empty_values_have_no_trailing_space() {
        assert_eq!(
            encoded(Event::new().id("").event("").data("")),
            b"id:\nevent:\ndata:\n\n"
        );
    }

    #[test]
    fn data_is_split_on_every_kind_of_line_break() {
        assert_eq!(
            encoded(Event::new().data("a\r\nb\rc\nd")),
            b"data: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        // CR then LF is one break; LF then CR is two.
        assert_eq!(
            encoded(Event::new().data("a\n\rb")),
            b"data: a\ndata:\ndata: b\n\n"
        );
        assert_eq!(encoded(Event::new().data("\n")), b"data:\ndata:\n\n");
        assert_eq!(encoded(Event::new().data("x\r")), b"data: x\ndata:\n\n");
    }

    #[test]
    fn leading_space_is_protected_by_the_separator_space() {
        assert_eq!(encoded(Event::new().data(" x")), b"data:  x\n\n");
        assert_eq!(encoded(Event::new().id(" 1")), b"id:  1\n\n");
    }

    #[test]
    fn bad_id_or_type_is_rejected_and_nothing_is_written() {
        let cases = [
            (Event::new().id("a\nb"), Error::IdContainsLineBreak),
            (Event::new().id("a\rb"), Error::IdContainsLineBreak),
            (Event::new().id("a\0b"), Error::IdContainsNul),
            (
                Event::new().data("fine").event("x\ndata: y"),
                Error::EventTypeContainsLineBreak,
            ),
            (Event::new().event("\r"), Error::EventTypeContainsLineBreak),
        ];
        for (event, error) in cases {
            let mut out = b"before".to_vec();
            assert_eq!(event.encode(&mut out), Err(error));
            assert_eq!(event.validate(), Err(error));
            assert_eq!(out, b"before");
        }
        // NUL is only forbidden in the id.
        assert_eq!(encoded(Event::new().event("a\0b")), b"event: a\0b\n\n");
    }

    #[test]
    fn multi_line_comments_stay_comments() {
        let mut out = Vec::new();
        comment("one\r\ntwo\n", &mut out);
        assert_eq!(out, b": one\n: two\n:\n");
        out.clear();
        comment("", &mut out);
        assert_eq!(out, b":\n");
        out.clear();
        comment("data: injected", &mut out);
        assert_eq!(out, b": data: injected\n");
    }

    #[test]
    fn retry_writes_decimal() {
        for ms in [0, 7, 10, 3000, 1_000_000_007, u64::MAX] {
            let mut out = Vec::new();
            retry(ms, &mut out);
            assert_eq!(out, alloc::format!("retry: {ms}\n").as_bytes());
        }
        assert_eq!(
            encoded(Event::new().retry(u64::MAX)),
            ("retry: ".to_string() + &u64::MAX.to_string() + "\n\n").as_bytes()
        );
    }

    #[test]
    fn size_hint_is_exact_without_line_breaks() {
        let event = Event::new().comment("c").id("17").event("tick").data("payload");
        let out = encoded(event);
        assert_eq!(event.size_hint(), out.len());
    }
}
