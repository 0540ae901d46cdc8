//! A sequenced event, encoded once for every wire format it is sent in.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tether_deflate::Piece;
use tether_frame::{FrameHeader, OpCode};
use tether_topic::{is_valid_name, is_valid_topic};

use crate::error::Error;
use crate::id::EventId;
use crate::json::{GAP_EVENT_TYPE, push_json_string};
use crate::key::is_valid_publish_key;
use crate::payload::{Payload, push_base64};

mod pieces;

pub use pieces::shared_sse_compressions;

/// The longest event type, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 64;

/// The event type of an event published without one.
pub const DEFAULT_EVENT_TYPE: &str = "message";

/// Whether `name` may be published as an event type: the characters of a
/// topic name, 1 to [`MAX_EVENT_TYPE_LEN`] bytes, and not
/// [`GAP_EVENT_TYPE`].
pub fn is_valid_event_type(name: &str) -> bool {
    is_valid_name(name, MAX_EVENT_TYPE_LEN) && name != GAP_EVENT_TYPE
}

/// One event of a topic, with its id, encoded once for each wire format
/// it is sent in; subscribers on every event loop share these bytes by
/// reference count.
///
/// - [`Event::ws_raw_frame`]: one unmasked WebSocket text frame whose
///   payload is the data alone (no id, type or topic), a binary frame for
///   a binary event ([`Event::is_binary`]): made with the event, and the
///   form the others are made from;
/// - [`Event::ws_frame`]: one unmasked WebSocket text frame whose payload
///   is [`Event::json`];
/// - [`Event::sse`]: the `text/event-stream` event (`id`, `event`, `data`
///   lines);
/// - [`Event::sse_multi`]: what every multi-topic stream sends of the
///   event, `event: TYPE` and `data: JSON`, to which each stream adds
///   its own `id:` line (a [`crate::Cursor`]);
/// - [`Event::json`]: the JSON object
///   `{"topic":"T","id":"ID","event":"TYPE","data":"DATA"}`, also what a
///   long poll answers with; an event published with a publish key
///   ([`Event::keyed`]) has it last, as `"key":"KEY"`;
/// - [`Event::ws_frame_deflated`] and [`Event::ws_raw_frame_deflated`]:
///   those two frames compressed (permessage-deflate, RFC 7692, each
///   message on its own), for subscribers whose connection negotiated
///   `server_no_context_takeover`; each compressed once, by whichever
///   thread asks first, and shared from then on;
/// - [`Event::sse_piece`] and [`Event::sse_multi_piece`]: the two
///   event-stream forms as deflate blocks standing alone, for event
///   streams sent compressed (gzip or deflate), likewise made once.
///
/// The JSON frame and the event-stream event are made the first time one
/// is asked for, by whichever thread asks first, and shared from then on:
/// an event kept in a backlog whose subscribers all take the raw frame
/// holds the raw frame alone.
///
/// The event-stream form never carries the key: its `id:` is the event's
/// id, which resuming depends on.
///
/// A binary event ([`Event::binary`]) keeps its bytes exactly in the raw
/// frame (a binary frame); its text forms carry them in standard base64,
/// marked: `"encoding":"base64"` after the data in the JSON, an
/// `encoding: base64` line before the data in the event stream (a field
/// an `EventSource` ignores and a parser that keeps fields reads).
///
/// ```
/// use std::sync::Arc;
/// use tether_hub::{Event, EventId};
///
/// let event = Event::binary(Arc::from("pix"), EventId::new(7, 3), "message", &[0, 0xff], None)?;
/// assert!(event.is_binary());
/// assert_eq!(&event.ws_raw_frame()[..], b"\x82\x02\x00\xff"); // FIN + binary
/// assert_eq!(event.json(), r#"{"topic":"pix","id":"7-3","event":"message","data":"AP8=","encoding":"base64"}"#);
/// assert_eq!(&event.sse()[..], b"id: 7-3\nevent: message\nencoding: base64\ndata: AP8=\n\n");
/// # Ok::<(), tether_hub::Error>(())
/// ```
///
/// ```
/// use std::sync::Arc;
/// use tether_hub::{Event, EventId};
///
/// let event = Event::new(Arc::from("news"), EventId::new(7, 1), "update", "two\nlines")?;
/// assert_eq!(event.json(), r#"{"topic":"news","id":"7-1","event":"update","data":"two\nlines"}"#);
/// assert_eq!(&event.sse()[..], b"id: 7-1\nevent: update\ndata: two\ndata: lines\n\n");
/// assert_eq!(event.ws_frame()[0], 0x81); // FIN + text
/// assert_eq!(&event.ws_frame()[2..], event.json().as_bytes());
/// assert_eq!(&event.ws_raw_frame()[..], b"\x81\x09two\nlines");
/// # Ok::<(), tether_hub::Error>(())
/// ```
#[derive(Debug)]
pub struct Event {
    topic: Arc<str>,
    id: EventId,
    /// The data as one text frame: the frame's header, then the data.
    raw: Arc<[u8]>,
    /// What the JSON frame and the event-stream event weigh together
    /// (see [`Event::cost`]), measured when the event was made.
    cost: usize,
    /// What few events have: an event type other than the default, a
    /// publish key, lost ids; `None` for most.
    extras: Option<Box<Extras>>,
    /// The other forms, the box made when the first of them is asked for
    /// (an event only raw subscribers take never has it).
    forms: OnceLock<Box<Forms>>,
}

