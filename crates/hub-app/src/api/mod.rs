//! The server API, for a publisher's backend: `POST /api/publish` (many
//! events in one request), `POST /api/broadcast` (one event to many
//! topics), `GET /api/history` (a topic's backlog, page by page),
//! presence (`GET /api/presence`, `POST /api/presence/counts`), the
//! topics a node has (`GET /api/topics`, `GET /api/topics/info`) and
//! actions on one user's connections (`POST /api/disconnect`,
//! `/api/unsubscribe`, `/api/refresh`). This module reads their bodies
//! (`parse`), keeps the requests that wait for the sequencer (`batch`)
//! or for every loop (`users`; what each loop does: `act`), and writes
//! their answers;
//! every error is `{"error":{"code":"...","message":"..."}}`.
//!
//! Each publish item is a publish as `POST /topics/NAME` makes it (the
//! same validation, limits and publish keys), sequenced on its own: a
//! batch is not all-or-nothing, its answer says, item by item and in
//! order, the event's id or why it was not published.
//!
//! Who may do what: every endpoint takes the publish token. A JSON Web
//! Token may publish where its `pub` rights reach; read a topic's
//! history, presence and numbers where it may subscribe or publish (or
//! the topic is not private), and list those topics only; the user
//! actions need the publish token.

mod act;
mod batch;
mod history;
mod parse;
mod users;

use std::sync::Arc;

use tether_hub::{
    ControlMessage, Error as HubError, Hub, HubMessage, Publish, ReplyTo, UserAction, json_string,
    post_to_all,
};
use tether_server::{ConnId, Ctx, Reply, Request, Response};

use super::access::{Access, Credential};
use super::access::{DEFAULT_REVOCATION_TTL, MAX_REVOCATIONS};
use super::admission::Admission;
use super::broker_view::LoopContext;
use super::cors::Cors;
use super::deliver::Delivery;
use super::loop_parts::LoopParts;
use super::metrics::count_refusal;
use super::metrics::{HubStats, add};
use super::presence::Asker;
use super::publishing::Pending;
use super::publishing::Publishing;
pub(crate) use super::routes::ApiRoute;
use super::routes::{HubRoute, Refusal};
pub(crate) use batch::{Batches, Outcome};
pub(crate) use users::GatheringRequests;

/// The most items of one `POST /api/publish`, and topics of one
/// `POST /api/broadcast`.
pub(crate) const MAX_ITEMS: usize = 1000;

/// An error answer: its status, a short code and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }

    /// What the hub refused a publish for.
    pub(crate) fn of_hub(e: &HubError) -> ApiError {
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
    pub(crate) fn json(&self) -> String {
        format!(
            "{{\"error\":{{\"code\":\"{}\",\"message\":{}}}}}",
            self.code,
            json_string(&self.message)
        )
    }

    pub(crate) fn response(&self) -> Response {
        let retry = (self.status == 503).then_some(crate::replies::SOON);
        crate::replies::refusal(Response::json(self.status, self.json()), retry)
    }
}

/// 405, naming the methods the endpoint takes (`Allow` too).
pub(crate) fn method_not_allowed(allow: &str) -> Response {
    let message = format!("this endpoint takes {allow}");
    ApiError::new(405, "method_not_allowed", message)
        .response()
        .header("Allow", allow)
}

/// Another answer of the hub's (a refusal in plain text: no credential, a
/// bad one, an origin not allowed) in the API's JSON form, its status
/// and headers kept.
pub(crate) fn as_json(response: Response) -> Response {
    if response.content_type == "application/json" {
        return response;
    }
    let revoked = response.status == 401 && response.body.starts_with(b"token revoked");
    let code = match response.status {
        401 if revoked => "revoked",
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

/// The server API on one loop: its requests waiting for their items'
/// outcomes or for every loop's answer.
#[derive(Debug, Default)]
pub(crate) struct ServerApi {
    /// Requests waiting for their items' outcomes.
    batches: Batches,
    /// Requests waiting for every loop's answer.
    gathering: GatheringRequests,
}

/// The loop's concerns a server API request acts on, lent by the hub
/// for one call.
pub(crate) struct Lent<'a> {
    pub(crate) delivery: &'a mut Delivery,
    pub(crate) publishing: &'a mut Publishing,
}

/// One server API request: its connection, its head and its body.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a, 'r> {
    pub(crate) conn: ConnId,
    pub(crate) request: &'a Request<'r>,
    pub(crate) body: &'a [u8],
}

