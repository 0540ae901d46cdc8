//! What every loop does for the server API's questions and actions: the
//! control messages the loop that took a request posts to all of them,
//! and the answers that come back to it.

use tether_hub::{
    ConnectionReport, ControlMessage, HistoryAnswer, HubMessage, MAX_LISTED_CONNECTIONS, Members, TopicInfo,
    TopicReport, Transport, UserAction, history_json, post_to_all,
};
use tether_server::{CloseCode, CloseReason, ConnId, Ctx};

use super::{ApiError, ServerApi, users};
use crate::access::warning_time;
use crate::broker_view::LoopContext;
use crate::cors::Cors;
use crate::deliver::Delivery;
use crate::loop_parts::LoopParts;
use crate::presence::Asker;
use crate::subscribers::Subscribers;

/// What every loop does for the server API's questions and actions.
impl ServerApi {
    /// A control message from a loop (this one included): an action on a
    /// user's connections or a question, done here and answered to the
    /// loop that asked; or an answer, for a request waiting here.
    pub(crate) fn control(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        delivery: &mut Delivery,
        message: ControlMessage,
    ) {
        let answered = match message {
            ControlMessage::Act { action, reply } => {
                let count = act_on_user(ctx, parts, delivery, &action);
                if let Some(reply) = reply {
                    let done = ControlMessage::Done {
                        token: reply.token,
                        count,
                    };
                    ctx.post(reply.loop_index, HubMessage::Control(done));
                }
                None
            }
            ControlMessage::Topics { reply, only } => {
                // The replicas this loop follows, and the backlogs its
                // broker holds as their sequencer (the durable log's): with
                // them, every topic of the node is listed, subscribed to or
                // not.
                let sequenced = parts
                    .broker
                    .backlogs()
                    .map(|(name, backlog)| (name, TopicInfo::of_backlog(backlog)));
                let topics = delivery
                    .hub()
                    .topics()
                    .chain(sequenced)
                    .filter(|(name, _)| only.as_ref().is_none_or(|only| *name == only))
                    .map(|(name, info)| TopicReport {
                        topic: name.clone(),
                        info,
                    })
                    .collect();
                let answer = ControlMessage::TopicsOf {
                    token: reply.token,
                    topics,
                };
                ctx.post(reply.loop_index, HubMessage::Control(answer));
                None
            }
            ControlMessage::Relay(action) => {
                let act = ControlMessage::Act { action, reply: None };
                post_to_all(&mut LoopContext { ctx }, &act);
                None
            }
            ControlMessage::History { reply, query } => {
                let answer = if parts.broker.holds_backlogs() {
                    HistoryAnswer::Page(history_json(&query, parts.broker.backlog(&query.topic)))
                } else if parts.broker.history(&query, reply, &mut LoopContext { ctx }) {
                    // Read from the bus, off the loop: it answers.
                    return;
                } else {
                    HistoryAnswer::NotHeld
                };
                let answer = ControlMessage::HistoryOf {
                    token: reply.token,
                    answer,
                };
                ctx.post(reply.loop_index, HubMessage::Control(answer));
                None
            }
            ControlMessage::Connections { reply, user } => {
                let index = ctx.loop_index().0;
                // A multiplexed socket is listed once per topic it
                // follows (and once with no topic while it follows none).
                let connections = (delivery.subscribers)
                    .subscribers_of(&user, None)
                    .flat_map(|(conn, s)| {
                        let multiplexed = delivery.is_multiplexed(conn);
                        let topics = delivery.multiplexed_topics(conn).filter(|t| !t.is_empty());
                        topics
                            .unwrap_or_else(|| vec![s.topic.clone()])
                            .into_iter()
                            .map(move |topic| ConnectionReport {
                                loop_index: index,
                                transport: s.transport,
                                topic,
                                since: s.since(),
                                multiplexed,
                            })
                    })
                    .take(MAX_LISTED_CONNECTIONS + 1)
                    .collect();
                let answer = ControlMessage::ConnectionsOf {
                    token: reply.token,
                    connections,
                };
                ctx.post(reply.loop_index, HubMessage::Control(answer));
                None
            }
            ControlMessage::ConnectionsOf { token, connections } => {
                self.gathering.connections_of(token, connections)
            }
            ControlMessage::HistoryOf { token, answer } => self.gathering.history_of(token, answer),
            ControlMessage::Done { token, count } => self.gathering.done(token, count),
            ControlMessage::TopicsOf { token, topics } => self.gathering.topics_of(token, topics),
            other => {
                log::debug!("hub: unexpected {other:?}");
                None
            }
        };
        if let Some((conn, response)) = answered {
            parts.cors.respond(ctx, conn, response);
        }
    }

