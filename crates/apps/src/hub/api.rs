//! The server API, for a publisher's backend: `POST /api/publish` (many
//! events in one request), `POST /api/broadcast` (one event to many
//! topics) and `GET /api/history` (a topic's backlog, page by page). This module reads their bodies, keeps the requests whose
//! events wait for the sequencer, and writes their answers; every error
//! is `{"error":{"code":"...","message":"..."}}`.
//!
//! Each item is a publish as `POST /topics/NAME` makes it (the same
//! validation, limits and publish keys), sequenced on its own: a batch is
//! not all-or-nothing, its answer says, item by item and in order, the
//! event's id or why it was not published.

use std::collections::HashMap;
use std::hash::Hash;

use serde_json::Value;
use tether_hub::{Backlog, Error as HubError, EventId, Replay, is_valid_topic, json_string};
use tether_server::{ConnId, Response};

/// The most items of one `POST /api/publish`, and topics of one
/// `POST /api/broadcast`.
pub(super) const MAX_ITEMS: usize = 1000;

/// The API's endpoints (what `/api/...` a request names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ApiRoute {
    /// `POST /api/publish`.
    Publish,
    /// `POST /api/broadcast`.
    Broadcast,
    /// `GET /api/history`.
    History,
    /// Any other path under `/api/`: a JSON 404.
    Unknown,
}

impl ApiRoute {
    /// The endpoint of a path under `/api/`; `None` for any other path.
    pub(super) fn of(path: &str) -> Option<ApiRoute> {
        Some(match path.strip_prefix("/api/")? {
            "publish" => ApiRoute::Publish,
            "broadcast" => ApiRoute::Broadcast,
            "history" => ApiRoute::History,
            _ => ApiRoute::Unknown,
        })
    }
}

/// An error answer: its status, a short code and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ApiError {
    pub(super) status: u16,
    pub(super) code: &'static str,
    pub(super) message: String,
}

impl ApiError {
    pub(super) fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }

    /// What the hub refused a publish for.
    pub(super) fn of_hub(e: &HubError) -> ApiError {
        let code = match e {
            HubError::InvalidTopic => "invalid_topic",
            HubError::InvalidEventType => "invalid_type",
            HubError::InvalidPublishKey => "invalid_key",
            HubError::EventTooLarge { .. } => "too_large",
            HubError::TopicLimit { .. } => "topic_limit",
            HubError::BrokerUnavailable => "unavailable",
            HubError::ShuttingDown => "shutting_down",
            _ => "internal",
        };
        ApiError::new(e.http_status(), code, e.to_string())
    }

    /// `{"error":{"code":"...","message":"..."}}`.
    pub(super) fn json(&self) -> String {
        format!(
            "{{\"error\":{{\"code\":\"{}\",\"message\":{}}}}}",
            self.code,
            json_string(&self.message)
        )
    }

    pub(super) fn response(&self) -> Response {
        let response = Response::json(self.status, self.json());
        match self.status {
            503 => response.header("Retry-After", "1"),
            _ => response,
        }
    }
}

/// 405, naming the methods the endpoint takes (`Allow` too).
pub(super) fn method_not_allowed(allow: &str) -> Response {
    let message = format!("this endpoint takes {allow}");
    ApiError::new(405, "method_not_allowed", message)
        .response()
        .header("Allow", allow)
}

/// Another answer of the hub's (a refusal in plain text: no credential, a
/// bad one, an origin not allowed) in the API's JSON form, its status
/// and headers kept.
pub(super) fn as_json(response: Response) -> Response {
    if response.content_type == "application/json" {
        return response;
    }
    let code = match response.status {
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "too_large",
        429 => "too_many_requests",
        503 => "unavailable",
        504 => "timeout",
        _ => "error",
    };
    let message = String::from_utf8_lossy(&response.body).trim_end().to_owned();
    let error = ApiError::new(response.status, code, message);
    Response {
        content_type: "application/json".to_owned(),
        body: error.json().into_bytes(),
        ..response
    }
}

/// One event to publish: as `POST /topics/NAME` with `?event=TYPE` and
/// `?id=KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    pub(super) topic: String,
    pub(super) data: String,
    pub(super) event_type: Option<String>,
    pub(super) key: Option<String>,
}

