//! Multi-topic long polls (`GET /poll?topic=A&topic=B&since=CURSOR`):
//! each listed topic decided as its own route would decide it (refused
//! ones listed in the answer, the poll going on with the others), then
//! polled from its own position in the cursor; the answer comes at once
//! when any topic has events or a gap signal, or is held until one does
//! (or the wait ends). Its `next` is the cursor to poll from next.
//!
//! Answer: `{"events":[…],"next":"CURSOR","gaps":[…],"refused":[…]}`,
//! every event and gap naming its topic, the events of each topic in its
//! order.

use std::collections::HashMap;
use std::sync::Arc;

use tether_hub::{Event, Gap, HubMessage, Polled, Transport};
use tether_server::{ConnId, Ctx, Reply, Response};

use super::Delivery;
use crate::access::Credential;
use crate::admission::Served;
use crate::broker_view::LoopContext;
use crate::loop_parts::LoopParts;
use crate::metrics::{add, count_refusal, sub};
use crate::multiplex::answer;
use crate::multiplex::listed::listed;
use crate::multiplex::stream::StreamCursor;
use crate::routes::Refusal;
use crate::subscribers::{SubKey, Subscriber, poll_wait};

/// What a poll's resume id is when its cursor could not be read: not an
/// event id, so every topic gets its gap signal and what is held.
const UNREADABLE_CURSOR: &str = "~";

/// A multi-topic long poll held until one of its topics has an event.
#[derive(Debug)]
pub(super) struct HeldPoll {
    cursor: StreamCursor,
    /// The subscription numbers registered with the replica as waiters.
    waiting: Vec<u16>,
    /// The `refused` entries of its answer, made when it was decided.
    refused: Vec<String>,
}

impl HeldPoll {
    /// Whether every topic it polls from nowhere can be placed now (its
    /// history is on this loop).
    pub(super) fn placed<S>(&self, hub: &tether_hub::Hub<S>) -> bool
    where
        S: Copy + Eq + std::hash::Hash,
    {
        self.waiting.iter().all(|&number| {
            self.cursor.position(number).is_some()
                || (self.cursor.topics())
                    .get(usize::from(number).wrapping_sub(1))
                    .is_some_and(|topic| hub.is_ready(topic))
        })
    }
}

/// This loop's held multi-topic polls.
pub(super) type HeldPolls = HashMap<ConnId, HeldPoll>;

/// What one topic of a poll has to answer with.
struct Answered<'a> {
    topic: &'a str,
    requested: Option<&'a str>,
    gap: Option<Gap>,
    events: &'a [Arc<Event>],
}

