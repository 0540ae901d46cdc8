//! What the hub sends: replays and resumptions to subscribers, long
//! polls' answers, errors.

use std::collections::HashMap;
use std::sync::Arc;

use tether_hub::{Error as HubError, Event, EventId, Gap, Resumed, Transport, json_string};

use super::Subscriber;
use super::cors::Cors;
use super::metrics::{HubStats, add, sub};
use super::poll::{next_id, poll_response};
use tether_server::{ConnId, Ctx, Encoded, Message, Response};

/// `{"control":"error","error":"..."}` to a WebSocket subscriber.
pub(super) fn send_error<P>(ctx: &mut Ctx<'_, P>, conn: ConnId, message: &str) {
    let text = format!("{{\"control\":\"error\",\"error\":{}}}", json_string(message));
    ctx.send(conn, &Message::text(text));
}

pub(super) fn error_response(e: &HubError) -> Response {
    let response = Response::text(e.http_status(), format!("{e}\n"));
    if e.http_status() == 503 {
        response.header("Retry-After", "1")
    } else {
        response
    }
}

/// Sends a gap signal (if any) and replayed events to a WebSocket or
/// event-stream subscriber.
pub(super) fn send_replay<'e, P>(
    ctx: &mut Ctx<'_, P>,
    stats: &HubStats,
    conn: ConnId,
    subscriber: &Subscriber,
    gap: Option<Gap>,
    events: impl Iterator<Item = &'e Arc<Event>>,
) {
    let transport = subscriber.transport;
    // A raw subscriber never resumes from an id (the route refuses it), so
    // it has no gap to be told of, and no message to tell it with.
    if let Some(gap) = gap.filter(|_| transport != Transport::RawWebSocket) {
        add(&stats.gaps, 1);
        let (topic, requested) = (
            &subscriber.topic,
            subscriber.requested.as_deref().unwrap_or_default(),
        );
        match transport {
            Transport::WebSocket => ctx.send(conn, &Message::text(gap.ws_json(topic, requested))),
            _ => ctx.send_encoded(
                [conn],
                &Encoded::from(Arc::<[u8]>::from(gap.sse(topic, requested))),
            ),
        }
    }
    let mut sent = 0;
    for event in events {
        let bytes = match transport {
            Transport::WebSocket => event.ws_frame(),
            Transport::RawWebSocket => event.ws_raw_frame(),
            _ => event.sse(),
        };
        ctx.send_encoded([conn], &Encoded::from(bytes.clone()));
        sent += 1;
    }
    add(stats.sent(transport), sent);
}

/// A held subscriber is live (or a held long poll answered).
pub(super) fn send_resumed<P>(
    ctx: &mut Ctx<'_, P>,
    stats: &HubStats,
    conns: &mut HashMap<ConnId, Subscriber>,
    cors: &mut Cors,
    resumed: Resumed<ConnId>,
) {
    let conn = resumed.sub;
    if resumed.transport == Transport::Poll {
        let Some(poll) = conns.remove(&conn) else { return };
        sub(&stats.subscribers_poll, 1);
        add(&stats.sent_poll, resumed.events.len() as u64);
        if resumed.gap.is_some() {
            add(&stats.gaps, 1);
        }
        let since = poll.requested.as_deref();
        let next = next_id(&resumed.events, resumed.gap, since, || EventId::ZERO);
        cors.respond(
            ctx,
            conn,
            poll_response(&poll.topic, &resumed.events, resumed.gap, since, next),
        );
        return;
    }
    let Some(subscriber) = conns.get(&conn) else {
        return;
    };
    send_replay(ctx, stats, conn, subscriber, resumed.gap, resumed.events.iter());
}