/// The body of `POST /api/publish`:
/// `{"items":[{"topic":"a","data":...,"type":"T","key":"K"},...]}`.
pub(super) fn parse_publish(body: &[u8]) -> Result<Vec<Item>, ApiError> {
    let mut root = parse_object(body, &["items"])?;
    let items = take_array(&mut root, "items")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let name = format!("items[{i}]");
        let Value::Object(mut item) = item else {
            return Err(ApiError::bad(format!("{name} must be an object")));
        };
        check_members(&item, &name, &["topic", "data", "type", "key"])?;
        out.push(Item {
            topic: take_string(&mut item, &name, "topic")?,
            data: take_data(&mut item, &name)?,
            event_type: take_optional_string(&mut item, &name, "type")?,
            key: take_optional_string(&mut item, &name, "key")?,
        });
    }
    Ok(out)
}

/// The body of `POST /api/broadcast`:
/// `{"topics":["a","b"],"data":...,"type":"T"}`: one item per topic.
/// Data larger than `max_data` (the largest event) refuses the whole
/// request, before it is copied for every topic.
pub(super) fn parse_broadcast(body: &[u8], max_data: usize) -> Result<Vec<Item>, ApiError> {
    let mut root = parse_object(body, &["topics", "data", "type"])?;
    let topics = take_array(&mut root, "topics")?;
    let data = take_data(&mut root, "")?;
    if data.len() > max_data {
        return Err(ApiError::of_hub(&HubError::EventTooLarge {
            size: data.len(),
            max: max_data,
        }));
    }
    let event_type = take_optional_string(&mut root, "", "type")?;
    let mut out = Vec::with_capacity(topics.len());
    for (i, topic) in topics.into_iter().enumerate() {
        let Value::String(topic) = topic else {
            return Err(ApiError::bad(format!("topics[{i}] must be a string")));
        };
        out.push(Item {
            topic,
            data: data.clone(),
            event_type: event_type.clone(),
            key: None,
        });
    }
    Ok(out)
}

type Object = serde_json::Map<String, Value>;

/// The body as a JSON object with only these members.
fn parse_object(body: &[u8], members: &[&str]) -> Result<Object, ApiError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::bad("the body must be a JSON object"));
    };
    check_members(&object, "", members)?;
    Ok(object)
}

/// `parent.member` for a message (`member` alone at the top).
fn field(parent: &str, member: &str) -> String {
    if parent.is_empty() {
        member.to_owned()
    } else {
        format!("{parent}.{member}")
    }
}

/// Refuses members other than these, so that a misspelt `key` cannot
/// silently turn deduplication off.
fn check_members(object: &Object, parent: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(other) => Err(ApiError::bad(format!(
            "unknown member {} (allowed: {})",
            json_string(&field(parent, other)),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The array `name`, of at most [`MAX_ITEMS`] elements.
fn take_array(object: &mut Object, name: &str) -> Result<Vec<Value>, ApiError> {
    match object.remove(name) {
        Some(Value::Array(items)) if items.len() > MAX_ITEMS => Err(ApiError::new(
            413,
            "too_many_items",
            format!("{name} has {} elements: at most {MAX_ITEMS}", items.len()),
        )),
        Some(Value::Array(items)) if items.is_empty() => {
            Err(ApiError::bad(format!("{name} must not be empty")))
        }
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(ApiError::bad(format!("{name} must be an array"))),
        None => Err(ApiError::bad(format!("{name} is required"))),
    }
}

fn take_string(object: &mut Object, parent: &str, name: &str) -> Result<String, ApiError> {
    take_optional_string(object, parent, name)?
        .ok_or_else(|| ApiError::bad(format!("{} is required", field(parent, name))))
}

fn take_optional_string(object: &mut Object, parent: &str, name: &str) -> Result<Option<String>, ApiError> {
    match object.remove(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad(format!("{} must be a string", field(parent, name)))),
    }
}

/// `data`: a string is published as it is, any other JSON value as its
/// JSON text.
fn take_data(object: &mut Object, parent: &str) -> Result<String, ApiError> {
    match object.remove("data") {
        None => Err(ApiError::bad(format!("{} is required", field(parent, "data")))),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Ok(other.to_string()),
    }
}

/// The events `GET /api/history` answers at most, and by default.
pub(super) const MAX_HISTORY: usize = 1000;
const DEFAULT_HISTORY: usize = 100;

/// What `GET /api/history?topic=NAME&since=ID&limit=N` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HistoryQuery {
    pub(super) topic: String,
    /// The id to read after (`None`: from the oldest event held).
    pub(super) since: Option<EventId>,
    pub(super) limit: usize,
}

/// Reads a history query from `topic`, `since` and `limit` (`None`
/// where the request has no such parameter).
pub(super) fn parse_history(
    topic: Option<String>,
    since: Option<String>,
    limit: Option<String>,
) -> Result<HistoryQuery, ApiError> {
    let topic = topic.ok_or_else(|| ApiError::bad("topic is required"))?;
    if !is_valid_topic(&topic) {
        return Err(ApiError::of_hub(&HubError::InvalidTopic));
    }
    let since = match since.as_deref() {
        None | Some("") => None,
        Some(text) => {
            Some(EventId::parse(text).ok_or_else(|| ApiError::bad("since must be an event id (ms-seq)"))?)
        }
    };
    let limit = match limit {
        None => DEFAULT_HISTORY,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_HISTORY).contains(&n) => n,
            _ => {
                return Err(ApiError::bad(format!(
                    "limit must be a number from 1 to {MAX_HISTORY}"
                )));
            }
        },
    };
    Ok(HistoryQuery { topic, since, limit })
}