/// The answer's body: events (in the order given), gap signals, refusals,
/// and the cursor as `next`.
fn answer_body(answered: &[Answered<'_>], refused: &[String], next: &str) -> Response {
    let mut body = String::from("{\"events\":[");
    let mut first = true;
    for event in answered.iter().flat_map(|a| a.events) {
        if !first {
            body.push(',');
        }
        first = false;
        body.push_str(event.json());
    }
    body.push_str("],\"next\":\"");
    body.push_str(next);
    body.push_str("\",\"gaps\":[");
    let gaps = answered
        .iter()
        .filter_map(|a| Some(a.gap?.json(a.topic, a.requested.unwrap_or_default())));
    body.push_str(&gaps.collect::<Vec<_>>().join(","));
    body.push_str("],\"refused\":[");
    body.push_str(&refused.join(","));
    body.push_str("]}");
    Response::json(200, body).header("Cache-Control", "no-cache")
}

/// Moves each answered topic's position in `cursor` past what it answers.
fn advance(cursor: &mut StreamCursor, number: u16, gap: Option<Gap>, events: &[Arc<Event>]) {
    if let Some(gap) = gap {
        cursor.set(number, gap.resume);
    }
    if let Some(last) = events.last() {
        cursor.set(number, last.id());
    }
}

impl Delivery {
    /// `GET /poll?topic=A&topic=B&since=CURSOR`: answered now (a topic has
    /// events or a gap signal, nothing may be followed, the wait is 0) or
    /// held.
    pub(crate) fn poll_multi(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        served: Served<'_, '_>,
    ) -> Reply {
        let Served {
            conn,
            request,
            admission,
        } = served;
        let (shared, stats) = (parts.shared, parts.stats);
        let (settings, access) = (&shared.settings, &shared.access);
        let listed = match listed(request, settings.max_subscriptions) {
            Ok(listed) => listed,
            Err(fault) => return Reply::Now(Refusal::TopicList(fault).response()),
        };
        let timeout = match poll_wait(request, settings.poll_timeout) {
            Ok(timeout) => timeout,
            Err(refused) => return Reply::Now(refused),
        };
        let holder = admission.holder(access, request);
        let credential: Result<Credential, Refusal> = Ok(admission
            .take_credential(access, request)
            .unwrap_or(Credential::None));
        let topics: Vec<Arc<str>> = listed.topics.iter().map(|t| Arc::from(t.as_str())).collect();
        let mut cursor = StreamCursor::new(topics.clone());
        let since = request.query_param("since").filter(|s| !s.is_empty());
        let unreadable = since.as_ref().is_some_and(|since| {
            cursor
                .resume(since)
                .inspect_err(|e| log::debug!("hub: poll cursor: {e}"))
                .is_err()
        });
        // Each topic decided as its own poll would be; the tickets used.
        let mut refused = Vec::new();
        let mut first_refusal: Option<Response> = None;
        let mut taken: Vec<(u16, &Arc<str>)> = Vec::new();
        for (number, topic) in (1..=u16::MAX).zip(&topics) {
            let refusal = if settings.refuses_topic(topic) {
                Some(Refusal::NoNamespace.response())
            } else if settings.subscribe_hook(topic) && !matches!(credential, Ok(Credential::Admin)) {
                Some(Response::text(
                    400,
                    "this topic's namespace asks the backend, which a multi-topic long poll does not: follow it on /events or /ws",
                ))
            } else {
                let ticket = access.ticket_for(&listed.tickets, topic);
                let decided = access.authorize_subscriber(ticket, topic, || &credential, true, None);
                // A ticket's holder is read once, by what the ticket
                // opened: let go now, or it would count against its
                // subject's tickets until it expired.
                access.take_ticket_holder(ticket);
                decided
                    .inspect_err(|refusal| count_refusal(stats, *refusal))
                    .err()
                    .map(Refusal::response)
            };
            match refusal {
                Some(response) => {
                    let error = String::from_utf8_lossy(&response.body);
                    refused.push(answer::refused(topic, response.status, &error));
                    first_refusal.get_or_insert(response);
                }
                None => taken.push((number, topic)),
            }
        }
        if taken.is_empty() {
            return Reply::Now(first_refusal.unwrap_or_else(|| Refusal::NotGranted.response()));
        }
        // Each taken topic polled from its own position.
        let mut now: Vec<(u16, Option<Gap>, Vec<Arc<Event>>)> = Vec::new();
        let mut waiting = Vec::new();
        let mut history_due = false;
        for &(number, topic) in &taken {
            let requested = match unreadable {
                true => Some(UNREADABLE_CURSOR.to_owned()),
                false => cursor.position(number).map(|id| id.to_string()),
            };
            let key = SubKey::multiplexed(conn, number);
            let start = (self.wanted).start(settings, topic, requested.as_deref());
            match self.hub.poll_at(topic, key, start) {
                Ok(Polled::Now {
                    gap,
                    events,
                    unfollow,
                }) => {
                    if unfollow {
                        parts.broker.unfollow(topic, &mut LoopContext { ctx });
                    }
                    now.push((number, gap, events));
                }
                Ok(held @ (Polled::Wait | Polled::Held { .. })) => {
                    if let Polled::Held { follow: true } = held {
                        parts.broker.follow(topic, &mut LoopContext { ctx });
                    }
                    // From nowhere: from where the topic is now, once its
                    // history is here to say so.
                    if cursor.position(number).is_none() {
                        if self.hub.is_ready(topic) {
                            cursor.set(number, self.hub.head(topic));
                        } else {
                            history_due = true;
                        }
                    }
                    waiting.push(number);
                }
                Err(e) => {
                    let status = e.http_status();
                    refused.push(answer::refused(topic, status, &e.to_string()));
                }
            }
        }
        // Waiting for a topic's history even when asked not to wait, as a
        // one-topic poll from nowhere does.
        let timeout = if history_due {
            if timeout.is_zero() {
                self.history_polls.push(conn);
            }
            timeout.max(super::HISTORY_WAIT)
        } else {
            timeout
        };
        if !now.is_empty() || timeout.is_zero() || waiting.is_empty() {
            self.unwait(ctx, parts, conn, &waiting);
            let requested: Vec<Option<String>> = now
                .iter()
                .map(|(number, ..)| match unreadable {
                    true => Some(UNREADABLE_CURSOR.to_owned()),
                    false => cursor.position(*number).map(|id| id.to_string()),
                })
                .collect();
            let mut answered = Vec::new();
            for ((number, gap, events), requested) in now.iter().zip(&requested) {
                advance(&mut cursor, *number, *gap, events);
                if gap.is_some() {
                    add(&stats.gaps, 1);
                }
                add(&stats.sent_poll, events.len() as u64);
                answered.push(Answered {
                    topic: topics.get(usize::from(*number) - 1).map_or("", |t| t),
                    requested: requested.as_deref(),
                    gap: *gap,
                    events,
                });
            }
            return Reply::Now(answer_body(&answered, &refused, &cursor.text()));
        }
        // Held: one connection entry (answered when its token expires or
        // is revoked), its topics waiting with the replica.
        let mut poll = Subscriber::new(Arc::from(""), Transport::Poll, None);
        poll.hold(holder);
        self.register(stats, conn, poll);
        self.polls.insert(
            conn,
            HeldPoll {
                cursor,
                waiting,
                refused,
            },
        );
        Reply::Later(timeout)
    }

    /// Takes `conn`'s topics `numbers` off the replica's waiters.
    fn unwait(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        numbers: &[u16],
    ) {
        for &number in numbers {
            if let Some(left) = self.hub.unsubscribe(SubKey::multiplexed(conn, number))
                && left.unfollow
            {
                parts.broker.unfollow(&left.topic, &mut LoopContext { ctx });
            }
        }
    }

    /// The held multi-topic poll `conn` is over: its waiters and its entry
    /// gone; what it keeps for its answer returned.
    fn end_held_poll(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
    ) -> Option<HeldPoll> {
        let held = self.polls.remove(&conn)?;
        self.unwait(ctx, parts, conn, &held.waiting);
        if self.subscribers.remove(conn).is_some() {
            sub(&parts.stats.subscribers_poll, 1);
        }
        Some(held)
    }

    /// Answers the held multi-topic poll of `key` with `events` of its
    /// topic (after its gap signal, if any), or with nothing (its wait
    /// ended): `None` if `key` is no held multi-topic poll's.
    pub(super) fn answer_held_poll(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        key: SubKey,
        gap: Option<Gap>,
        events: &[Arc<Event>],
    ) -> Option<Response> {
        // Topics that were polled from nowhere before their history came:
        // from where they are now, if that is known by now. Read before
        // the waiters are taken off, which may take the topic off this
        // loop (its history and head with it).
        let conn = key.conn;
        // The topic answering with events or a gap is placed by them.
        let placed = (!events.is_empty() || gap.is_some()).then_some(key.number);
        let held = self.polls.get_mut(&conn)?;
        let mut unknown = false;
        for &number in &held.waiting {
            if Some(number) == placed || held.cursor.position(number).is_some() {
                continue;
            }
            let at = held
                .cursor
                .topics()
                .get(usize::from(number).wrapping_sub(1))
                .cloned();
            match at.filter(|t| self.hub.is_ready(t)) {
                Some(at) => held.cursor.set(number, self.hub.head(&at)),
                None => unknown = true,
            }
        }
        let mut held = self.end_held_poll(ctx, parts, conn)?;
        // Its wait over with a topic's head still unknown: an answer
        // without a position would send the next poll from nowhere
        // again, past what is published meanwhile (as a one-topic poll
        // from nowhere, 503 and poll again).
        if unknown && events.is_empty() && gap.is_none() {
            return Some(crate::replies::refuse(
                503,
                "a topic's history is on its way: poll again\n",
                Some(crate::replies::SOON),
            ));
        }
        let topic = held
            .cursor
            .topics()
            .get(usize::from(key.number).wrapping_sub(1))
            .cloned();
        let requested = held.cursor.position(key.number).map(|id| id.to_string());
        advance(&mut held.cursor, key.number, gap, events);
        if gap.is_some() {
            add(&parts.stats.gaps, 1);
        }
        add(&parts.stats.sent_poll, events.len() as u64);
        let answered: Vec<Answered<'_>> = topic
            .as_deref()
            .map(|topic| Answered {
                topic,
                requested: requested.as_deref(),
                gap,
                events,
            })
            .into_iter()
            .collect();
        Some(answer_body(&answered, &held.refused, &held.cursor.text()))
    }

    /// A held multi-topic poll's connection is gone, or its answer made:
    /// its waiters taken off.
    pub(super) fn drop_held_poll(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
    ) {
        self.end_held_poll(ctx, parts, conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tether_hub::EventId;

    #[test]
    fn an_answer_names_every_part_and_the_next_cursor() {
        let event = Event::new(Arc::from("a"), EventId::new(5, 1), "message", "hi").unwrap();
        let events = [event];
        let gap = Gap {
            first: Some(EventId::new(5, 1)),
            resume: EventId::new(4, 9),
            lost: None,
        };
        let answered = [Answered {
            topic: "a",
            requested: Some("1-1"),
            gap: Some(gap),
            events: &events,
        }];
        let refused = [answer::refused("b", 403, "no")];
        let response = answer_body(&answered, &refused, "~CUR");
        let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(body["events"][0]["topic"], "a");
        assert_eq!(body["events"][0]["data"], "hi");
        assert_eq!(body["next"], "~CUR");
        assert_eq!(
            (
                body["gaps"][0]["topic"].as_str(),
                body["gaps"][0]["resume"].as_str()
            ),
            (Some("a"), Some("4-9"))
        );
        assert_eq!(
            (
                body["refused"][0]["topic"].as_str(),
                body["refused"][0]["status"].as_u64()
            ),
            (Some("b"), Some(403))
        );
    }
}
