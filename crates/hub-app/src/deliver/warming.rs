//! Event streams and topics' WebSockets from nowhere, held until their
//! topics' histories are on the loop.
//!
//! A stream that names no id to resume from starts at its topics' heads,
//! and its `200` (a WebSocket's `101`) promises every event published
//! after it. With a bus that
//! follows topics on demand, a topic new to the loop has no head until its
//! history comes: a stream opened before then would count an event
//! published in between as history, and never send it. So the request is
//! held, its topics kept followed ([`Hub::warm`](tether_hub::Hub::warm)),
//! and let go on as the stream it is once every history is here; or when
//! [`HISTORY_WAIT`] is up (a bus that does not answer), when it opens as
//! before, each topic placed as its history comes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_hub::HubMessage;
use tether_server::{ConnId, Ctx, Reply, Request, Response, Route};

use super::{Delivery, HISTORY_WAIT};
use crate::admission::Admission;
use crate::broker_view::LoopContext;
use crate::loop_parts::LoopParts;
use crate::multiplex::listed::listed;
use crate::replies::{SOON, refuse};
use crate::routes::{HubRoute, Opens, Socket};

/// How long a stream let go on keeps its topics warm for its opening
/// ([`Delivery::warmed`]): one that never opened (refused on its way)
/// lets them go then.
const OPENING_WAIT: Duration = Duration::from_secs(5);

/// A request held for its topics' histories.
#[derive(Debug)]
pub(super) struct Warming {
    /// The topics it keeps warm (each warmed once).
    topics: Vec<Arc<str>>,
    /// What it opens as.
    opens_as: Opens,
    /// When it goes on whatever the histories (before it was let go on),
    /// or lets its topics go (after).
    until: Instant,
    /// Let go on ([`Ctx::proceed`]), its stream not opened yet.
    let_go: bool,
}

/// This loop's requests held for their topics' histories.
pub(super) type Warmings = HashMap<ConnId, Warming>;

/// Whether an event stream request names where it resumes from.
fn resumes(request: &Request<'_>) -> bool {
    request.header("Last-Event-ID").is_some_and(|id| !id.is_empty())
        || request
            .query_param("lastEventId")
            .is_some_and(|id| !id.is_empty())
}

impl Delivery {
    /// The route of an event stream (`GET /topics/NAME/events` or `GET
    /// /events?topic=…`) or a topic's WebSocket that starts from nowhere
    /// while a topic of it has no history on this loop: held
    /// ([`HubRoute::Heads`]) until they come. Any other route as it was
    /// (the multiplexed socket defers each subscription's answer
    /// instead).
    pub(crate) fn hold_for_heads(
        &self,
        request: &Request<'_>,
        max_subscriptions: usize,
        route: Route<Admission>,
    ) -> Route<Admission> {
        let (mut admission, opens) = match route {
            Route::EventStream(admission) if request.method() == "GET" => {
                let opens = match admission.route {
                    HubRoute::MultiEvents => Opens::MultiEvents,
                    _ => Opens::Events,
                };
                (admission, opens)
            }
            // One that sends its token first subscribes later, from
            // nowhere, as an event stream opened then would.
            Route::WebSocket(admission) => match admission.route {
                HubRoute::WebSocket(socket) if socket != Socket::AuthFirst => {
                    (admission, Opens::WebSocket(socket))
                }
                _ => return Route::WebSocket(admission),
            },
            route => return route,
        };
        let waits = !resumes(request)
            && (stream_topics(request, &admission, max_subscriptions).iter())
                .any(|topic| self.hub.awaits_history(topic));
        if !waits {
            return admission.route.route().map(|_| admission);
        }
        admission.route = HubRoute::Heads(opens);
        Route::Handler(admission)
    }

