//! A multiplexed socket's messages (`GET /ws`): subscribe, unsubscribe
//! and auth are the delivery's to act on; a publish is checked here as
//! an enveloped publish of `/topics/NAME/ws?envelope=1` is (the topic's
//! publish rights and namespace, the publish rate, the in-flight
//! allowance, the publish hook), and acknowledged naming its topic.

use std::sync::Arc;

use tether_hub::{Error as HubError, HubMessage, Payload, is_valid_topic};
use tether_server::{CloseCode, ConnId, Ctx, Message, MessageRef};

use super::publish::{self, NotPublished, error_json};
use super::{Answered, Publishing, over_rate};
use crate::deliver::{Delivery, SubscribeAsked};
use crate::hooks::BackendHooks;
use crate::loop_parts::LoopParts;
use crate::multiplex::message::{ClientMessage, Malformed, parse};
use crate::multiplex::{SubscribedBy, answer};
use crate::rpc::Call;
use crate::rpc::answer::Outcome;
use crate::settings::HubSettings;

/// The longest message a multiplexed socket is answered for beyond a
/// publish's data: its members and their escapes.
const MESSAGE_OVERHEAD: usize = 64 * 1024;

/// What a publish message carries.
struct Sent {
    topic: String,
    data: Payload,
    event: Option<String>,
    key: Option<String>,
    /// Its bytes on the wire.
    len: usize,
}

/// The answer to a subscribe or unsubscribe over the socket's rate: a
/// subscribe refused (429), as the limit on subscriptions refuses one; an
/// unsubscribe an error (the subscription stays).
fn too_fast(topic: &str, subscribe: bool, settings: &HubSettings) -> String {
    let error = format!(
        "more than {} subscribes and unsubscribes a second (in bursts of {})",
        settings.max_subscribe_rate.max(1),
        settings.max_subscriptions
    );
    if subscribe {
        answer::refused(topic, 429, &error)
    } else {
        answer::error(Some(topic), &error)
    }
}

impl Publishing {
    /// A message from a multiplexed socket: each is answered, and none
    /// closes the socket but for the connection's own reasons (a token
    /// revoked, a publisher over its rate or allowance, as on a
    /// per-topic socket). A call read whole is returned, for the calls
    /// concern to put to the backend.
    pub(super) fn multiplexed_message(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        delivery: &mut Delivery,
        hooks: &mut BackendHooks,
        conn: ConnId,
        message: MessageRef<'_>,
    ) -> Option<Call> {
        let Some(text) = message.as_text() else {
            let error = error_json(
                None,
                "a multiplexed socket takes text messages, each a JSON object (binary data goes in base64, with \"encoding\":\"base64\")",
                None,
            );
            ctx.send(conn, &Message::text(error));
            return None;
        };
        // A publish's data may be escaped six bytes a byte in JSON.
        let longest = (parts.shared.settings.hub.max_event_size)
            .saturating_mul(6)
            .saturating_add(MESSAGE_OVERHEAD);
        if text.len() > longest {
            let error = error_json(None, &format!("a message is at most {longest} bytes"), None);
            ctx.send(conn, &Message::text(error));
            return None;
        }
        let parsed = parse(text);
        let churn = match &parsed {
            Ok(ClientMessage::Subscribe { topic, .. }) => Some((topic, true)),
            Ok(ClientMessage::Unsubscribe { topic }) => Some((topic, false)),
            _ => None,
        };
        if let Some((topic, subscribe)) = churn
            && !delivery.take_churn(conn, &parts.shared.settings, ctx.now())
        {
            let answer = too_fast(topic, subscribe, &parts.shared.settings);
            ctx.send(conn, &Message::text(answer));
            return None;
        }
        match parsed {
            Err(Malformed {
                call: Some(id),
                error,
                ..
            }) => ctx.send(conn, &Message::text(Outcome::error(400, error).message(id))),
            Err(Malformed { topic, error, .. }) => {
                ctx.send(conn, &Message::text(error_json(topic.as_deref(), &error, None)));
            }
            Ok(ClientMessage::Rpc { id, method, data }) => return Some(Call { id, method, data }),
            Ok(ClientMessage::Subscribe {
                topic,
                since,
                presence,
                ticket,
                delta,
            }) => {
                let asked = SubscribeAsked {
                    topic: &topic,
                    since,
                    presence,
                    ticket: ticket.as_deref(),
                    by: SubscribedBy::Client,
                    delta,
                };
                delivery.subscribe_multiplexed(ctx, parts, Some(hooks), conn, asked);
            }
            Ok(ClientMessage::Unsubscribe { topic }) => {
                delivery.unsubscribe_multiplexed(ctx, parts, conn, &topic, None);
            }
            Ok(ClientMessage::Auth { token }) => delivery.auth_multiplexed(ctx, parts, conn, &token),
            Ok(ClientMessage::Publish {
                topic,
                data,
                event,
                key,
            }) => {
                let sent = Sent {
                    topic,
                    data,
                    event,
                    key,
                    len: text.len(),
                };
                self.publish_multiplexed(ctx, parts, delivery, hooks, conn, sent);
            }
        }
        None
    }

    /// A publish from a multiplexed socket, to the topic it names.
    fn publish_multiplexed(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        delivery: &mut Delivery,
        hooks: &mut BackendHooks,
        conn: ConnId,
        sent: Sent,
    ) {
        let Sent {
            topic,
            data,
            event,
            key,
            len,
        } = sent;
        let answered = Answered {
            raw: false,
            topic: Some(&topic),
        };
        if !is_valid_topic(&topic) {
            let error = error_json(Some(&topic), &HubError::InvalidTopic.to_string(), key.as_deref());
            return ctx.send(conn, &Message::text(error));
        }
        let settings = &parts.shared.settings;
        let published = if !delivery.may_publish_multiplexed(conn, &topic, settings) {
            Err(NotPublished::Refused(
                CloseCode::POLICY,
                "publishing to this topic over WebSocket is not allowed",
            ))
        } else {
            let Some(subscriber) = delivery.subscribers.get_mut(conn) else {
                return;
            };
            let cost = publish::cost_of(len);
            if over_rate(parts, subscriber, ctx.now()) {
                Err(NotPublished::RateLimited)
            } else {
                let settings = &parts.shared.settings;
                publish::within_allowance(subscriber, cost, settings)
                    .and_then(|()| publish::made(&topic, event.as_deref(), data, key, settings))
                    .map(|made| {
                        let named = Some(Arc::from(topic.as_str()));
                        publish::counted(subscriber, conn, made, cost, true, named)
                    })
            }
        };
        self.publish_from_socket(ctx, parts, delivery, hooks, conn, published, answered);
    }
}