    /// A topic's members, for `GET /api/presence` or one topic of
    /// `POST /api/presence/counts`.
    pub(crate) fn members(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        cors: &mut Cors,
        asker: Asker,
        topic: &str,
        members: &Members,
    ) {
        let answered = match asker {
            Asker::Api(conn) => Some((conn, users::presence_json(topic, members))),
            Asker::Count { token, index, .. } => self.gathering.counted(token, index, members),
            Asker::Page(_) | Asker::Embedder(_) => None,
        };
        if let Some((conn, response)) = answered {
            cors.respond(ctx, conn, response);
        }
    }
}

/// Acts on this loop's connections of the action's user: how many.
fn act_on_user(
    ctx: &mut Ctx<'_, HubMessage>,
    parts: &mut LoopParts<'_>,
    delivery: &mut Delivery,
    action: &UserAction,
) -> usize {
    let (topic, code, reason) = match action {
        UserAction::Disconnect { code, reason, .. } => (None, *code, reason),
        UserAction::Unsubscribe {
            topic, code, reason, ..
        } => (Some(&**topic), *code, reason),
        UserAction::Refresh { user, expires_at } => {
            return refresh_user(ctx, parts, &mut delivery.subscribers, user, *expires_at);
        }
        UserAction::Subscribe { user, topic } => return delivery.subscribe_user(ctx, parts, user, topic),
        _ => return 0,
    };
    // A multiplexed socket's subscription ends, and the socket stays.
    let unsubscribed = match topic {
        Some(topic) => delivery.unsubscribe_user(ctx, parts, action.user(), topic, reason),
        None => 0,
    };
    let conns = delivery.subscribers.of_user(action.user(), topic);
    for &(conn, transport) in &conns {
        delivery.leave(ctx, parts, conn, &CloseReason::Ended);
        match transport {
            Transport::WebSocket | Transport::RawWebSocket => ctx.close(conn, CloseCode(code), reason),
            Transport::EventStream => {
                let event = tether_sse::Event::new().event("disconnect").data(reason);
                if let Err(e) = ctx.send_event(conn, &event) {
                    log::debug!("hub: disconnect event not sent: {e}");
                }
                ctx.end_stream(conn);
            }
            Transport::Poll => {
                let e = ApiError::new(403, "disconnected", reason.as_str());
                parts.cors.respond(ctx, conn, e.response());
            }
        }
    }
    conns.len() + unsubscribed
}

/// The user's connections now expire at `expires_at` (Unix seconds,
/// no leeway added): a WebSocket is warned before, as when its token
/// expires, and every one is closed then. How many.
fn refresh_user(
    ctx: &mut Ctx<'_, HubMessage>,
    parts: &LoopParts<'_>,
    subscribers: &mut Subscribers<ConnId>,
    user: &str,
    expires_at: u64,
) -> usize {
    let now = parts.shared.access.unix_secs(ctx.now());
    let conns = subscribers.of_user(user, None);
    for &(conn, transport) in &conns {
        let warn_at = (transport == Transport::WebSocket).then(|| warning_time(expires_at, now));
        subscribers.renew(conn, Some(expires_at), warn_at);
    }
    conns.len()
}