/// The parts of an event that most events do not have.
#[derive(Debug, Default)]
struct Extras {
    /// `None` for [`DEFAULT_EVENT_TYPE`].
    event_type: Option<Box<str>>,
    key: Option<Box<str>>,
    /// The ids known lost just before this event (first and last): only
    /// events recovered after damage to a log have them.
    lost_before: Option<(EventId, EventId)>,
    /// Events of its epoch after this one may have been lost (see
    /// [`Event::set_lost_after`]).
    lost_after: bool,
}

/// An event's forms made from its raw frame, each when first asked for.
#[derive(Debug, Default)]
pub(crate) struct Forms {
    /// The JSON frame.
    ws: OnceLock<Arc<[u8]>>,
    /// The event-stream event.
    sse: OnceLock<Arc<[u8]>>,
    /// The multi-topic event-stream event, but for its id line.
    sse_multi: OnceLock<Arc<[u8]>>,
    /// The JSON frame compressed, `None` if it does not shrink.
    ws_deflated: OnceLock<Option<Arc<[u8]>>>,
    /// The raw frame compressed, `None` if it does not shrink.
    raw_deflated: OnceLock<Option<Arc<[u8]>>>,
    /// The event-stream event as a compressed stream's piece.
    sse_piece: OnceLock<Arc<Piece>>,
    /// The multi-topic event-stream event as a compressed stream's piece.
    sse_multi_piece: OnceLock<Arc<Piece>>,
    /// The event as a delta against the one before it (see
    /// [`crate::delta`]), `None` if that does not shrink it.
    pub(crate) delta: OnceLock<Option<Box<crate::delta::DeltaForms>>>,
}

impl Event {
    /// Encodes an event. The topic name and the event type must be valid
    /// ([`is_valid_topic`], [`is_valid_event_type`]); the data may be any
    /// string (an event stream turns its CRs into line feeds, as the format
    /// cannot carry them; the WebSocket and JSON forms carry it exactly).
    pub fn new(topic: Arc<str>, id: EventId, event_type: &str, data: &str) -> Result<Arc<Event>, Error> {
        Event::encode(topic, id, event_type, (data.as_bytes(), false), None)
    }

    /// Encodes a binary event: `data` any bytes, kept exactly; a publish
    /// key as [`Event::keyed`] takes one.
    ///
    /// # Errors
    ///
    /// As [`Event::keyed`].
    pub fn binary(
        topic: Arc<str>,
        id: EventId,
        event_type: &str,
        data: &[u8],
        key: Option<&str>,
    ) -> Result<Arc<Event>, Error> {
        if key.is_some_and(|key| !is_valid_publish_key(key)) {
            return Err(Error::InvalidPublishKey);
        }
        Event::encode(topic, id, event_type, (data, true), key)
    }

    /// Encodes the event of a publish's `payload`, text or binary.
    ///
    /// # Errors
    ///
    /// As [`Event::keyed`].
    pub fn of_payload(
        topic: Arc<str>,
        id: EventId,
        event_type: &str,
        payload: &Payload,
        key: Option<&str>,
    ) -> Result<Arc<Event>, Error> {
        match payload {
            Payload::Text(text) => Event::keyed(topic, id, event_type, text, key),
            Payload::Binary(bytes) => Event::binary(topic, id, event_type, bytes, key),
        }
    }

    /// Encodes an event published with a publish key (see
    /// [`crate::Publish::with_key`]); without one (`None`), the same as
    /// [`Event::new`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tether_hub::{Event, EventId};
    ///
    /// let event = Event::keyed(Arc::from("news"), EventId::new(7, 2), "message", "hi", Some("order-9"))?;
    /// assert_eq!(event.key(), Some("order-9"));
    /// assert_eq!(event.json(), r#"{"topic":"news","id":"7-2","event":"message","data":"hi","key":"order-9"}"#);
    /// assert_eq!(&event.sse()[..], b"id: 7-2\nevent: message\ndata: hi\n\n");
    /// # Ok::<(), tether_hub::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Event::new`], and [`Error::InvalidPublishKey`].
    pub fn keyed(
        topic: Arc<str>,
        id: EventId,
        event_type: &str,
        data: &str,
        key: Option<&str>,
    ) -> Result<Arc<Event>, Error> {
        if key.is_some_and(|key| !is_valid_publish_key(key)) {
            return Err(Error::InvalidPublishKey);
        }
        Event::encode(topic, id, event_type, (data.as_bytes(), false), key)
    }

