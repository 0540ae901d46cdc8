//! What publishers send besides the data: the publish key of an HTTP
//! publish (`?id=KEY`, `Tether-Publish-Id: KEY`), the JSON envelope of a
//! WebSocket publisher that opted in (`?envelope=1`), and the answers
//! that name an event (`{"id":"ID"}`, the WebSocket acknowledgement);
//! and the publishes waiting for the sequencer's answer.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use tether_hub::{
    Broker, Context, Error as HubError, EventId, Payload, Publish, PublishAnswer, ReplyTo, Transport,
    is_valid_publish_key, json_string,
};
use tether_server::{CloseCode, ConnId, MessageRef, Request, Response};

use crate::json_text::flat_object;
use crate::metrics::{HubStats, add};
use crate::replies::error_response;
use crate::settings::HubSettings;
use crate::subscribers::{Subscriber, Subscribers};

/// The header that carries an HTTP publish's key.
pub(super) const KEY_HEADER: &str = "tether-publish-id";

/// The publish key of `POST /topics/NAME`: `?id=KEY` or the
/// `Tether-Publish-Id` header (both may be given if they agree). `Err`:
/// the 400 to answer.
fn http_key(request: &Request<'_>) -> Result<Option<String>, Response> {
    let query = request.query_param("id");
    let header = request
        .header(KEY_HEADER)
        .map(|value| value.trim_matches([' ', '\t']).to_owned());
    let key = match (query, header) {
        (Some(query), Some(header)) if query != header => {
            return Err(Response::text(
                400,
                "?id= and Tether-Publish-Id name different publish ids\n",
            ));
        }
        (Some(key), _) | (None, Some(key)) => key,
        (None, None) => return Ok(None),
    };
    if !is_valid_publish_key(&key) {
        return Err(Response::text(400, format!("{}\n", HubError::InvalidPublishKey)));
    }
    Ok(Some(key))
}

/// The answer to a publish: `{"id":"ID"}`, or `{"id":"ID","duplicate":true}`
/// when the key was remembered and nothing was published.
pub(super) fn published_json(id: EventId, duplicate: bool) -> String {
    if duplicate {
        format!("{{\"id\":\"{id}\",\"duplicate\":true}}")
    } else {
        format!("{{\"id\":\"{id}\"}}")
    }
}

/// `{"control":"KIND",` and, on a multiplexed socket, the topic its
/// answer is about (`"topic":"T",`).
fn control_head(kind: &str, topic: Option<&str>) -> String {
    match topic {
        Some(topic) => format!("{{\"control\":\"{kind}\",\"topic\":{},", json_string(topic)),
        None => format!("{{\"control\":\"{kind}\","),
    }
}

/// The acknowledgement of an enveloped WebSocket publish:
/// `{"control":"published","id":"ID"}`, with `"key":"KEY"` when it had
/// one and `"duplicate":true` when nothing was published; with
/// `"topic":"T"` on a multiplexed socket.
pub(super) fn ack_json(topic: Option<&str>, id: EventId, key: Option<&str>, duplicate: bool) -> String {
    let mut out = control_head("published", topic);
    out.push_str(&format!("\"id\":\"{id}\""));
    if let Some(key) = key {
        out.push_str(",\"key\":");
        out.push_str(&json_string(key));
    }
    if duplicate {
        out.push_str(",\"duplicate\":true");
    }
    out.push('}');
    out
}

/// `{"control":"error","error":"..."}`, with `"key":"KEY"` when the
/// refused publish had one, and `"topic":"T"` on a multiplexed socket.
pub(super) fn error_json(topic: Option<&str>, message: &str, key: Option<&str>) -> String {
    let mut out = control_head("error", topic);
    out.push_str(&format!("\"error\":{}", json_string(message)));
    if let Some(key) = key {
        out.push_str(",\"key\":");
        out.push_str(&json_string(key));
    }
    out.push('}');
    out
}

/// One enveloped WebSocket publish:
/// `{"data":"...","event":"TYPE","id":"KEY"}` (`event` and `id`
/// optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Envelope {
    pub(super) data: Payload,
    pub(super) event: Option<String>,
    pub(super) key: Option<String>,
}