    /// A request routed [`HubRoute::Heads`]: its topics warmed (followed
    /// where they are not), and the request held until their histories
    /// come ([`Delivery::open_warmed`]) or the wait is up.
    pub(crate) fn warm(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        request: &Request<'_>,
        admission: &Admission,
    ) -> Reply {
        let HubRoute::Heads(opens_as) = admission.route else {
            return Reply::Now(Response::text(404, "404 Not Found\n"));
        };
        let max = parts.shared.settings.max_subscriptions;
        let mut topics = Vec::new();
        for topic in stream_topics(request, admission, max) {
            match self.hub.warm(&topic) {
                Ok(follow) => {
                    if follow {
                        parts.broker.follow(&topic, &mut LoopContext { ctx });
                    }
                    topics.push(topic);
                }
                // Refused when the stream subscribes to it.
                Err(e) => log::debug!("hub: {topic} not warmed: {e}"),
            }
        }
        let until = ctx.now() + HISTORY_WAIT;
        let warming = Warming {
            topics,
            opens_as,
            until,
            let_go: false,
        };
        self.warming.insert(conn, warming);
        // Every history came meanwhile (or the topics were refused).
        self.open_warmed(ctx);
        // Answered by the loop's tick (let go on) before this is up.
        Reply::Hold(HISTORY_WAIT + OPENING_WAIT)
    }

    /// The held requests whose topics all have their histories now: let go
    /// on as their streams.
    pub(super) fn open_warmed(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        let deadline = ctx.now() + OPENING_WAIT;
        for (&conn, warming) in &mut self.warming {
            if !warming.let_go && warming.topics.iter().all(|topic| self.hub.is_ready(topic)) {
                warming.let_go = true;
                warming.until = deadline;
                ctx.proceed(conn, warming.opens_as.route().route().map(|_| ()));
            }
        }
    }

    /// The loop's tick: held requests whose wait is up let go on without
    /// their histories; those let go on that never opened let their
    /// topics go.
    pub(super) fn tick_warming(&mut self, ctx: &mut Ctx<'_, HubMessage>, parts: &mut LoopParts<'_>) {
        let now = ctx.now();
        let mut stale = Vec::new();
        for (&conn, warming) in &mut self.warming {
            if warming.until > now {
                continue;
            }
            if warming.let_go {
                stale.push(conn);
            } else {
                log::debug!(conn = conn.to_string().as_str(); "hub: a stream opens before its histories came");
                warming.let_go = true;
                warming.until = now + OPENING_WAIT;
                ctx.proceed(conn, warming.opens_as.route().route().map(|_| ()));
            }
        }
        for conn in stale {
            self.warmed(ctx, parts, conn);
        }
    }

    /// What a request let go on opens as ([`tether_server::App::on_proceed`]),
    /// if it was held here.
    pub(crate) fn opens_as(&self, conn: ConnId) -> Option<HubRoute> {
        (self.warming.get(&conn)).and_then(|w| w.let_go.then_some(w.opens_as.route()))
    }

    /// The request's topics let go of: its stream has opened (its own
    /// subscriptions keep them), or it went, or was answered.
    pub(crate) fn warmed(&mut self, ctx: &mut Ctx<'_, HubMessage>, parts: &mut LoopParts<'_>, conn: ConnId) {
        let Some(warming) = self.warming.remove(&conn) else {
            return;
        };
        for topic in warming.topics {
            if self.hub.cool(&topic) {
                parts.broker.unfollow(&topic, &mut LoopContext { ctx });
            }
        }
    }

    /// A held request whose wait ran out before the loop let it go on.
    pub(crate) fn heads_timeout(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
    ) -> Response {
        self.warmed(ctx, parts, conn);
        refuse(
            503,
            "the topics' histories are on their way: try again\n".to_owned(),
            Some(SOON),
        )
    }
}

/// The topics an event stream or WebSocket request follows: its path's, or its list's
/// (the list's faults are refused when it opens).
fn stream_topics(request: &Request<'_>, admission: &Admission, max: usize) -> Vec<Arc<str>> {
    match admission.route {
        HubRoute::MultiEvents | HubRoute::Heads(Opens::MultiEvents) => listed(request, max)
            .map(|listed| listed.topics.iter().map(|t| Arc::from(t.as_str())).collect())
            .unwrap_or_default(),
        _ => admission.topic().cloned().into_iter().collect(),
    }
}