    fn encode(
        topic: Arc<str>,
        id: EventId,
        event_type: &str,
        data: Data<'_>,
        key: Option<&str>,
    ) -> Result<Arc<Event>, Error> {
        if !is_valid_topic(&topic) {
            return Err(Error::InvalidTopic);
        }
        if !is_valid_event_type(event_type) {
            return Err(Error::InvalidEventType);
        }
        // Both text forms are written once here, into a buffer the thread
        // reuses, for their weight (and to refuse what an event stream
        // cannot carry); they are kept only once asked for.
        let cost = SCRATCH.with_borrow_mut(|(json, sse)| {
            json.clear();
            write_json(json, (&topic, id, event_type, data, key));
            sse.clear();
            let cost = write_sse(sse, id, event_type, data).map(|()| frame_len(json.len()) + sse.len());
            if json.capacity() > SCRATCH_KEPT || sse.capacity() > SCRATCH_KEPT {
                *json = String::new();
                *sse = Vec::new();
            }
            cost
        })?;
        let event_type = (event_type != DEFAULT_EVENT_TYPE).then(|| event_type.into());
        let key = key.map(Box::from);
        let extras = (event_type.is_some() || key.is_some()).then(|| {
            Box::new(Extras {
                event_type,
                key,
                ..Extras::default()
            })
        });
        Ok(Arc::new(Event {
            topic,
            id,
            raw: data_frame(data.0, data.1),
            cost,
            extras,
            forms: OnceLock::new(),
        }))
    }

    /// The data's bytes, as published (a text event's UTF-8).
    pub fn data_bytes(&self) -> &[u8] {
        let start = frame_header_len(&self.raw).unwrap_or_default();
        self.raw.get(start..).unwrap_or_default()
    }

    /// The data of a text event; `None` for a binary one.
    pub fn data_text(&self) -> Option<&str> {
        // A text event's raw frame was made from a `&str`.
        (!self.is_binary())
            .then(|| std::str::from_utf8(self.data_bytes()).ok())
            .flatten()
    }

    /// The data as the publish had it, text or binary.
    pub fn payload(&self) -> Payload {
        match self.data_text() {
            Some(text) => Payload::Text(text.to_owned()),
            None => Payload::Binary(self.data_bytes().to_vec()),
        }
    }

    /// Whether the event is binary: its data any bytes, its raw frame a
    /// binary frame, its text forms base64 (see [`Event`]).
    pub fn is_binary(&self) -> bool {
        self.raw.first().is_some_and(|b| b & 0x0f == BINARY_OPCODE)
    }

