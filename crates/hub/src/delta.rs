//! Delta updates: an event sent as a Fossil delta ([`tether_delta`])
//! against the event before it on its topic, for the subscribers that
//! asked for deltas and had that event. Made once per event, by whichever
//! loop asks first, and shared: every subscriber in step is sent the same
//! bytes.
//!
//! The JSON form is the event's with `"delta"` (the delta, a JSON string)
//! and `"base"` (the id of the event it applies to) in place of `"data"`:
//! `{"topic":"T","id":"ID","event":"TYPE","delta":"…","base":"BASE"}`, the
//! key last if it has one. A multi-topic event stream sends it as it sends
//! the whole JSON, `event: TYPE` and `data: JSON`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use crate::event::{Event, deflate_frame, text_frame};
use crate::id::EventId;
use crate::json::push_json_string;

/// An event's delta forms against one base.
#[derive(Debug)]
pub(crate) struct DeltaForms {
    /// The event the delta applies to.
    base: EventId,
    /// The JSON form as one unmasked WebSocket text frame.
    ws: Arc<[u8]>,
    /// [`DeltaForms::ws`] compressed, made when a permessage-deflate
    /// socket is first sent it; `None` when that does not shrink it.
    ws_deflated: OnceLock<Option<Arc<[u8]>>>,
    /// The multi-topic event-stream form, but for its `id:` line.
    sse_multi: Arc<[u8]>,
}

/// Deltas made in this process by [`Event::delta_ws_frame`] and
/// [`Event::delta_sse_multi`].
static DELTAS: AtomicU64 = AtomicU64::new(0);

/// How many event deltas this process has made: at most one per event,
/// however many subscribers were sent it. A counter for metrics and
/// tests.
pub fn shared_deltas() -> u64 {
    DELTAS.load(Ordering::Relaxed)
}

impl Event {
    /// The event as a delta against `base`, the event before it on its
    /// topic, as one unmasked WebSocket text frame of its JSON delta form
    /// (see the module's documentation); `None` when the delta would not
    /// be smaller than the event's data (send the whole event then), or
    /// when `base` is not the event this one's delta was first made
    /// against, nor of its topic and before it.
    ///
    /// Made the first time it is asked for, against the `base` given
    /// then, and shared from then on.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tether_hub::{Event, EventId};
    ///
    /// let state = |price: u32| format!(r#"{{"symbol":"ACME","price":{price},"note":"a note long enough to be worth a delta"}}"#);
    /// let first = Event::new(Arc::from("quotes"), EventId::new(7, 1), "quote", &state(100))?;
    /// let next = Event::new(Arc::from("quotes"), EventId::new(7, 2), "quote", &state(101))?;
    /// let frame = next.delta_ws_frame(&first).expect("smaller than the data");
    /// let json = std::str::from_utf8(&frame[2..]).unwrap();
    /// assert!(json.starts_with(r#"{"topic":"quotes","id":"7-2","event":"quote","delta":""#));
    /// assert!(json.ends_with(r#","base":"7-1"}"#));
    /// assert!(Arc::ptr_eq(frame, next.delta_ws_frame(&first).unwrap()));
    /// # Ok::<(), tether_hub::Error>(())
    /// ```
    pub fn delta_ws_frame(&self, base: &Event) -> Option<&Arc<[u8]>> {
        self.delta_forms(base).map(|forms| &forms.ws)
    }

    /// [`Event::delta_ws_frame`] compressed for a permessage-deflate
    /// socket, as [`Event::ws_frame_deflated`] is [`Event::ws_frame`]: a
    /// message of its own (no context taken over), made at most once and
    /// shared; `None` when there is no delta or compressing does not
    /// shrink it (send the plain frame then).
    pub fn delta_ws_frame_deflated(&self, base: &Event) -> Option<&Arc<[u8]>> {
        let forms = self.delta_forms(base)?;
        forms
            .ws_deflated
            .get_or_init(|| deflate_frame(&forms.ws))
            .as_ref()
    }

    /// The event as a delta against `base`, as a multi-topic event stream
    /// sends it but for its `id:` line: `event: TYPE\ndata: JSON\n`, the
    /// JSON delta form. `None` as for [`Event::delta_ws_frame`].
    pub fn delta_sse_multi(&self, base: &Event) -> Option<&Arc<[u8]>> {
        self.delta_forms(base).map(|forms| &forms.sse_multi)
    }

    fn delta_forms(&self, base: &Event) -> Option<&DeltaForms> {
        let made = self.forms().delta.get_or_init(|| {
            // A binary event goes whole: deltas are of text.
            (base.topic() == self.topic() && base.id() < self.id() && !self.is_binary() && !base.is_binary())
                .then(|| make(self, base))
                .flatten()
        });
        made.as_deref().filter(|forms| forms.base == base.id())
    }
}