/// The answer to a history query from the topic's backlog (`None`: the
/// topic has none):
/// `{"topic":"T","events":[...],"next":"ID","more":BOOL,"gap":null|{...}}`.
/// `next` is the `since` of the next page; `more` says whether the
/// backlog holds events after it; `gap` is the signal a resume from
/// `since` would get (events after it were dropped from the backlog: the
/// events are then those held, from the oldest).
pub(super) fn history(query: &HistoryQuery, backlog: Option<&Backlog>) -> Response {
    let since = query.since.unwrap_or(EventId::ZERO);
    let (gap, mut events) = match backlog.map(|b| b.replay_id(since)) {
        Some(Replay::Events(events)) => (None, Some(events)),
        Some(Replay::Gap(gap, events)) => (query.since.map(|_| gap), Some(events)),
        None => (None, None),
    };
    let mut body = String::from("{\"topic\":");
    body.push_str(&json_string(&query.topic));
    body.push_str(",\"events\":[");
    let mut next = gap.map_or(since, |gap| gap.resume);
    let mut count = 0;
    while count < query.limit
        && let Some(event) = events.as_mut().and_then(Iterator::next)
    {
        if count > 0 {
            body.push(',');
        }
        body.push_str(event.json());
        next = event.id();
        count += 1;
    }
    let more = events.is_some_and(|mut rest| rest.next().is_some());
    body.push_str(&format!("],\"next\":\"{next}\",\"more\":{more},\"gap\":"));
    match gap {
        Some(gap) => body.push_str(&gap.json(&query.topic, &since.to_string())),
        None => body.push_str("null"),
    }
    body.push('}');
    Response::json(200, body).header("Cache-Control", "no-cache")
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Published with this id (or, `true`, its key was remembered:
    /// nothing published, the first event's id).
    Published(EventId, bool),
    Refused(ApiError),
}

impl Outcome {
    pub(super) fn of(result: Result<(EventId, bool), HubError>) -> Outcome {
        match result {
            Ok((id, duplicate)) => Outcome::Published(id, duplicate),
            Err(e) => Outcome::Refused(ApiError::of_hub(&e)),
        }
    }

    fn write(&self, out: &mut String) {
        match self {
            Outcome::Published(id, false) => out.push_str(&format!("{{\"id\":\"{id}\"}}")),
            Outcome::Published(id, true) => {
                out.push_str(&format!("{{\"id\":\"{id}\",\"duplicate\":true}}"));
            }
            Outcome::Refused(e) => out.push_str(&e.json()),
        }
    }
}

/// `{"results":[...]}`, one per item in order; an item still waiting is
/// answered as timed out.
pub(super) fn results_json(results: &[Option<Outcome>]) -> String {
    let timeout = Outcome::Refused(ApiError::new(504, "timeout", "the broker did not answer in time"));
    let mut out = String::from("{\"results\":[");
    for (i, outcome) in results.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        outcome.as_ref().unwrap_or(&timeout).write(&mut out);
    }
    out.push_str("]}");
    out
}