    /// The data as its text forms carry it, and whether that is base64.
    fn data(&self) -> Data<'_> {
        (self.data_bytes(), self.is_binary())
    }

    /// The box of the forms made when asked for, made by whichever
    /// thread asks first.
    pub(crate) fn forms(&self) -> &Forms {
        self.forms.get_or_init(Box::default)
    }

    /// The ids known lost just before this event, first and last (events
    /// a damaged log lost: see [`Event::set_lost_before`]).
    pub fn lost_before(&self) -> Option<(EventId, EventId)> {
        self.extras.as_ref()?.lost_before
    }

    /// Says that the events from `first` to `last` came before this one
    /// and were lost (a durable broker recovering a damaged log): a
    /// [`crate::Backlog`] that holds this event answers a replay from
    /// before it with a [`crate::Gap`] naming them, never "nothing
    /// missed".
    pub fn set_lost_before(&mut self, first: EventId, last: EventId) {
        self.extras.get_or_insert_default().lost_before = Some((first, last));
    }

    /// Whether events of this event's epoch after it may have been lost
    /// (see [`Event::set_lost_after`]).
    pub fn lost_after(&self) -> bool {
        self.extras.as_ref().is_some_and(|extras| extras.lost_after)
    }

    /// Says that events after this one, of its epoch, may have been lost:
    /// a damaged log lost records after it that no later event of its
    /// topic shows, so whether they were this topic's is not known. A
    /// [`crate::Backlog`] that holds this event answers a replay from it,
    /// from before it, or from a later id of its epoch with a
    /// [`crate::Gap`] (naming nothing lost, since what was is not known),
    /// never "nothing missed".
    pub fn set_lost_after(&mut self) {
        self.extras.get_or_insert_default().lost_after = true;
    }

    /// The topic.
    pub fn topic(&self) -> &Arc<str> {
        &self.topic
    }

    /// The id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The event type.
    pub fn event_type(&self) -> &str {
        self.extras
            .as_ref()
            .and_then(|extras| extras.event_type.as_deref())
            .unwrap_or(DEFAULT_EVENT_TYPE)
    }

    /// The publish key it was published with, if any.
    pub fn key(&self) -> Option<&str> {
        self.extras.as_ref()?.key.as_deref()
    }

    /// The WebSocket frame (server to client: unmasked, one text frame),
    /// made the first time it is asked for; every later call returns the
    /// same shared bytes.
    pub fn ws_frame(&self) -> &Arc<[u8]> {
        self.forms().ws.get_or_init(|| {
            let mut json = String::with_capacity(self.cost);
            write_json(
                &mut json,
                (&self.topic, self.id, self.event_type(), self.data(), self.key()),
            );
            text_frame(json.as_bytes())
        })
    }

    /// The WebSocket frame of the data alone (server to client: unmasked,
    /// one text frame, or one binary frame for a binary event, the data as
    /// published): what a subscriber that
    /// asked for no envelope gets, always the same shared bytes. It is not
    /// counted in [`Event::cost`] (it is at most the data's length plus 10
    /// bytes).
    pub fn ws_raw_frame(&self) -> &Arc<[u8]> {
        &self.raw
    }

    /// [`Event::ws_frame`] compressed with permessage-deflate (RFC 7692):
    /// one unmasked text frame with RSV1 set whose payload is the JSON
    /// form deflated on its own (a fresh window, the sync flush's tail
    /// removed), or `None` when that is not smaller than the JSON (send
    /// the plain frame then). Compressed the first time it is asked for,
    /// by whichever event loop needs it first; every later call, from
    /// any thread, returns the same shared bytes, so an event is
    /// compressed at most once however many subscribers get it.
    ///
    /// Valid only on connections where the server compresses without
    /// context takeover (`server_no_context_takeover` in the handshake
    /// response) and whose `server_max_window_bits` is at least
    /// `tether_deflate::window_bits_for` of the JSON's length (15, the
    /// default, takes any). Like the raw frame, it is not counted in
    /// [`Event::cost`] (it is smaller than the frame it replaces).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tether_hub::{Event, EventId};
    ///
    /// let data = "{\"price\":101.25,\"symbol\":\"ACME\"}".repeat(20);
    /// let event = Event::new(Arc::from("quotes"), EventId::new(7, 1), "quote", &data)?;
    /// let deflated = event.ws_frame_deflated().expect("repetitive JSON shrinks");
    /// assert_eq!(deflated[0], 0xC1); // FIN + RSV1 + text
    /// assert!(deflated.len() < event.ws_frame().len() / 4);
    /// assert!(Arc::ptr_eq(deflated, event.ws_frame_deflated().unwrap()));
    /// // A short event does not shrink, and goes plain.
    /// let short = Event::new(Arc::from("t"), EventId::new(7, 2), "x", "1")?;
    /// assert!(short.ws_frame_deflated().is_none());
    /// # Ok::<(), tether_hub::Error>(())
    /// ```
    pub fn ws_frame_deflated(&self) -> Option<&Arc<[u8]>> {
        self.forms()
            .ws_deflated
            .get_or_init(|| deflate_frame(self.ws_frame()))
            .as_ref()
    }

    /// [`Event::ws_raw_frame`] compressed, as [`Event::ws_frame_deflated`]
    /// is [`Event::ws_frame`]: made at most once, shared, `None` when it
    /// does not shrink.
    pub fn ws_raw_frame_deflated(&self) -> Option<&Arc<[u8]>> {
        self.forms()
            .raw_deflated
            .get_or_init(|| deflate_frame(self.ws_raw_frame()))
            .as_ref()
    }

    /// The event-stream event, made the first time it is asked for; every
    /// later call returns the same shared bytes.
    pub fn sse(&self) -> &Arc<[u8]> {
        self.forms().sse.get_or_init(|| {
            let mut sse = Vec::new();
            // Written once already when the event was made, which checked
            // that it can be.
            let _ = write_sse(&mut sse, self.id, self.event_type(), self.data());
            sse.into()
        })
    }

    /// The event as a multi-topic event stream sends it, but for its id:
    /// `event: TYPE\ndata: JSON\n`, where `JSON` is [`Event::json`] (with
    /// the topic, the id, and the key if any), always on one line since
    /// JSON escapes line breaks. A stream writes these bytes, shared by
    /// every stream that sends the event, then its own `id: CURSOR\n\n`.
    /// Made the first time it is asked for; every later call returns the
    /// same shared bytes.
    ///
    /// Like the raw frame, it is not counted in [`Event::cost`]: it weighs
    /// the JSON frame's payload, the type and 15 bytes.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tether_hub::{Event, EventId};
    ///
    /// let event = Event::new(Arc::from("A"), EventId::new(7, 1), "update", "two\nlines")?;
    /// assert_eq!(
    ///     &event.sse_multi()[..],
    ///     b"event: update\ndata: {\"topic\":\"A\",\"id\":\"7-1\",\"event\":\"update\",\"data\":\"two\\nlines\"}\n"
    /// );
    /// # Ok::<(), tether_hub::Error>(())
    /// ```
    pub fn sse_multi(&self) -> &Arc<[u8]> {
        self.forms().sse_multi.get_or_init(|| {
            let (event_type, json) = (self.event_type(), self.json());
            let mut out = Vec::with_capacity(event_type.len() + json.len() + 15);
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(event_type.as_bytes());
            out.extend_from_slice(b"\ndata: ");
            out.extend_from_slice(json.as_bytes());
            out.push(b'\n');
            out.into()
        })
    }

    /// The event as a JSON object (the WebSocket frame's payload).
    pub fn json(&self) -> &str {
        let frame = self.ws_frame();
        let start = frame_header_len(frame).unwrap_or_default();
        // Written from `&str`s; the header is all that precedes it.
        std::str::from_utf8(frame.get(start..).unwrap_or_default()).unwrap_or_default()
    }

    /// What the event counts for against a backlog's byte bound: its two
    /// text forms, the JSON frame and the event-stream event, whether or
    /// not they have been made yet.
    pub fn cost(&self) -> usize {
        self.cost
    }
}