/// The server API's side of the hub's callbacks.
impl ServerApi {
    /// `/api/...`: the server API. The method and the credential are
    /// checked first (the credential once: what it may do is asked of the
    /// one verified here), then the endpoint answers.
    pub(crate) fn request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        lent: Lent<'_>,
        call: Call<'_, '_>,
        admission: &mut Admission,
    ) -> Reply {
        let HubRoute::Api(route) = admission.route else {
            return Reply::Now(Response::text(404, "404 Not Found\n"));
        };
        self.serve(ctx, parts, lent, call, route, Some(admission))
    }

    /// A server API request made from the admin page (whose session the
    /// admin routes checked): answered as for the publish token.
    pub(crate) fn request_as_admin(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        lent: Lent<'_>,
        call: Call<'_, '_>,
        route: ApiRoute,
    ) -> Reply {
        self.serve(ctx, parts, lent, call, route, None)
    }

    /// The endpoint's answer, for the credential of the request's
    /// `admission` (verified here, once), or the publish token's (`None`:
    /// the admin page's).
    fn serve(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        lent: Lent<'_>,
        call: Call<'_, '_>,
        route: ApiRoute,
        admission: Option<&mut Admission>,
    ) -> Reply {
        let Lent { delivery, publishing } = lent;
        let Call { conn, request, body } = call;
        if route == ApiRoute::Unknown {
            let e = ApiError::new(
                404,
                "not_found",
                "no such API endpoint (see the README's Server API)",
            );
            return Reply::Now(e.response());
        }
        let method = request.method();
        if route.is_post() && method != "POST" {
            return Reply::Now(method_not_allowed("POST"));
        }
        if !route.is_post() && method != "GET" && method != "HEAD" {
            return Reply::Now(method_not_allowed("GET, HEAD"));
        }
        let credential = match admission {
            None => Credential::Admin,
            Some(admission) => {
                let access = &parts.shared.access;
                let credential = admission.take_credential(access, request);
                if let Err(refusal) = access.authenticated(parts.stats, &credential) {
                    return Reply::Now(as_json(refusal));
                }
                credential.unwrap_or(Credential::None)
            }
        };
        let answer = match route {
            ApiRoute::Publish | ApiRoute::Broadcast => {
                return self.publish(ctx, parts, publishing, call, route, &credential);
            }
            ApiRoute::History => self.history(ctx, parts, delivery.hub(), conn, request, &credential),
            ApiRoute::Presence => Self::presence(ctx, parts, delivery, conn, request, &credential),
            ApiRoute::PresenceCounts => self.presence_counts(ctx, parts, delivery, conn, body, &credential),
            ApiRoute::Topics | ApiRoute::TopicInfo => {
                self.topics(ctx, parts, conn, request, route, credential)
            }
            ApiRoute::Disconnect | ApiRoute::Unsubscribe | ApiRoute::Refresh | ApiRoute::Subscribe => {
                self.user_action(ctx, parts, conn, body, route, &credential)
            }
            ApiRoute::Revoke => Self::revoke(ctx, parts, delivery, body, &credential),
            ApiRoute::Revoked => Self::revoked(ctx, parts, &credential),
            ApiRoute::Connections => self.connections(ctx, parts, conn, request, &credential),
            ApiRoute::Unknown => Err(ApiError::new(404, "not_found", "no such API endpoint")),
        };
        match answer {
            Ok(Some(response)) => Reply::Now(response),
            Ok(None) => Reply::Later(parts.shared.settings.publish_timeout),
            Err(e) => Reply::Now(e.response()),
        }
    }

    /// `POST /api/publish` and `POST /api/broadcast`: every item is
    /// checked and sequenced as `POST /topics/NAME` would be; the answer
    /// waits for all of them.
    fn publish(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        publishing: &mut Publishing,
        call: Call<'_, '_>,
        route: ApiRoute,
        credential: &Credential,
    ) -> Reply {
        let Call { conn, body, .. } = call;
        let parsed = if route == ApiRoute::Broadcast {
            parse::parse_broadcast(body, parts.shared.settings.hub.max_event_size)
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
            if let Some(outcome) = Self::item_published(ctx, parts, publishing, conn, index, item, credential)
                && let Some(response) = self.batches.settle(conn, index, outcome)
            {
                answer = Some(response);
            }
        }
        match answer {
            Some(response) => Reply::Now(response),
            None => Reply::Later(parts.shared.settings.publish_timeout),
        }
    }

    /// 403 unless the credential may read `topic` (counted).
    fn may_read(parts: &LoopParts<'_>, credential: &Credential, topic: &str) -> Result<(), ApiError> {
        if parts.shared.access.may_read(credential, topic) {
            return Ok(());
        }
        count_refusal(parts.stats, Refusal::NotGranted);
        Err(ApiError::new(
            403,
            "forbidden",
            "the token does not grant this topic",
        ))
    }

    /// 403 unless the credential is the publish token (counted): what acts
    /// on other users' connections, or lists every topic, needs it.
    fn admin(parts: &LoopParts<'_>, credential: &Credential) -> Result<(), ApiError> {
        if matches!(credential, Credential::Admin) {
            return Ok(());
        }
        count_refusal(parts.stats, Refusal::NotGranted);
        Err(ApiError::new(
            403,
            "forbidden",
            "this endpoint needs the publish token",
        ))
    }

    /// `GET /api/history`: a page of the topic's backlog, read from this
    /// loop's replica, which has every topic's backlog when the broker is
    /// complete (the in-process one); else from the topic's sequencer.
    fn history(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        hub: &Hub<crate::subscribers::SubKey>,
        conn: ConnId,
        request: &Request<'_>,
        credential: &Credential,
    ) -> Result<Option<Response>, ApiError> {
        let query = parse::parse_history(
            request.query_param("topic"),
            request.query_param("since"),
            request.query_param("limit"),
            request.query_param("reverse"),
        )?;
        Self::may_read(parts, credential, &query.topic)?;
        if parts.broker.complete() {
            // Every loop's replica has every topic's backlog.
            return Ok(Some(history::history(&query, hub.backlog(&query.topic))));
        }
        // Asked of the topic's sequencer, whose broker holds it (the
        // durable one) or reads it from its bus, off the loop.
        let (this, loops) = ctx.loop_index();
        let token = self.gathering.start(conn, 1, users::Waiting::History);
        let sequencer = tether_hub::sequencer_of(&query.topic, loops.max(1));
        let question = ControlMessage::History {
            reply: ReplyTo {
                loop_index: this,
                token,
            },
            query,
        };
        ctx.post(sequencer, HubMessage::Control(question));
        Ok(None)
    }

    /// `GET /api/presence?topic=NAME`: asked of the topic's sequencer.
    fn presence(
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        delivery: &mut Delivery,
        conn: ConnId,
        request: &Request<'_>,
        credential: &Credential,
    ) -> Result<Option<Response>, ApiError> {
        let topic = parse::parse_topic(request.query_param("topic"))?;
        Self::may_read(parts, credential, &topic)?;
        delivery.ask_members(ctx, Asker::Api(conn), &topic);
        Ok(None)
    }

    /// `POST /api/presence/counts`: each topic asked of its sequencer.
    fn presence_counts(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        delivery: &mut Delivery,
        conn: ConnId,
        body: &[u8],
        credential: &Credential,
    ) -> Result<Option<Response>, ApiError> {
        let topics = parse::parse_counts(body)?;
        for topic in &topics {
            Self::may_read(parts, credential, topic)?;
        }
        let topics: Vec<Arc<str>> = topics.into_iter().map(Arc::from).collect();
        let waiting = users::Waiting::Counts {
            counts: vec![None; topics.len()],
            topics: topics.clone(),
        };
        let token = self.gathering.start(conn, topics.len(), waiting);
        for (index, topic) in topics.iter().enumerate() {
            delivery.ask_members(ctx, Asker::Count { conn, token, index }, topic);
        }
        Ok(None)
    }

    /// `GET /api/topics` and `GET /api/topics/info?topic=NAME`: every
    /// loop is asked what it has.
    fn topics(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        conn: ConnId,
        request: &Request<'_>,
        route: ApiRoute,
        credential: Credential,
    ) -> Result<Option<Response>, ApiError> {
        let page = parse::parse_topics(request.query_param("after"), request.query_param("limit"))?;
        let one = if route == ApiRoute::TopicInfo {
            let topic = parse::parse_topic(request.query_param("topic"))?;
            Self::may_read(parts, &credential, &topic)?;
            Some(Arc::from(topic))
        } else {
            None
        };
        let loops = ctx.loop_index().1.max(1);
        let reader = Box::new(users::Reader {
            credential,
            access: parts.shared.access.clone(),
        });
        let waiting = users::Waiting::Topics {
            reader,
            page,
            one: one.clone(),
            reports: Vec::new(),
        };
        let token = self.gathering.start(conn, loops, waiting);
        let reply = ReplyTo {
            loop_index: ctx.loop_index().0,
            token,
        };
        post_to_all(
            &mut LoopContext { ctx },
            &ControlMessage::Topics { reply, only: one },
        );
        Ok(None)
    }

    /// `POST /api/revoke`: the entries join the revocation list every
    /// loop checks credentials against (and, through the broker, every
    /// node's); this loop ends its connections they revoke at once, the
    /// others on their next tick, within a second. Answered
    /// `{"revoked":N}`, the entries taken.
    fn revoke(
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        delivery: &mut Delivery,
        body: &[u8],
        credential: &Credential,
    ) -> Result<Option<Response>, ApiError> {
        Self::admin(parts, credential)?;
        let now = parts.shared.access.unix_secs(ctx.now());
        let revocations = parse::parse_revoke(body, now, DEFAULT_REVOCATION_TTL.as_secs())?;
        if parts.shared.access.revocations.add(&revocations, now).is_err() {
            return Err(ApiError::new(
                507,
                "too_many_revocations",
                format!(
                    "the revocation list holds {MAX_REVOCATIONS} entries that have not expired: revoke with an earlier until, or wait"
                ),
            ));
        }
        parts.shared.share_revocations(&revocations);
        delivery.end_revoked(ctx, parts, now);
        let body = format!("{{\"revoked\":{}}}", revocations.len());
        Ok(Some(
            Response::json(200, body).header("Cache-Control", "no-store"),
        ))
    }

    /// `GET /api/revoked`: the entries of the revocation list.
    fn revoked(
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        credential: &Credential,
    ) -> Result<Option<Response>, ApiError> {
        Self::admin(parts, credential)?;
        let now = parts.shared.access.unix_secs(ctx.now());
        let entries = parts.shared.access.revocations.entries(now);
        let body = super::access::entries_json(&entries);
        Ok(Some(
            Response::json(200, body).header("Cache-Control", "no-store"),
        ))
    }

    /// `GET /api/connections?user=SUB`: the subject's connections, asked
    /// of every loop.
    fn connections(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &LoopParts<'_>,
        conn: ConnId,
        request: &Request<'_>,
        credential: &Credential,
    ) -> Result<Option<Response>, ApiError> {
        Self::admin(parts, credential)?;
        let user: Arc<str> = Arc::from(parse::parse_user(request.query_param("user"))?);
        let loops = ctx.loop_index().1.max(1);
        let waiting = users::Waiting::Connections {
            user: Arc::clone(&user),
            found: Vec::new(),
        };
        let token = self.gathering.start(conn, loops, waiting);
        let reply = ReplyTo {
            loop_index: ctx.loop_index().0,
            token,
        };
        post_to_all(
            &mut LoopContext { ctx },
            &ControlMessage::Connections { reply, user },
        );
        Ok(None)
    }

    /// `POST /api/disconnect`, `/api/unsubscribe` and `/api/refresh`:
    /// posted to every loop, answered with how many connections they
    /// acted on.
    fn user_action(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        body: &[u8],
        route: ApiRoute,
        credential: &Credential,
    ) -> Result<Option<Response>, ApiError> {
        Self::admin(parts, credential)?;
        let (action, label) = match route {
            ApiRoute::Refresh => {
                let (user, expires_at) = parse::parse_refresh(body)?;
                let user = Arc::from(user);
                (UserAction::Refresh { user, expires_at }, "refreshed")
            }
            ApiRoute::Subscribe => {
                let (user, topic) = parse::parse_subscribe(body)?;
                let (user, topic) = (Arc::from(user), Arc::from(topic));
                (UserAction::Subscribe { user, topic }, "subscribed")
            }
            _ => {
                let close = parse::parse_user_close(body, route == ApiRoute::Unsubscribe)?;
                let user = Arc::from(close.user);
                let (code, reason) = (close.code, close.reason);
                let action = match close.topic {
                    Some(topic) => UserAction::Unsubscribe {
                        user,
                        topic: Arc::from(topic),
                        code,
                        reason,
                    },
                    None => UserAction::Disconnect { user, code, reason },
                };
                (action, "closed")
            }
        };
        let loops = ctx.loop_index().1.max(1);
        let token = self
            .gathering
            .start(conn, loops, users::Waiting::Act { label, total: 0 });
        let reply = Some(ReplyTo {
            loop_index: ctx.loop_index().0,
            token,
        });
        let mut cx = LoopContext { ctx };
        parts.broker.user_action(&action, &mut cx);
        post_to_all(&mut cx, &ControlMessage::Act { action, reply });
        Ok(None)
    }

    /// Item `index` of an API request handed to the broker (`None`), or
    /// its refusal.
    fn item_published(
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        publishing: &mut Publishing,
        conn: ConnId,
        index: usize,
        item: parse::Item,
        credential: &Credential,
    ) -> Option<Outcome> {
        let publish = Publish::new(
            &item.topic,
            item.event_type.as_deref(),
            item.data,
            &parts.shared.settings.hub,
        )
        .and_then(|publish| match &item.key {
            Some(key) => publish.with_key(key),
            None => Ok(publish),
        });
        let publish = match publish {
            Ok(publish) => publish,
            Err(e) => return Some(Outcome::of(Err(e))),
        };
        let settings = &parts.shared.settings;
        if settings.refuses_topic(&item.topic) {
            return Some(Outcome::Refused(ApiError::new(
                404,
                "no_namespace",
                "no namespace holds this topic",
            )));
        }
        if !credential.may_publish(settings, &item.topic) {
            return Some(Outcome::Refused(ApiError::new(
                403,
                "forbidden",
                "the credential may not publish to this topic (its rights or its namespace)",
            )));
        }
        // The backend decides a `publish=hook` topic's publishes, but for
        // the publish token's (trusted, as on `POST /topics/NAME`). A
        // batch is answered at once by the sequencer's outcomes, so
        // another credential's item there is refused, not asked about.
        if !matches!(credential, Credential::Admin) && settings.publish_hook(&item.topic) {
            return Some(Outcome::Refused(ApiError::new(
                403,
                "forbidden",
                "the backend decides this topic's publishes: publish with POST /topics/NAME",
            )));
        }
        if let Credential::Token(who) = credential
            && parts
                .shared
                .access
                .rate_limit(who.subject.as_deref(), ctx.now())
                .is_err()
        {
            add(&parts.stats.rate_limited, 1);
            return Some(Outcome::Refused(ApiError::new(
                429,
                "rate_limited",
                "publishing faster than the rate limit",
            )));
        }
        match publishing.submit(ctx, parts, publish, Pending::Api { conn, index }) {
            Ok(()) => None,
            Err(e) => Some(Outcome::of(Err(e))),
        }
    }

    /// An API item's outcome came from the sequencer: the answer, when it
    /// was the last one its request waited for.
    pub(crate) fn item_settled(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        cors: &mut Cors,
        conn: ConnId,
        index: usize,
        result: Result<(tether_hub::EventId, bool), HubError>,
    ) {
        if let Some(response) = self.batches.settle(conn, index, Outcome::of(result)) {
            cors.respond(ctx, conn, response);
        }
    }

    /// An API request that was not answered in time: what is known, each
    /// item still waiting as timed out.
    pub(crate) fn timeout(
        &mut self,
        conn: ConnId,
        delivery: &mut Delivery,
        publishing: &mut Publishing,
    ) -> Response {
        publishing.forget_pending(conn);
        delivery.forget_question(conn);
        match self.gathering.forget(conn) {
            // The bus (or the loop that reads it) was slow: it may not be
            // a moment later.
            Some(users::Waiting::History) => {
                return ApiError::new(503, "unavailable", "the topic's history was not read in time")
                    .response();
            }
            Some(_) => {
                return ApiError::new(504, "timeout", "not every event loop answered in time").response();
            }
            None => {}
        }
        self.batches
            .time_out(conn)
            .unwrap_or_else(|| ApiError::new(504, "timeout", "the broker did not answer in time").response())
    }

    /// The client of an API request went away.
    pub(crate) fn abandoned(&mut self, conn: ConnId, delivery: &mut Delivery, publishing: &mut Publishing) {
        delivery.forget_question(conn);
        self.gathering.forget(conn);
        self.batches.forget(conn);
        publishing.forget_pending(conn);
    }

    /// An API request whose body is over the server's largest body
    /// (`limit`): 413 in the API's JSON, `too_large`.
    pub(crate) fn too_large(request: &Request<'_>, limit: usize) -> Option<Response> {
        ApiRoute::of(request.path())?;
        let message = format!("the request body is larger than {limit} bytes, the most this server takes");
        Some(ApiError::new(413, "too_large", message).response())
    }

    /// An API request refused before its body is read, if its credential
    /// is missing or bad (its body would be of no use). The credential
    /// is the request's `admission`'s, kept by the server for the
    /// request: the endpoint reads it, not verifying it again.
    pub(crate) fn refuse_before_body(
        access: &Access,
        stats: &HubStats,
        request: &Request<'_>,
        admission: &mut Admission,
    ) -> Option<Response> {
        let route = ApiRoute::of(request.path())?;
        if request.method() != "POST" || !route.is_post() {
            return None;
        }
        let credential = admission.credential(access, request);
        access.authenticated(stats, credential).err().map(as_json)
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