/// A request whose items wait for the sequencer.
#[derive(Debug)]
struct Batch {
    results: Vec<Option<Outcome>>,
    waiting: usize,
}

/// This loop's API requests waiting for their items' outcomes, by
/// connection (one request at a time each).
#[derive(Debug)]
pub(super) struct Batches<C = ConnId> {
    waiting: HashMap<C, Batch>,
}

impl<C> Default for Batches<C> {
    fn default() -> Self {
        Batches {
            waiting: HashMap::new(),
        }
    }
}

impl<C: Copy + Eq + Hash> Batches<C> {
    /// A request of `len` items, all waiting until settled.
    pub(super) fn start(&mut self, conn: C, len: usize) {
        self.waiting.insert(
            conn,
            Batch {
                results: vec![None; len],
                waiting: len,
            },
        );
    }

    /// Item `index` of `conn`'s request has this outcome: the answer, when
    /// it was the last one waited for.
    pub(super) fn settle(&mut self, conn: C, index: usize, outcome: Outcome) -> Option<Response> {
        let batch = self.waiting.get_mut(&conn)?;
        let slot = batch.results.get_mut(index)?;
        if slot.is_some() {
            return None;
        }
        *slot = Some(outcome);
        batch.waiting = batch.waiting.saturating_sub(1);
        if batch.waiting > 0 {
            return None;
        }
        let batch = self.waiting.remove(&conn)?;
        Some(Response::json(200, results_json(&batch.results)))
    }

    /// `conn`'s request timed out: what is known, the rest timed out.
    pub(super) fn time_out(&mut self, conn: C) -> Option<Response> {
        let batch = self.waiting.remove(&conn)?;
        Some(Response::json(200, results_json(&batch.results)))
    }

