//! The delivery's side of multi-topic event streams (`GET /events?topic=A
//! &topic=B`): one connection (its credential, deadline, subject slot),
//! one subscription per listed topic, decided and placed as a
//! multiplexed socket's are, and a cursor, the position of every topic,
//! written as the `id:` of each event so that a browser's own
//! `Last-Event-ID` resumes every topic exactly.
//!
//! An event is the bytes every multi-topic stream sends for it
//! ([`Event::sse_multi`], made once), then the stream's own `id:` line.

use std::sync::Arc;

use tether_hub::{Event, EventId, Gap, HubMessage, Transport};
use tether_server::{ConnId, Ctx, Encoded};

use super::Delivery;
use super::multiplex::SubscribeAsked;
use crate::access::Credential;
use crate::admission::Served;
use crate::hooks::BackendHooks;
use crate::loop_parts::LoopParts;
use crate::metrics::{HubStats, add};
use crate::multiplex::listed::listed;
use crate::multiplex::stream::StreamCursor;
use crate::multiplex::{Multiplexed, Muxes, SubscribedBy};
use crate::subscribers::{SubKey, Subscriber};

/// What a stream's resume id is when its cursor could not be read: not
/// an event id, so every topic gets its gap signal and what is held.
const UNREADABLE_CURSOR: &str = "~";

/// Where a multi-topic stream's replay goes: its subscription, topic and
/// the id it resumed from (for the gap signal).
pub(super) struct StreamReplay<'a> {
    pub(super) key: SubKey,
    pub(super) topic: &'a str,
    pub(super) requested: Option<&'a str>,
}

/// Sends `bytes`, then the stream's cursor as their `id:` line.
fn send_with_cursor(
    ctx: &mut Ctx<'_, HubMessage>,
    conn: ConnId,
    encoded: &Encoded,
    cursor: &mut StreamCursor,
) {
    ctx.send_encoded([conn], encoded);
    ctx.send_encoded([conn], &Encoded::from(cursor.id_line()));
}

/// A subscription's gap signal (if any) and replayed events, each
/// followed by the cursor with the topic's position moved to it. With
/// none of either and no position yet, the position becomes `head` (the
/// topic's last event when the subscription went live): the stream's
/// next `id:` says so, and a client resuming from it misses nothing
/// published meanwhile.
pub(super) fn replay<'e>(
    ctx: &mut Ctx<'_, HubMessage>,
    stats: &HubStats,
    muxes: &mut Muxes,
    to: StreamReplay<'_>,
    gap: Option<Gap>,
    events: impl Iterator<Item = &'e Arc<Event>>,
    head: Option<EventId>,
) {
    let StreamReplay {
        key,
        topic,
        requested,
    } = to;
    let Some(cursor) = muxes.get_mut(key.conn).and_then(Multiplexed::cursor_mut) else {
        return;
    };
    if let Some(gap) = gap {
        add(&stats.gaps, 1);
        cursor.set(key.number, gap.resume);
        let bytes: Arc<[u8]> = Arc::from(gap.sse_multi(topic, requested.unwrap_or_default()));
        send_with_cursor(ctx, key.conn, &Encoded::from(bytes), cursor);
    }
    let mut sent = 0;
    for event in events {
        cursor.set(key.number, event.id());
        send_with_cursor(ctx, key.conn, &crate::sse_encoded::sse_multi(event), cursor);
        sent += 1;
    }
    add(&stats.sent_event_stream, sent);
    if cursor.position(key.number).is_none()
        && let Some(head) = head
    {
        cursor.set(key.number, head);
    }
}

/// An event (`id`) to the multi-topic streams among `keys` (a delivery's
/// event stream subscriptions, the one-topic ones sent theirs already):
/// `encoded`, its [`Event::sse_multi`] (with its compressed piece) or its
/// delta form, then each stream's cursor.
pub(super) fn deliver(
    ctx: &mut Ctx<'_, HubMessage>,
    stats: &HubStats,
    muxes: &mut Muxes,
    keys: &[SubKey],
    id: EventId,
    encoded: &Encoded,
) {
    let mut sent = 0;
    for key in keys.iter().filter(|key| !key.is_whole()) {
        if let Some(cursor) = muxes.get_mut(key.conn).and_then(Multiplexed::cursor_mut) {
            cursor.set(key.number, id);
            send_with_cursor(ctx, key.conn, encoded, cursor);
            sent += 1;
        }
    }
    add(&stats.sent_event_stream, sent);
}