/// Parses an envelope. Members other than `data`, `encoding`, `event`
/// and `id`, a member given twice, and values other than strings are
/// refused, so that a misspelt `id` cannot silently turn deduplication
/// off. With `"encoding":"base64"` the data is a binary event's bytes in
/// standard base64, refused if it is not that.
fn parse_envelope(text: &str) -> Result<Envelope, String> {
    let mut envelope = Envelope {
        data: Payload::default(),
        event: None,
        key: None,
    };
    let mut has_data = false;
    let mut data = String::new();
    let mut encoding = None;
    for (name, value) in parse_string_object(text)? {
        let slot = match name.as_str() {
            "data" if !has_data => {
                has_data = true;
                data = value;
                continue;
            }
            "encoding" => &mut encoding,
            "event" => &mut envelope.event,
            "id" => &mut envelope.key,
            "data" => return Err("the envelope has \"data\" twice".to_owned()),
            other => {
                return Err(format!(
                    "unknown envelope member {} (data, encoding, event, id)",
                    json_string(other)
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(format!("the envelope has {} twice", json_string(&name)));
        }
    }
    if !has_data {
        return Err("the envelope has no \"data\"".to_owned());
    }
    envelope.data = match encoding.as_deref() {
        None => Payload::Text(data),
        Some("base64") => {
            Payload::from_base64(&data).ok_or_else(|| "\"data\" is not standard base64".to_owned())?
        }
        Some(_) => return Err("\"encoding\" must be \"base64\"".to_owned()),
    };
    if let Some(key) = &envelope.key
        && !is_valid_publish_key(key)
    {
        return Err(HubError::InvalidPublishKey.to_string());
    }
    Ok(envelope)
}

/// A JSON object whose values are all strings (RFC 8259): its members in
/// order. Nothing else is accepted: no nesting, so no recursion.
fn parse_string_object(text: &str) -> Result<Vec<(String, String)>, String> {
    flat_object(
        text,
        "an envelope is a JSON object: {\"data\":\"...\",\"id\":\"KEY\",\"event\":\"TYPE\"}",
        |p, name| match p.peek() {
            Some(b'"') => p.string(),
            _ => Err(format!("the envelope's {} must be a string", json_string(name))),
        },
    )
}

/// A publish waiting for its outcome.
#[derive(Debug)]
pub(crate) enum Pending {
    Http(ConnId),
    /// A WebSocket publisher and the bytes this publish holds of its
    /// in-flight allowance; an enveloped publish is acknowledged (with its
    /// key, if it had one).
    WebSocket {
        conn: ConnId,
        len: usize,
        envelope: bool,
        key: Option<Arc<str>>,
        /// The topic, named in the answers of a multiplexed socket (whose
        /// publishes go to any topic).
        named: Option<Arc<str>>,
    },
    Internal,
    /// Item `index` of a server API request (`POST /api/...`).
    Api {
        conn: ConnId,
        index: usize,
    },
    /// The embedding application's ([`tether_hub::HubMessage::External`]).
    External(External),
}

impl Pending {
    /// Who to tell that a publish handed to [`Publishes::submit`] was
    /// refused: the same publisher, but nobody for the embedding
    /// application's, which `submit` answers itself.
    pub(super) fn to_tell_of_refusal(&self) -> Pending {
        match self {
            Pending::Http(conn) => Pending::Http(*conn),
            Pending::WebSocket {
                conn,
                len,
                envelope,
                key,
                named,
            } => Pending::WebSocket {
                conn: *conn,
                len: *len,
                envelope: *envelope,
                key: key.clone(),
                named: named.clone(),
            },
            Pending::Api { conn, index } => Pending::Api {
                conn: *conn,
                index: *index,
            },
            Pending::Internal | Pending::External(_) => Pending::Internal,
        }
    }
}

/// A publish of the embedding application's: answered where an HTTP
/// publisher is, or dropped unanswered at `until`, when an HTTP publisher
/// is answered 504.
pub(crate) struct External {
    pub(super) answer: PublishAnswer,
    pub(super) until: Instant,
}

impl fmt::Debug for External {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("External")
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

/// This loop's publishes waiting for their outcome from the sequencer, by
/// the token the answer names.
#[derive(Debug, Default)]
pub(super) struct Publishes {
    /// Who waits, and when the publish arrived.
    pending: HashMap<u64, (Pending, Instant)>,
    next_token: u64,
}

impl Publishes {
    /// Hands `publish`, which arrived at `since`, to the broker, to be
    /// answered to `pending`.
    pub(super) fn submit(
        &mut self,
        cx: &mut dyn Context,
        broker: &mut dyn Broker,
        stats: &HubStats,
        publish: Publish,
        (pending, since): (Pending, Instant),
    ) -> Result<(), HubError> {
        let token = self.next_token;
        self.next_token += 1;
        let reply = ReplyTo {
            loop_index: cx.this_loop(),
            token,
        };
        self.pending.insert(token, (pending, since));
        let result = broker.publish(publish.reply_to(reply), cx);
        if let Err(e) = &result {
            add(&stats.publish_refused, 1);
            // The caller answers the others; this one has no caller to.
            if let Some((Pending::External(external), _)) = self.pending.remove(&token) {
                (external.answer)(Err(e.clone()));
            }
        }
        result
    }

    /// Drops the embedding application's publishes that had no outcome by
    /// `now`: each resolves unanswered.
    pub(super) fn time_out(&mut self, now: Instant) {
        self.pending
            .retain(|_, (p, _)| !matches!(p, Pending::External(external) if external.until <= now));
    }

    /// Who waits for the outcome named `token`; the time since its
    /// publish arrived is counted in `tether_hub_publish_seconds`.
    pub(super) fn take(&mut self, token: u64, stats: &HubStats) -> Option<Pending> {
        let (pending, since) = self.pending.remove(&token)?;
        stats.latencies.publish.observe(since.elapsed());
        Some(pending)
    }

    /// An HTTP publisher that went away, or was answered otherwise.
    pub(super) fn forget(&mut self, conn: ConnId) {
        self.pending
            .retain(|_, (p, _)| !matches!(p, Pending::Http(c) | Pending::Api { conn: c, .. } if *c == conn));
    }
}

/// The publish an HTTP request makes to `topic`: its body as UTF-8 text,
/// or its bytes exactly when its `Content-Type` is binary
/// ([`is_binary_type`]); the event type of `?event=` or `Tether-Event`,
/// the publish key; or the answer that refuses it.
pub(super) fn from_request(
    topic: &str,
    request: &Request<'_>,
    body: &[u8],
    settings: &HubSettings,
) -> Result<Publish, Response> {
    let event_type = request
        .query_param("event")
        .or_else(|| request.header("tether-event").map(str::to_owned));
    let key = http_key(request)?;
    let data = if request.header("content-type").is_some_and(is_binary_type) {
        Payload::Binary(body.to_vec())
    } else {
        let Ok(text) = std::str::from_utf8(body) else {
            return Err(Response::text(
                400,
                "the body must be UTF-8 text, or sent with a binary Content-Type (application/octet-stream)\n",
            ));
        };
        Payload::from(text)
    };
    Publish::new(topic, event_type.as_deref(), data, &settings.hub)
        .and_then(|publish| match &key {
            Some(key) => publish.with_key(key),
            None => Ok(publish),
        })
        .map_err(|e| error_response(&e))
}

/// Whether a `Content-Type` makes a published body binary: its media type
/// is `application/octet-stream`, `image/*`, `audio/*`, `video/*`,
/// `font/*`, or one of the binary serializations `application/cbor`,
/// `application/msgpack`, `application/x-msgpack`,
/// `application/protobuf`, `application/x-protobuf`. Every other type, or
/// none, is text (which must be UTF-8), as it always was: `curl -d`
/// sends `application/x-www-form-urlencoded`, JSON is text.
pub(super) fn is_binary_type(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, sub)) = media.split_once('/') else {
        return false;
    };
    let is = |name: &str| kind.eq_ignore_ascii_case(name);
    let sub_is = |names: &[&str]| names.iter().any(|n| sub.eq_ignore_ascii_case(n));
    is("image")
        || is("audio")
        || is("video")
        || is("font")
        || (is("application")
            && sub_is(&[
                "octet-stream",
                "cbor",
                "msgpack",
                "x-msgpack",
                "protobuf",
                "x-protobuf",
            ]))
}

/// Why a WebSocket subscriber's message is not published.
#[derive(Debug)]
pub(super) enum NotPublished {
    /// It may not publish, or sent other than text: an error message on a
    /// JSON socket, a close with the code on a raw one.
    Refused(CloseCode, &'static str),
    /// More bytes in flight than the hub allows: closed.
    TooFast,
    /// Over the publish rate ([`HubSettings::publish_rate`]): closed.
    RateLimited,
    /// An envelope that does not parse.
    BadEnvelope(String),
    /// The hub refused the publish (with the envelope's key, if any).
    Hub(HubError, Option<String>),
    /// The application's backend refused it, for this reason.
    Denied(String, Option<String>),
    /// The application's backend did not decide ([`UNDECIDED`]).
    Undecided(Option<String>),
}

/// What a publisher is told when the application's backend did not decide
/// about its publish in time (or could not be asked).
pub(super) const UNDECIDED: &str = "the application's backend did not decide; try again later";

/// The publish a WebSocket subscriber's message makes, its bytes counted
/// in flight until the sequencer answers `pending`.
#[derive(Debug)]
pub(super) struct WsPublish {
    pub(super) publish: Publish,
    pub(super) pending: Pending,
    pub(super) len: usize,
    pub(super) key: Option<String>,
}

/// What a WebSocket publish is counted in flight over its bytes.
const PUBLISH_OVERHEAD: usize = 256;

/// What `message`, from the WebSocket subscriber `conn`, publishes.
pub(super) fn from_message(
    subscriber: &mut Subscriber,
    conn: ConnId,
    message: MessageRef<'_>,
    settings: &HubSettings,
) -> Result<WsPublish, NotPublished> {
    if !subscriber.may_publish {
        return Err(NotPublished::Refused(
            CloseCode::POLICY,
            "publishing to this topic over WebSocket is not allowed",
        ));
    }
    let envelope = subscriber.envelope;
    // A socket without envelopes publishes a binary message's bytes as a
    // binary event; an enveloped one takes text (JSON) only, binary data
    // in base64.
    let text = match message {
        MessageRef::Text(text) => Some(text),
        MessageRef::Binary(_) if !envelope => None,
        MessageRef::Binary(_) => {
            return Err(NotPublished::Refused(
                CloseCode::UNSUPPORTED_DATA,
                "an enveloped socket publishes text messages (binary data as \"encoding\":\"base64\")",
            ));
        }
    };
    let len = cost_of(message.as_bytes().len());
    within_allowance(subscriber, len, settings)?;
    let (data, own_type, key) = match text {
        Some(text) if envelope => {
            let e = parse_envelope(text).map_err(NotPublished::BadEnvelope)?;
            (e.data, e.event, e.key)
        }
        Some(text) => (Payload::from(text), None, None),
        None => (Payload::Binary(message.as_bytes().to_vec()), None, None),
    };
    let event_type = own_type.as_deref().or(subscriber.event_type());
    let publish = made(&subscriber.topic, event_type, data, key, settings)?;
    Ok(counted(subscriber, conn, publish, len, envelope, None))
}

/// What a publish of a message of `len` bytes costs its publisher's
/// in-flight allowance: each costs the hub more than its bytes (the
/// publish, its place in the queues), so an empty one counts too.
pub(super) fn cost_of(len: usize) -> usize {
    len.saturating_add(PUBLISH_OVERHEAD)
}

/// Refuses a publish of `len` bytes (see [`cost_of`]) beyond the publisher's
/// allowance of bytes the sequencer has not answered.
pub(super) fn within_allowance(
    subscriber: &Subscriber,
    len: usize,
    settings: &HubSettings,
) -> Result<(), NotPublished> {
    if subscriber.in_flight().saturating_add(len) > settings.max_publish_in_flight {
        return Err(NotPublished::TooFast);
    }
    Ok(())
}

/// The publish of `data` to `topic`, or the hub's refusal (with the key).
pub(super) fn made(
    topic: &str,
    event_type: Option<&str>,
    data: Payload,
    key: Option<String>,
    settings: &HubSettings,
) -> Result<Publish, NotPublished> {
    Publish::new(topic, event_type, data, &settings.hub)
        .and_then(|publish| match &key {
            Some(key) => publish.with_key(key),
            None => Ok(publish),
        })
        .map_err(|e| NotPublished::Hub(e, key))
}

/// `publish`, from the WebSocket subscriber `conn`, counted in its
/// in-flight allowance until the sequencer answers (`named`: the topic
/// its answers name, on a multiplexed socket).
pub(super) fn counted(
    subscriber: &mut Subscriber,
    conn: ConnId,
    publish: Publish,
    len: usize,
    envelope: bool,
    named: Option<Arc<str>>,
) -> WsPublish {
    subscriber.add_in_flight(len);
    let key = publish.key.as_deref().map(str::to_owned);
    let pending = Pending::WebSocket {
        conn,
        len,
        envelope,
        key: publish.key.clone(),
        named,
    };
    WsPublish {
        publish,
        pending,
        len,
        key,
    }
}

/// What the outcome of a publish calls for.
#[derive(Debug)]
pub(super) enum Settled {
    /// Answer the HTTP publisher.
    Answer(ConnId, Response),
    /// Tell the WebSocket publisher.
    WsReply(ConnId, String),
    /// Close the raw WebSocket publisher, for the refusal.
    CloseRaw(ConnId, HubError),
    /// Item `index` of a server API request has this outcome.
    Item(ConnId, usize, Result<(EventId, bool), HubError>),
    Nothing,
}

/// Settles `pending` with the outcome of its publish (its event's id and
/// whether it was a duplicate, or the refusal): counted, a WebSocket
/// publisher's bytes given back, and what to tell whom.
pub(super) fn settle(
    pending: Pending,
    result: Result<(EventId, bool), HubError>,
    subscribers: &mut Subscribers<ConnId>,
    stats: &HubStats,
) -> Settled {
    match &result {
        Ok((_, false)) => add(&stats.published, 1),
        Ok((_, true)) => add(&stats.duplicates, 1),
        Err(_) => add(&stats.publish_refused, 1),
    }
    match (pending, result) {
        (Pending::Http(conn), Ok((id, duplicate))) => {
            Settled::Answer(conn, Response::json(200, published_json(id, duplicate)))
        }
        (Pending::Http(conn), Err(e)) => Settled::Answer(conn, error_response(&e)),
        (
            Pending::WebSocket {
                conn,
                len,
                envelope,
                key,
                named,
            },
            result,
        ) => {
            let named = named.as_deref();
            let Some(subscriber) = subscribers.get_mut(conn) else {
                return Settled::Nothing;
            };
            subscriber.settle_in_flight(len);
            match result {
                Err(e) if subscriber.transport == Transport::RawWebSocket => Settled::CloseRaw(conn, e),
                _ if subscriber.transport == Transport::RawWebSocket => Settled::Nothing,
                Ok((id, duplicate)) if envelope => {
                    Settled::WsReply(conn, ack_json(named, id, key.as_deref(), duplicate))
                }
                Ok(_) => Settled::Nothing,
                Err(e) => Settled::WsReply(conn, error_json(named, &e.to_string(), key.as_deref())),
            }
        }
        (Pending::Internal, Err(e)) => {
            log::warn!("hub: a publish of the server's own was refused: {e}");
            Settled::Nothing
        }
        (Pending::Internal, Ok(_)) => Settled::Nothing,
        (Pending::Api { conn, index }, result) => Settled::Item(conn, index, result),
        (Pending::External(external), result) => {
            (external.answer)(result);
            Settled::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn envelope(data: &str, event: Option<&str>, key: Option<&str>) -> Envelope {
        Envelope {
            data: Payload::from(data),
            event: event.map(str::to_owned),
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn envelopes() {
        assert_eq!(
            parse_envelope(r#"{"data":"hi","id":"k-1","event":"note"}"#),
            Ok(envelope("hi", Some("note"), Some("k-1")))
        );
        assert_eq!(
            parse_envelope(r#" { "data" : "" } "#),
            Ok(envelope("", None, None))
        );
        assert_eq!(
            parse_envelope(
                "{\"id\":\"k\",\"data\":\"a\\\"b\\\\c\\/\\n\\t\\r\\b\\f\\u00e9\\ud83d\\ude00\u{e9}\"}"
            ),
            Ok(envelope("a\"b\\c/\n\t\r\u{8}\u{c}é😀é", None, Some("k")))
        );
        let all: Vec<u8> = (0..=255).collect();
        let b64 = Payload::Binary(all.clone()).base64();
        assert_eq!(
            parse_envelope(&format!(r#"{{"encoding":"base64","data":"{b64}"}}"#)).map(|e| e.data),
            Ok(Payload::Binary(all))
        );
        for bad in [
            "",
            "hello",
            "[]",
            r#"{"data":"x"} extra"#,
            r#"{"data":"x",}"#,
            r#"{"data":1}"#,
            r#"{"data":null}"#,
            r#"{"data":{"a":"b"}}"#,
            r#"{"data":"x","Id":"k"}"#,
            r#"{"data":"x","id":"k","id":"k"}"#,
            r#"{"data":"x","data":"y"}"#,
            r#"{"id":"k"}"#,
            r#"{"data":"x","id":""}"#,
            r#"{"data":"x","id":"a b"}"#,
            r#"{"data":"x","id":"é"}"#,
            "{\"data\":\"a\nb\"}",
            r#"{"data":"\x"}"#,
            r#"{"data":"\u12"}"#,
            r#"{"data":"\ud83d"}"#,
            r#"{"data":"\ude00"}"#,
            r#"{"data":"\ud83d\u0041"}"#,
            r#"{"data":"unterminated}"#,
            r#"{"data" "x"}"#,
            "{",
            r#"{"data":"AP8","encoding":"base64"}"#,
            r#"{"data":"AP8=","encoding":"hex"}"#,
            r#"{"data":"AP8=","encoding":"base64","encoding":"base64"}"#,
        ] {
            assert!(parse_envelope(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn binary_content_types() {
        for binary in [
            "application/octet-stream",
            "Application/Octet-Stream; charset=x",
            "image/png",
            "audio/ogg",
            "video/mp4",
            "font/woff2",
            "application/x-protobuf",
            "application/cbor",
            "application/msgpack",
        ] {
            assert!(is_binary_type(binary), "{binary}");
        }
        for text in [
            "",
            "text/plain",
            "application/json",
            "application/x-www-form-urlencoded",
            "application/ld+json",
            "octet-stream",
            "multipart/form-data",
        ] {
            assert!(!is_binary_type(text), "{text}");
        }
    }

    #[test]
    fn external_publishes_without_an_outcome_are_dropped_at_their_time() {
        let (tx, rx) = std::sync::mpsc::channel();
        let external = |until| {
            let tx = tx.clone();
            let answer: PublishAnswer = Box::new(move |result| drop(tx.send(result)));
            Pending::External(External { answer, until })
        };
        let now = Instant::now();
        let mut publishes = Publishes::default();
        publishes.pending.insert(1, (external(now), now));
        publishes
            .pending
            .insert(2, (external(now + std::time::Duration::from_secs(1)), now));
        publishes.pending.insert(3, (Pending::Internal, now));
        drop(tx);
        publishes.time_out(now);
        let stats = HubStats::default();
        assert!(publishes.take(1, &stats).is_none());
        assert!(matches!(publishes.take(3, &stats), Some(Pending::Internal)));
        let Some(Pending::External(kept)) = publishes.take(2, &stats) else {
            panic!("the later one is kept");
        };
        (kept.answer)(Ok((EventId::new(4, 0), false)));
        // The dropped one's answer was never called: only the kept one's.
        assert_eq!(rx.iter().collect::<Vec<_>>(), [Ok((EventId::new(4, 0), false))]);
    }

    #[test]
    fn answers() {
        let id = EventId::new(5, 2);
        assert_eq!(published_json(id, false), r#"{"id":"5-2"}"#);
        assert_eq!(published_json(id, true), r#"{"id":"5-2","duplicate":true}"#);
        assert_eq!(
            ack_json(None, id, None, false),
            r#"{"control":"published","id":"5-2"}"#
        );
        assert_eq!(
            ack_json(Some("t"), id, None, false),
            r#"{"control":"published","topic":"t","id":"5-2"}"#
        );
        assert_eq!(
            error_json(Some("t"), "no", None),
            r#"{"control":"error","topic":"t","error":"no"}"#
        );
        assert_eq!(
            ack_json(None, id, Some("k\"1"), true),
            r#"{"control":"published","id":"5-2","key":"k\"1","duplicate":true}"#
        );
        assert_eq!(
            error_json(None, "no", Some("k")),
            r#"{"control":"error","error":"no","key":"k"}"#
        );
        assert_eq!(
            error_json(None, "no", None),
            r#"{"control":"error","error":"no"}"#
        );
    }

    proptest! {
        /// What the hub writes as a JSON string, the envelope reads back.
        #[test]
        fn round_trip(data in any::<String>(), key in "[!-~]{1,128}", event in proptest::option::of("[a-z]{1,8}")) {
            let mut text = format!("{{\"data\":{},\"id\":{}", json_string(&data), json_string(&key));
            if let Some(event) = &event {
                text.push_str(&format!(",\"event\":{}", json_string(event)));
            }
            text.push('}');
            prop_assert_eq!(parse_envelope(&text), Ok(envelope(&data, event.as_deref(), Some(&key))));
        }

        /// Any text: an envelope or an error, never a panic.
        #[test]
        fn never_panics(text in any::<String>(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_envelope(&text);
            let _ = parse_envelope(&String::from_utf8_lossy(&bytes));
            let mut prefixed = String::from("{\"data\":\"");
            prefixed.push_str(&text);
            let _ = parse_envelope(&prefixed);
        }
    }
}
