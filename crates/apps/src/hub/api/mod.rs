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

mod batch;
mod history;
mod parse;

use tether_hub::{Error as HubError, HubMessage, Publish, json_string};
use tether_server::{ConnId, Ctx, Reply, Request, Response};

use super::HubApp;
use super::access::Credential;
use super::broker_view::LoopContext;
use super::publish::Pending;
pub(in crate::hub) use batch::{Batches, Outcome};

/// The most items of one `POST /api/publish`, and topics of one
/// `POST /api/broadcast`.
pub(in crate::hub) const MAX_ITEMS: usize = 1000;

/// The API's endpoints (what `/api/...` a request names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::hub) enum ApiRoute {
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
    pub(in crate::hub) fn of(path: &str) -> Option<ApiRoute> {
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
pub(in crate::hub) struct ApiError {
    pub(in crate::hub) status: u16,
    pub(in crate::hub) code: &'static str,
    pub(in crate::hub) message: String,
}

impl ApiError {
    pub(in crate::hub) fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(in crate::hub) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }

    /// What the hub refused a publish for.
    pub(in crate::hub) fn of_hub(e: &HubError) -> ApiError {
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
    pub(in crate::hub) fn json(&self) -> String {
        format!(
            "{{\"error\":{{\"code\":\"{}\",\"message\":{}}}}}",
            self.code,
            json_string(&self.message)
        )
    }

    pub(in crate::hub) fn response(&self) -> Response {
        let response = Response::json(self.status, self.json());
        match self.status {
            503 => response.header("Retry-After", "1"),
            _ => response,
        }
    }
}

/// 405, naming the methods the endpoint takes (`Allow` too).
pub(in crate::hub) fn method_not_allowed(allow: &str) -> Response {
    let message = format!("this endpoint takes {allow}");
    ApiError::new(405, "method_not_allowed", message)
        .response()
        .header("Allow", allow)
}

/// Another answer of the hub's (a refusal in plain text: no credential, a
/// bad one, an origin not allowed) in the API's JSON form, its status
/// and headers kept.
pub(in crate::hub) fn as_json(response: Response) -> Response {
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

/// The server API's side of the hub's callbacks.
impl HubApp {
    /// `/api/...`: the server API. Every item is checked and sequenced as
    /// `POST /topics/NAME` would be; the answer waits for all of them.
    pub(super) fn api_request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        request: &Request<'_>,
        body: &[u8],
        route: ApiRoute,
    ) -> Reply {
        match route {
            ApiRoute::Publish | ApiRoute::Broadcast => {}
            ApiRoute::History => return Reply::Now(self.api_history(request)),
            ApiRoute::Unknown => {
                let e = ApiError::new(
                    404,
                    "not_found",
                    "no such API endpoint (/api/publish, /api/broadcast, /api/history)",
                );
                return Reply::Now(e.response());
            }
        }
        if request.method() != "POST" {
            return Reply::Now(method_not_allowed("POST"));
        }
        let credential = match self.shared.access.authenticate(&self.stats, request) {
            Ok(credential) => credential,
            Err(refusal) => return Reply::Now(as_json(refusal)),
        };
        let parsed = if route == ApiRoute::Broadcast {
            parse::parse_broadcast(body, self.shared.settings.hub.max_event_size)
        } else {
            parse::parse_publish(body)
        };
        let items = match parsed {
            Ok(items) => items,
            Err(e) => return Reply::Now(e.response()),
        };
        self.batches.start(conn, items.len());
        let mut answer = None;
        for (index, item) in items.into_iter().enumerate() {
            if let Some(outcome) = self.api_item(ctx, conn, index, item, &credential)
                && let Some(response) = self.batches.settle(conn, index, outcome)
            {
                answer = Some(response);
            }
        }
        match answer {
            Some(response) => Reply::Now(response),
            None => Reply::Later(self.shared.settings.publish_timeout),
        }
    }

    /// `GET /api/history`: a page of the topic's backlog, read from this
    /// loop's replica, which has every topic's backlog when the broker is
    /// complete (the in-process one).
    fn api_history(&self, request: &Request<'_>) -> Response {
        if request.method() != "GET" && request.method() != "HEAD" {
            return method_not_allowed("GET, HEAD");
        }
        let query = match parse::parse_history(
            request.query_param("topic"),
            request.query_param("since"),
            request.query_param("limit"),
        ) {
            Ok(query) => query,
            Err(e) => return e.response(),
        };
        if let Some(refusal) = self
            .shared
            .access
            .check_publisher(&self.stats, request, Some(&query.topic))
        {
            return as_json(refusal);
        }
        if !self.broker.complete() {
            return ApiError::new(
                501,
                "not_implemented",
                "history is read from the in-process broker's backlogs: not available with this broker",
            )
            .response();
        }
        history::history(&query, self.hub.backlog(&query.topic))
    }

    /// Item `index` of an API request handed to the broker (`None`), or
    /// its refusal.
    fn api_item(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        index: usize,
        item: parse::Item,
        credential: &Credential,
    ) -> Option<Outcome> {
        let publish = Publish::new(
            &item.topic,
            item.event_type.as_deref(),
            item.data,
            &self.shared.settings.hub,
        )
        .and_then(|publish| match &item.key {
            Some(key) => publish.with_key(key),
            None => Ok(publish),
        });
        let publish = match publish {
            Ok(publish) => publish,
            Err(e) => return Some(Outcome::of(Err(e))),
        };
        if !credential.may_publish(&item.topic) {
            return Some(Outcome::Refused(ApiError::new(
                403,
                "forbidden",
                "the token does not grant this topic",
            )));
        }
        match self.publishes.submit(
            &mut LoopContext { ctx },
            &mut *self.broker,
            &self.stats,
            publish,
            Pending::Api { conn, index },
        ) {
            Ok(()) => None,
            Err(e) => Some(Outcome::of(Err(e))),
        }
    }

    /// An API item's outcome came from the sequencer: the answer, when it
    /// was the last one its request waited for.
    pub(super) fn api_item_settled(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        index: usize,
        result: Result<(tether_hub::EventId, bool), HubError>,
    ) {
        if let Some(response) = self.batches.settle(conn, index, Outcome::of(result)) {
            self.cors.respond(ctx, conn, response);
        }
    }

    /// An API request that was not answered in time: what is known, each
    /// item still waiting as timed out.
    pub(super) fn api_timeout(&mut self, conn: ConnId) -> Response {
        self.publishes.forget(conn);
        self.batches
            .time_out(conn)
            .unwrap_or_else(|| ApiError::new(504, "timeout", "the broker did not answer in time").response())
    }

    /// The client of an API request went away.
    pub(super) fn api_abandoned(&mut self, conn: ConnId) {
        self.batches.forget(conn);
        self.publishes.forget(conn);
    }

    /// An API request refused before its body is read, if its credential
    /// is missing or bad (its body would be of no use).
    pub(super) fn api_refuse_before_body(&self, request: &Request<'_>) -> Option<Response> {
        let route = ApiRoute::of(request.path())?;
        if request.method() != "POST" || !matches!(route, ApiRoute::Publish | ApiRoute::Broadcast) {
            return None;
        }
        let refusal = self.shared.access.authenticate(&self.stats, request).err()?;
        Some(as_json(refusal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