/// A binary frame's opcode, in the low bits of its first byte.
const BINARY_OPCODE: u8 = 0x2;

/// The scratch buffer keeps no more room than this after a large event.
const SCRATCH_KEPT: usize = 16 * 1024;

thread_local! {
    /// Where an event's JSON object and event-stream event are written
    /// to be measured.
    static SCRATCH: RefCell<(String, Vec<u8>)> = const { RefCell::new((String::new(), Vec::new())) };
}

/// `payload` as one unmasked text frame.
pub(crate) fn text_frame(payload: &[u8]) -> Arc<[u8]> {
    data_frame(payload, false)
}

/// `payload` as one unmasked text frame, or binary frame if `binary`.
fn data_frame(payload: &[u8], binary: bool) -> Arc<[u8]> {
    let opcode = if binary { OpCode::Binary } else { OpCode::Text };
    let header = FrameHeader::new(true, opcode, payload.len() as u64).to_bytes();
    let mut frame = Vec::with_capacity(header.len() + payload.len());
    frame.extend_from_slice(&header);
    frame.extend_from_slice(payload);
    frame.into()
}

/// The length of a text frame of `payload` bytes, its header included.
fn frame_len(payload: usize) -> usize {
    FrameHeader::new(true, OpCode::Text, payload as u64)
        .to_bytes()
        .len()
        + payload
}

/// An event's data: its bytes, and whether they are binary (else UTF-8).
pub(crate) type Data<'a> = (&'a [u8], bool);

/// The parts of an event its JSON form names: topic, id, type, data, key.
pub(crate) type JsonParts<'a> = (&'a str, EventId, &'a str, Data<'a>, Option<&'a str>);

/// Appends the event's JSON object.
pub(crate) fn write_json(json: &mut String, (topic, id, event_type, data, key): JsonParts<'_>) {
    json.push_str("{\"topic\":\"");
    json.push_str(topic);
    json.push_str("\",\"id\":\"");
    let _ = write!(json, "{id}");
    json.push_str("\",\"event\":\"");
    json.push_str(event_type);
    json.push_str("\",\"data\":");
    match data {
        (bytes, true) => {
            json.push('"');
            push_base64(json, bytes);
            json.push_str("\",\"encoding\":\"base64\"");
        }
        // Text data was a `&str`.
        (bytes, false) => push_json_string(json, std::str::from_utf8(bytes).unwrap_or_default()),
    }
    if let Some(key) = key {
        json.push_str(",\"key\":");
        push_json_string(json, key);
    }
    json.push('}');
}

/// Appends the event as an event-stream event; an event type the format
/// cannot carry is refused. A binary event's data goes in base64, after
/// an `encoding: base64` line.
fn write_sse(out: &mut Vec<u8>, id: EventId, event_type: &str, data: Data<'_>) -> Result<(), Error> {
    let id = id.to_string();
    let head = tether_sse::Event::new().id(&id).event(event_type);
    match data {
        (bytes, false) => head
            .data(std::str::from_utf8(bytes).unwrap_or_default())
            .encode(out)
            .map_err(|_| Error::InvalidEventType),
        (bytes, true) => {
            head.encode(out).map_err(|_| Error::InvalidEventType)?;
            // The blank line that ends the event goes after the data.
            out.pop();
            let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
            push_base64(&mut text, bytes);
            out.extend_from_slice(b"encoding: base64\ndata: ");
            out.extend_from_slice(text.as_bytes());
            out.extend_from_slice(b"\n\n");
            Ok(())
        }
    }
}