fn make(event: &Event, base: &Event) -> Option<Box<DeltaForms>> {
    DELTAS.fetch_add(1, Ordering::Relaxed);
    let data = event.data_text()?;
    let delta = tether_delta::encode_str(base.data_text()?, data);
    if delta.len() >= data.len() {
        return None;
    }
    let event_type = event.event_type();
    let mut json = String::with_capacity(delta.len() + event.topic().len() + event_type.len() + 80);
    json.push_str("{\"topic\":\"");
    json.push_str(event.topic());
    json.push_str("\",\"id\":\"");
    let _ = write!(json, "{}", event.id());
    json.push_str("\",\"event\":\"");
    json.push_str(event_type);
    json.push_str("\",\"delta\":");
    push_json_string(&mut json, &delta);
    json.push_str(",\"base\":\"");
    let _ = write!(json, "{}", base.id());
    json.push('"');
    if let Some(key) = event.key() {
        json.push_str(",\"key\":");
        push_json_string(&mut json, key);
    }
    json.push('}');
    let mut sse_multi = Vec::with_capacity(event_type.len() + json.len() + 15);
    sse_multi.extend_from_slice(b"event: ");
    sse_multi.extend_from_slice(event_type.as_bytes());
    sse_multi.extend_from_slice(b"\ndata: ");
    sse_multi.extend_from_slice(json.as_bytes());
    sse_multi.push(b'\n');
    Some(Box::new(DeltaForms {
        base: base.id(),
        ws: text_frame(json.as_bytes()),
        ws_deflated: OnceLock::new(),
        sse_multi: sse_multi.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(seq: u64) -> String {
        let fields: String = (0..40)
            .map(|i| format!("\"field{i}\":\"value {i} of a state that mostly stays\","))
            .collect();
        format!("{{{fields}\"seq\":{seq},\"price\":{}.25}}", 100 + seq)
    }

    fn event(seq: u64, data: &str) -> Arc<Event> {
        Event::keyed(
            Arc::from("state"),
            EventId::new(9, seq),
            "update",
            data,
            Some("k"),
        )
        .unwrap()
    }

    /// The `"delta"` and `"base"` of a JSON delta form.
    fn read(json: &str) -> (String, String) {
        let delta_at = json.find("\"delta\":").unwrap() + 8;
        let base_at = json.find(",\"base\":\"").unwrap();
        let delta = json_unescape(&json[delta_at..base_at]);
        let base = json[base_at + 9..].split('"').next().unwrap().to_owned();
        (delta, base)
    }

    /// Enough of a JSON string reader for what `push_json_string` writes.
    fn json_unescape(quoted: &str) -> String {
        let inner = &quoted[1..quoted.len() - 1];
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next().unwrap() {
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                }
                other => out.push(other),
            }
        }
        out
    }

    #[test]
    fn a_delta_rebuilds_the_data_and_is_made_once() {
        let (a, b) = (state(1), state(2));
        let (first, next) = (event(1, &a), event(2, &b));
        let frame = next.delta_ws_frame(&first).unwrap().clone();
        let sse = next.delta_sse_multi(&first).unwrap().clone();
        // Made once, shared by every later call.
        assert!(Arc::ptr_eq(&frame, next.delta_ws_frame(&first).unwrap()));
        assert!(Arc::ptr_eq(&sse, next.delta_sse_multi(&first).unwrap()));
        assert!(shared_deltas() >= 1);
        let json = std::str::from_utf8(&frame[4..]).unwrap();
        assert!(json.ends_with(r#","key":"k"}"#), "{json}");
        let (delta, base) = read(json);
        assert_eq!(base, "9-1");
        let built = tether_delta::apply(a.as_bytes(), delta.as_bytes(), 1 << 20).unwrap();
        assert_eq!(built, b.as_bytes());
        assert!(
            frame.len() * 4 < next.ws_frame().len(),
            "{} vs {}",
            frame.len(),
            next.ws_frame().len()
        );
        assert!(sse.starts_with(b"event: update\ndata: {"));
        assert!(sse.ends_with(format!("{json}\n").as_bytes()));
    }

    #[test]
    fn another_base_gets_no_delta() {
        let (a, b, c) = (state(1), state(2), state(3));
        let (first, second, third) = (event(1, &a), event(2, &b), event(3, &c));
        assert!(third.delta_ws_frame(&second).is_some());
        // Made against the second: the first is not its base.
        assert!(third.delta_ws_frame(&first).is_none());
        // Not before it, or not of its topic: never a base.
        assert!(first.delta_ws_frame(&third).is_none());
        let other = Event::new(Arc::from("other"), EventId::new(9, 1), "update", &a).unwrap();
        assert!(second.delta_ws_frame(&other).is_none());
    }

    #[test]
    fn a_delta_that_does_not_shrink_is_not_sent() {
        let first = event(1, "short");
        let next = event(2, "brief");
        assert!(next.delta_ws_frame(&first).is_none());
        assert!(next.delta_sse_multi(&first).is_none());
    }

    #[test]
    fn text_with_escapes_and_wide_characters_survives() {
        let a = format!(
            "{}\"quote\" \\ tab\t é ✓ \u{2028}{}",
            "x".repeat(40),
            "y".repeat(40)
        );
        let b = a.replace('✓', "✗");
        let (first, next) = (event(1, &a), event(2, &b));
        let frame = next.delta_ws_frame(&first).unwrap();
        let (delta, _) = read(std::str::from_utf8(&frame[2..]).unwrap());
        let built = tether_delta::apply(a.as_bytes(), delta.as_bytes(), 1 << 20).unwrap();
        assert_eq!(built, b.as_bytes());
    }

    #[test]
    fn binary_events_go_whole() {
        let a = event(1, &state(1));
        let bytes = Event::binary(
            Arc::from("state"),
            EventId::new(9, 2),
            "update",
            state(2).as_bytes(),
            None,
        )
        .unwrap();
        assert!(bytes.delta_ws_frame(&a).is_none());
        let c = event(3, &state(3));
        assert!(c.delta_ws_frame(&bytes).is_none());
    }
}