impl Delivery {
    /// `GET /events?topic=A&topic=B` started: the connection admitted as
    /// any event stream is (revocation, its subject's place), its cursor
    /// read from the client's `Last-Event-ID` (or `?lastEventId=`), then
    /// each listed topic, and those of its token's `join` claim after
    /// them, subscribed as a multiplexed socket's subscribe is: refused
    /// with a `refused` event, held for the backend, or placed with its
    /// replay or gap signal.
    pub(crate) fn start_multi_stream(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        hooks: &mut BackendHooks,
        served: Served<'_, '_>,
        last_event_id: Option<&str>,
    ) {
        let Served {
            conn,
            request,
            admission,
        } = served;
        let settings = &parts.shared.settings;
        let max = settings.max_subscriptions;
        // Routing read the list and refused it if it could not be followed.
        let Ok(listed) = listed(request, max) else {
            return ctx.end_stream(conn);
        };
        let access = &parts.shared.access;
        let mut holder = admission.holder(access, request);
        let credential = admission
            .take_credential(access, request)
            .unwrap_or(Credential::None);
        // A stream without a token is its tickets' holder's (what a
        // browser's EventSource, which sends no header, comes with): its
        // subject, for its place among the subject's connections and its
        // presence, and its deadline. A ticket of another holder lets
        // nothing in: a connection is one subject's.
        let mut tickets = listed.tickets;
        if holder.subject.is_none()
            && let Some(first) = tickets.iter().find_map(|t| access.peek_ticket_holder(t))
        {
            tickets.retain(|t| {
                access
                    .peek_ticket_holder(t)
                    .is_none_or(|h| h.subject == first.subject)
            });
            holder = first;
        }
        let mut topics: Vec<(Arc<str>, SubscribedBy)> = (listed.topics.iter())
            .map(|t| (Arc::from(t.as_str()), SubscribedBy::Client))
            .collect();
        if let Credential::Token(who) = &credential {
            for topic in who.rights.join_topics() {
                if topics.len() < max && !topics.iter().any(|(t, _)| **t == *topic) {
                    topics.push((Arc::from(topic), SubscribedBy::Join));
                }
            }
        }
        // `?delta=1`: its subscriptions take deltas where their topics'
        // namespaces send them.
        let delta = request
            .query_param("delta")
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "on"));
        let mut cursor = StreamCursor::new(topics.iter().map(|(t, _)| Arc::clone(t)).collect());
        let asked_from = last_event_id
            .map(str::to_owned)
            .or_else(|| request.query_param("lastEventId"))
            .filter(|id| !id.is_empty());
        let unreadable = match asked_from {
            Some(text) => cursor
                .resume(&text)
                .inspect_err(|e| log::debug!("hub: stream cursor: {e}"))
                .is_err(),
            None => false,
        };
        // The connection's own entry: no topic of its own, never a
        // member, not in the replica.
        let mut connection = Subscriber::new(Arc::from(""), Transport::EventStream, None);
        connection.hold(holder);
        let now = parts.shared.access.unix_secs(ctx.now());
        crate::hooks::refresh_by_backend(
            admission.presented(),
            &parts.shared.settings,
            &mut connection,
            now,
        );
        if !super::admit_connection(ctx, parts, conn, &mut connection) {
            return;
        }
        // Every topic's position from the start, where it is known (its
        // history here): the cursor of the first event sent says where
        // every topic is, not only those placed before it. A topic that
        // starts at its latest event is left from nowhere until that
        // event (or its head, without one) places it: a cursor sent
        // before then resumes it from nowhere, to that event again, which
        // it had not had.
        let settings = &parts.shared.settings;
        for (number, (topic, _)) in (1..=u16::MAX).zip(&topics) {
            if !unreadable
                && cursor.position(number).is_none()
                && self.hub.is_ready(topic)
                && !settings.replays_latest(topic)
            {
                cursor.set(number, self.hub.head(topic));
            }
        }
        let sinces: Vec<Option<String>> = (1..=topics.len())
            .map(|n| match u16::try_from(n) {
                _ if unreadable => Some(UNREADABLE_CURSOR.to_owned()),
                Ok(n) => cursor.position(n).map(|id| id.to_string()),
                Err(_) => None,
            })
            .collect();
        self.muxes.open(conn, Multiplexed::stream(credential, cursor));
        self.register(parts.stats, conn, connection);
        for ((topic, by), since) in topics.iter().zip(sinces) {
            let access = &parts.shared.access;
            let ticket = access.ticket_for(&tickets, topic);
            let asked = SubscribeAsked {
                topic,
                since,
                presence: false,
                ticket,
                by: *by,
                delta,
            };
            self.subscribe_multiplexed(ctx, parts, Some(&mut *hooks), conn, asked);
        }
    }
}