/// Frames compressed by [`Event::ws_frame_deflated`] and
/// [`Event::ws_raw_frame_deflated`] in this process.
static COMPRESSIONS: AtomicU64 = AtomicU64::new(0);

/// How many event frames this process has compressed for sharing
/// ([`Event::ws_frame_deflated`], [`Event::ws_raw_frame_deflated`]): at
/// most one per event and form, however many subscribers received them.
/// A counter for metrics.
pub fn shared_compressions() -> u64 {
    COMPRESSIONS.load(Ordering::Relaxed)
}

/// A whole unmasked text frame, compressed as a frame of its own.
pub(crate) fn deflate_frame(frame: &[u8]) -> Option<Arc<[u8]>> {
    COMPRESSIONS.fetch_add(1, Ordering::Relaxed);
    let payload = frame.get(frame_header_len(frame)?..)?;
    let opcode = if frame.first()? & 0x0f == BINARY_OPCODE {
        OpCode::Binary
    } else {
        OpCode::Text
    };
    tether_deflate::shared_frame(opcode, payload).map(Arc::from)
}

/// The length of a server frame's header, from its second byte.
fn frame_header_len(frame: &[u8]) -> Option<usize> {
    Some(match frame.get(1)? & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_small_and_its_size_is_shown() {
        let size = std::mem::size_of::<Event>();
        println!("an event: {size} bytes, and its raw frame; the other forms when asked for");
        assert!(size <= 80, "{size}");
        // An event of the default type, without a key, taken raw: nothing
        // besides the event and its raw frame.
        let event = Event::new(Arc::from("t"), EventId::new(1, 1), DEFAULT_EVENT_TYPE, "d").unwrap();
        assert_eq!(&event.ws_raw_frame()[..], b"\x81\x01d");
        assert!(event.extras.is_none() && event.forms.get().is_none());
        assert_eq!((event.event_type(), event.key()), (DEFAULT_EVENT_TYPE, None));
        assert_eq!((event.lost_before(), event.lost_after()), (None, false));
        // A type of its own, a key, lost ids: kept aside.
        let mut keyed = Event::keyed(Arc::from("t"), EventId::new(1, 2), "x", "d", Some("k")).unwrap();
        assert_eq!((keyed.event_type(), keyed.key()), ("x", Some("k")));
        let keyed = Arc::get_mut(&mut keyed).unwrap();
        keyed.set_lost_before(EventId::new(1, 0), EventId::new(1, 1));
        keyed.set_lost_after();
        assert_eq!(
            keyed.lost_before(),
            Some((EventId::new(1, 0), EventId::new(1, 1)))
        );
        assert!(keyed.lost_after() && keyed.key() == Some("k"));
    }

    #[test]
    fn names() {
        assert!(is_valid_event_type("tick"));
        assert!(!is_valid_event_type("gap"));
        assert!(!is_valid_event_type("a\nb"));
        assert!(!is_valid_event_type(&"e".repeat(MAX_EVENT_TYPE_LEN + 1)));
    }

    #[test]
    fn encodings_agree() {
        let data = "quote \" backslash \\ tab \t nul \0 crlf \r\n unicode é ✓";
        let event = Event::new(Arc::from("t"), EventId::new(1, 2), "x", data).unwrap();
        let json = event.json();
        assert!(json.starts_with(r#"{"topic":"t","id":"1-2","event":"x","data":""#));
        // The SSE form parses back to the data, CRLF turned into LF.
        let mut parser = tether_sse::Parser::new();
        parser.feed(event.sse());
        let Some(Ok(tether_sse::Item::Event(parsed))) = parser.poll() else {
            panic!("one event")
        };
        assert_eq!(parsed.data(), data.replace("\r\n", "\n"));
        assert_eq!(parsed.event_type(), "x");
        assert_eq!(parsed.last_event_id(), "1-2");
        // A large payload gets the 16-bit length form.
        let big = Event::new(Arc::from("t"), EventId::new(1, 3), "x", &"y".repeat(70_000)).unwrap();
        assert_eq!(big.ws_frame()[1], 127);
        assert_eq!(&big.ws_frame()[10..], big.json().as_bytes());
        assert_eq!(big.cost(), big.ws_frame().len() + big.sse().len());
        assert_eq!(
            &big.ws_raw_frame()[..10],
            [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]
        );
        assert_eq!(&big.ws_raw_frame()[10..], "y".repeat(70_000).as_bytes());
    }

    #[test]
    fn the_raw_frame_is_the_data_exactly_and_built_once() {
        let control: String = (0u8..0x20).map(char::from).collect();
        for data in [
            "",
            "plain",
            "quote \" backslash \\ tab \t nul \0 crlf \r\n unicode é ✓ \u{2028}",
            control.as_str(),
            "\\u0041 is not an escape here",
        ] {
            let event = Event::keyed(Arc::from("t"), EventId::new(1, 2), "x", data, Some("k")).unwrap();
            let frame = event.ws_raw_frame();
            assert_eq!(frame[0], 0x81, "{data:?}");
            assert_eq!(usize::from(frame[1]), data.len(), "{data:?}");
            assert_eq!(&frame[2..], data.as_bytes(), "{data:?}");
            // The same bytes every time: built once, shared.
            assert!(Arc::ptr_eq(frame, event.ws_raw_frame()));
            // Nothing else is held until asked for; then it weighs what
            // the event said it would.
            assert!(event.forms.get().is_none());
            let cost = event.cost();
            assert_eq!(cost, event.ws_frame().len() + event.sse().len(), "{data:?}");
            assert!(Arc::ptr_eq(event.sse(), event.sse()));
        }
    }

    /// What a client that negotiated permessage-deflate reads from `frame`.
    fn client_reads(frame: &[u8]) -> String {
        use std::time::Instant;
        let params = tether_deflate::Params {
            server_no_context_takeover: true,
            ..tether_deflate::Params::default()
        };
        let now = Instant::now();
        let masks = Box::new(|| [0; 4]);
        let mut client =
            tether_ws::Connection::new(tether_ws::Role::Client(masks), tether_ws::Config::default(), now)
                .with_extension(Box::new(tether_deflate::Deflate::new(
                    tether_deflate::Role::Client,
                    params,
                )));
        let (used, event) = client.receive(frame, now, &mut Vec::new());
        assert_eq!(used, frame.len());
        match event {
            Some(tether_ws::Event::Message(message)) => message.as_text().unwrap().to_owned(),
            other => panic!("not a message: {other:?}"),
        }
    }

    #[test]
    fn deflated_frames_inflate_to_the_plain_ones_and_are_made_once() {
        let data =
            "{\"symbol\":\"ACME\",\"bid\":101.25,\"ask\":101.5,\"note\":\"tab\tquote\\\"\"}\n".repeat(16);
        let event = Event::new(Arc::from("quotes"), EventId::new(3, 9), "quote", &data).unwrap();
        // Asked for on two threads at once: one compression, one shared
        // allocation.
        let frames: Vec<_> = (0..2)
            .map(|_| {
                let event = Arc::clone(&event);
                std::thread::spawn(move || event.ws_frame_deflated().cloned())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap().expect("compressible"))
            .collect();
        assert!(Arc::ptr_eq(&frames[0], &frames[1]));
        let frame = &frames[0];
        assert_eq!(frame[0], 0xC1, "FIN, RSV1, text");
        assert!(frame.len() < event.ws_frame().len() / 3);
        assert_eq!(client_reads(frame), event.json());
        let raw = event.ws_raw_frame_deflated().expect("compressible");
        assert_eq!(raw[0], 0xC1);
        assert_eq!(client_reads(raw), data);
        assert!(Arc::ptr_eq(raw, event.ws_raw_frame_deflated().unwrap()));
        // A 16-bit length plain frame (more than 125 bytes) is read past
        // its 4-byte header.
        assert_eq!(event.ws_frame()[1], 126);
    }

    #[test]
    fn events_that_do_not_shrink_have_no_deflated_frame() {
        let event = Event::new(Arc::from("t"), EventId::new(1, 1), "x", "hi").unwrap();
        assert!(event.ws_frame_deflated().is_none());
        assert!(event.ws_raw_frame_deflated().is_none());
        // Incompressible data, long enough for the 16-bit length form.
        let mut x: u32 = 1;
        let noise: String = (0..400)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                char::from(b'!' + (x % 90) as u8)
            })
            .filter(|c| *c != '"' && *c != '\\')
            .collect();
        let event = Event::new(Arc::from("t"), EventId::new(1, 2), "x", &noise).unwrap();
        assert!(event.ws_raw_frame_deflated().is_none());
    }

    #[test]
    fn the_multi_topic_form_is_the_json_on_one_data_line_and_made_once() {
        let cursor = b"~AQLQ9A6sgfC8jIBkCNNGAw";
        let control: String = (0u8..0x20).map(char::from).collect();
        for data in ["", "plain", "crlf \r\n cr \r lf \n \u{2028} é", control.as_str()] {
            let event =
                Event::keyed(Arc::from("room.7"), EventId::new(9, 4), "update", data, Some("k")).unwrap();
            let shared = event.sse_multi();
            assert!(Arc::ptr_eq(shared, event.sse_multi()), "{data:?}");
            // A stream adds its own id line to the shared bytes; a client
            // reads the type, the JSON (key included) and the cursor.
            let mut stream = shared.to_vec();
            stream.extend_from_slice(b"id: ");
            stream.extend_from_slice(cursor);
            stream.extend_from_slice(b"\n\n");
            let mut parser = tether_sse::Parser::new();
            parser.feed(&stream);
            let Some(Ok(tether_sse::Item::Event(parsed))) = parser.poll() else {
                panic!("one event: {data:?}")
            };
            assert_eq!(parsed.event_type(), "update");
            assert_eq!(parsed.data(), event.json(), "{data:?}");
            assert!(event.json().ends_with(r#","key":"k"}"#));
            assert_eq!(parsed.last_event_id().as_bytes(), cursor);
            assert!(parser.poll().is_none(), "nothing else: {data:?}");
        }
        // The default type is named too: a listener for `message` gets it.
        let plain = Event::new(Arc::from("t"), EventId::new(1, 1), DEFAULT_EVENT_TYPE, "d").unwrap();
        assert_eq!(
            &plain.sse_multi()[..],
            br#"event: message
data: {"topic":"t","id":"1-1","event":"message","data":"d"}
"#
        );
    }

    #[test]
    fn keys_are_in_the_json_only() {
        let key = r#"a"b\c"#;
        let event = Event::keyed(Arc::from("t"), EventId::new(1, 2), "x", "d", Some(key)).unwrap();
        assert_eq!(
            event.json(),
            r#"{"topic":"t","id":"1-2","event":"x","data":"d","key":"a\"b\\c"}"#
        );
        assert_eq!(&event.ws_frame()[2..], event.json().as_bytes());
        assert_eq!(&event.sse()[..], b"id: 1-2\nevent: x\ndata: d\n\n");
        assert_eq!(event.key(), Some(key));
        let plain = Event::keyed(Arc::from("t"), EventId::new(1, 2), "x", "d", None).unwrap();
        assert_eq!(plain.key(), None);
        assert_eq!(
            plain.json(),
            Event::new(Arc::from("t"), EventId::new(1, 2), "x", "d")
                .unwrap()
                .json()
        );
        assert_eq!(
            Event::keyed(Arc::from("t"), EventId::ZERO, "x", "", Some("a b")).unwrap_err(),
            Error::InvalidPublishKey
        );
    }

    #[test]
    fn a_binary_event_keeps_every_byte_and_its_text_forms_say_base64() {
        let all: Vec<u8> = (0..=255).collect();
        let b64 = Payload::Binary(all.clone()).base64();
        let event = Event::binary(Arc::from("t"), EventId::new(1, 2), "x", &all, Some("k")).unwrap();
        assert!(event.is_binary());
        assert_eq!((event.data_bytes(), event.data_text()), (&all[..], None));
        assert_eq!(event.payload(), Payload::Binary(all.clone()));
        let frame = event.ws_raw_frame();
        assert_eq!(&frame[..4], [0x82, 126, 1, 0], "FIN + binary, 256 bytes");
        assert_eq!(&frame[4..], &all[..]);
        assert_eq!(
            event.json(),
            format!(r#"{{"topic":"t","id":"1-2","event":"x","data":"{b64}","encoding":"base64","key":"k"}}"#)
        );
        assert_eq!(event.cost(), event.ws_frame().len() + event.sse().len());
        let mut parser = tether_sse::Parser::new();
        parser.feed(event.sse());
        let Some(Ok(tether_sse::Item::Event(parsed))) = parser.poll() else {
            panic!("one event")
        };
        assert_eq!((parsed.data(), parsed.event_type()), (b64.as_str(), "x"));
        assert!(event.sse().windows(17).any(|w| w == b"encoding: base64\n"));
        // Compressed, it is still a binary frame.
        let repetitive = vec![0xfe; 4096];
        let big = Event::binary(Arc::from("t"), EventId::new(1, 3), "x", &repetitive, None).unwrap();
        assert_eq!(big.ws_raw_frame_deflated().expect("shrinks")[0], 0xC2);
        // Text stays text.
        let text =
            Event::of_payload(Arc::from("t"), EventId::new(1, 4), "x", &Payload::from("é"), None).unwrap();
        assert!(!text.is_binary() && text.data_text() == Some("é"));
    }

    #[test]
    fn refuses_bad_names() {
        assert_eq!(
            Event::new(Arc::from("a b"), EventId::ZERO, "x", "").unwrap_err(),
            Error::InvalidTopic
        );
        assert_eq!(
            Event::new(Arc::from("a"), EventId::ZERO, "gap", "").unwrap_err(),
            Error::InvalidEventType
        );
    }
}