    /// `conn` went away.
    pub(super) fn forget(&mut self, conn: C) {
        self.waiting.remove(&conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(topic: &str, data: &str, event_type: Option<&str>, key: Option<&str>) -> Item {
        Item {
            topic: topic.to_owned(),
            data: data.to_owned(),
            event_type: event_type.map(str::to_owned),
            key: key.map(str::to_owned),
        }
    }

    #[test]
    fn routes() {
        assert_eq!(ApiRoute::of("/api/publish"), Some(ApiRoute::Publish));
        assert_eq!(ApiRoute::of("/api/broadcast"), Some(ApiRoute::Broadcast));
        assert_eq!(ApiRoute::of("/api/history"), Some(ApiRoute::History));
        assert_eq!(ApiRoute::of("/api/other"), Some(ApiRoute::Unknown));
        assert_eq!(ApiRoute::of("/api/"), Some(ApiRoute::Unknown));
        assert_eq!(ApiRoute::of("/api"), None);
        assert_eq!(ApiRoute::of("/topics/a"), None);
    }

    #[test]
    fn batches_parse() {
        let body =
            br#"{"items":[{"topic":"a","data":"x"},{"topic":"b","data":{"n":1},"type":"t","key":"k"}]}"#;
        assert_eq!(
            parse_publish(body),
            Ok(vec![
                item("a", "x", None, None),
                item("b", r#"{"n":1}"#, Some("t"), Some("k")),
            ])
        );
        // Invalid names are the hub's to refuse, item by item.
        assert_eq!(
            parse_publish(br#"{"items":[{"topic":"a b","data":""}]}"#),
            Ok(vec![item("a b", "", None, None)])
        );
    }

    #[test]
    fn broadcasts_parse() {
        assert_eq!(
            parse_broadcast(br#"{"topics":["a","b"],"data":"x","type":"t"}"#, 10),
            Ok(vec![
                item("a", "x", Some("t"), None),
                item("b", "x", Some("t"), None)
            ])
        );
        assert_eq!(
            parse_broadcast(br#"{"topics":["a"],"data":[1,2]}"#, 10),
            Ok(vec![item("a", "[1,2]", None, None)])
        );
        // Too large for an event: refused before it is copied per topic.
        let e = parse_broadcast(br#"{"topics":["a","b"],"data":"12345678901"}"#, 10).unwrap_err();
        assert_eq!((e.status, e.code), (413, "too_large"));
    }

    #[test]
    fn bad_bodies_name_the_field() {
        for (body, message) in [
            (&b"nope"[..], "malformed JSON"),
            (b"[]", "the body must be a JSON object"),
            (b"{}", "items is required"),
            (br#"{"items":{}}"#, "items must be an array"),
            (br#"{"items":[]}"#, "items must not be empty"),
            (br#"{"items":[1]}"#, "items[0] must be an object"),
            (br#"{"items":[{"data":"x"}]}"#, "items[0].topic is required"),
            (br#"{"items":[{"topic":"a"}]}"#, "items[0].data is required"),
            (
                br#"{"items":[{"topic":1,"data":"x"}]}"#,
                "items[0].topic must be a string",
            ),
            (
                br#"{"items":[{"topic":"a","data":"x","key":2}]}"#,
                "items[0].key must be a string",
            ),
            (
                br#"{"items":[{"topic":"a","data":"x","id":"k"}]}"#,
                "unknown member \"items[0].id\"",
            ),
            (br#"{"items":[],"other":1}"#, "unknown member \"other\""),
        ] {
            let e = parse_publish(body).unwrap_err();
            assert_eq!((e.status, e.code), (400, "bad_request"), "{body:?}");
            assert!(e.message.starts_with(message), "{body:?}: {}", e.message);
        }
        for (body, message) in [
            (&br#"{"data":"x"}"#[..], "topics is required"),
            (br#"{"topics":["a"]}"#, "data is required"),
            (br#"{"topics":[1],"data":"x"}"#, "topics[0] must be a string"),
            (
                br#"{"topics":["a"],"data":"x","key":"k"}"#,
                "unknown member \"key\"",
            ),
        ] {
            let e = parse_broadcast(body, 10).unwrap_err();
            assert!(e.message.starts_with(message), "{body:?}: {}", e.message);
        }
    }

    #[test]
    fn too_many_items() {
        let items = vec![r#"{"topic":"a","data":""}"#; MAX_ITEMS + 1].join(",");
        let e = parse_publish(format!("{{\"items\":[{items}]}}").as_bytes()).unwrap_err();
        assert_eq!((e.status, e.code), (413, "too_many_items"));
        let items = vec![r#"{"topic":"a","data":""}"#; MAX_ITEMS].join(",");
        assert_eq!(
            parse_publish(format!("{{\"items\":[{items}]}}").as_bytes()).map(|i| i.len()),
            Ok(MAX_ITEMS)
        );
        let topics = vec!["\"a\""; MAX_ITEMS + 1].join(",");
        let e =
            parse_broadcast(format!("{{\"topics\":[{topics}],\"data\":\"\"}}").as_bytes(), 10).unwrap_err();
        assert_eq!(e.status, 413);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let body = format!("{{\"items\":[{{\"topic\":\"a\",\"data\":{deep}}}]}}");
        assert_eq!(parse_publish(body.as_bytes()).unwrap_err().status, 400);
    }

    fn query(
        topic: Option<&str>,
        since: Option<&str>,
        limit: Option<&str>,
    ) -> Result<HistoryQuery, ApiError> {
        parse_history(
            topic.map(str::to_owned),
            since.map(str::to_owned),
            limit.map(str::to_owned),
        )
    }

    #[test]
    fn history_queries() {
        assert_eq!(
            query(Some("a"), Some("5-1"), Some("10")),
            Ok(HistoryQuery {
                topic: "a".to_owned(),
                since: Some(EventId::new(5, 1)),
                limit: 10
            })
        );
        assert_eq!(
            query(Some("a"), Some(""), None).map(|q| (q.since, q.limit)),
            Ok((None, 100))
        );
        assert_eq!(query(None, None, None).unwrap_err().message, "topic is required");
        assert_eq!(query(Some("a b"), None, None).unwrap_err().code, "invalid_topic");
        assert!(
            query(Some("a"), Some("x"), None)
                .unwrap_err()
                .message
                .starts_with("since")
        );
        for bad in ["0", "1001", "-1", "x", "", "99999999999999999999999"] {
            assert!(
                query(Some("a"), None, Some(bad))
                    .unwrap_err()
                    .message
                    .starts_with("limit"),
                "{bad}"
            );
        }
    }

    fn text(response: &Response) -> Value {
        serde_json::from_slice(&response.body).unwrap()
    }

    #[test]
    fn history_pages() {
        let mut backlog = Backlog::new(3, 1 << 20);
        for seq in 1..=5 {
            let event =
                tether_hub::Event::new("a".into(), EventId::new(1, seq), "message", &format!("e{seq}"));
            backlog.push(event.unwrap()).unwrap();
        }
        let read = |since: Option<EventId>, limit| {
            let q = HistoryQuery {
                topic: "a".to_owned(),
                since,
                limit,
            };
            text(&history(&q, Some(&backlog)))
        };
        // 1-1 and 1-2 were dropped: from the start, the oldest held.
        let first = read(None, 2);
        assert_eq!(first["events"].as_array().unwrap().len(), 2);
        assert_eq!(
            (first["next"].as_str(), first["more"].as_bool()),
            (Some("1-4"), Some(true))
        );
        assert!(first["gap"].is_null());
        let last = read(Some(EventId::new(1, 4)), 2);
        assert_eq!(last["events"][0]["data"], "e5");
        assert_eq!(
            (last["next"].as_str(), last["more"].as_bool()),
            (Some("1-5"), Some(false))
        );
        let done = read(Some(EventId::new(1, 5)), 2);
        assert_eq!(
            (done["next"].as_str(), done["events"].as_array().map(Vec::len)),
            (Some("1-5"), Some(0))
        );
        // Older than the backlog: the gap, then what is held.
        let gap = read(Some(EventId::new(1, 1)), 10);
        assert_eq!(gap["events"].as_array().unwrap().len(), 3);
        assert!(gap["gap"].is_object(), "{gap}");
        // No backlog at all.
        let q = HistoryQuery {
            topic: "b".to_owned(),
            since: None,
            limit: 5,
        };
        let none = text(&history(&q, None));
        assert_eq!(
            (none["next"].as_str(), none["more"].as_bool()),
            (Some("0-0"), Some(false))
        );
    }

    #[test]
    fn answers() {
        let e = ApiError::of_hub(&HubError::InvalidTopic);
        assert_eq!((e.status, e.code), (400, "invalid_topic"));
        let results = [
            Some(Outcome::Published(EventId::new(5, 2), false)),
            Some(Outcome::Published(EventId::new(5, 1), true)),
            Some(Outcome::Refused(ApiError::new(403, "forbidden", "no \"a\""))),
            None,
        ];
        assert_eq!(
            results_json(&results),
            concat!(
                r#"{"results":[{"id":"5-2"},{"id":"5-1","duplicate":true},"#,
                r#"{"error":{"code":"forbidden","message":"no \"a\""}},"#,
                r#"{"error":{"code":"timeout","message":"the broker did not answer in time"}}]}"#
            )
        );
        let refused = as_json(Response::text(401, "invalid token\n").header("WWW-Authenticate", "Bearer"));
        assert_eq!(refused.status, 401);
        assert_eq!(refused.headers.len(), 1);
        assert_eq!(
            refused.body,
            br#"{"error":{"code":"unauthorized","message":"invalid token"}}"#
        );
    }

    #[test]
    fn batches_answer_when_the_last_item_settles() {
        let mut batches = Batches::<u32>::default();
        let conn = 1;
        let refused = Outcome::Refused(ApiError::of_hub(&HubError::InvalidTopic));
        batches.start(conn, 1);
        assert!(batches.settle(conn, 0, refused.clone()).is_some());
        batches.start(conn, 3);
        assert!(batches.settle(conn, 1, refused).is_none());
        let id = EventId::new(1, 0);
        assert!(batches.settle(conn, 2, Outcome::Published(id, false)).is_none());
        // Settled twice, or out of range: ignored.
        assert!(batches.settle(conn, 2, Outcome::Published(id, false)).is_none());
        assert!(batches.settle(conn, 9, Outcome::Published(id, false)).is_none());
        let answer = batches.settle(conn, 0, Outcome::Published(id, false)).unwrap();
        assert_eq!(answer.status, 200);
        assert!(batches.settle(conn, 0, Outcome::Published(id, false)).is_none());
        batches.start(conn, 2);
        assert!(batches.settle(conn, 1, Outcome::Published(id, false)).is_none());
        let partial = batches.time_out(conn).unwrap();
        assert!(String::from_utf8(partial.body).unwrap().contains("timeout"));
        assert!(batches.time_out(conn).is_none());
    }
}
