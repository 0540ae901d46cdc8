//! Server-side subscriptions (`POST /api/subscribe`, `POST
//! /api/unsubscribe`): the server subscribes a subject's multiplexed
//! sockets on this loop to a topic, or ends their subscription to it,
//! without closing anything. Its word stands for rights and hooks (it is
//! the publish token's); the topic's namespace still applies.

use tether_hub::HubMessage;
use tether_server::{ConnId, Ctx};

use super::Delivery;
use super::multiplex::SubscribeAsked;
use crate::loop_parts::LoopParts;
use crate::multiplex::SubscribedBy;
use crate::subscribers::Subscriber;

impl Delivery {
    /// The server subscribes `user`'s multiplexed sockets on this loop to
    /// `topic`: how many it subscribed (those that had it already, or
    /// cannot have it, are answered and not counted).
    pub(crate) fn subscribe_user(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        user: &str,
        topic: &str,
    ) -> usize {
        let conns = self.multiplexed_of(user);
        let mut count = 0;
        for conn in conns {
            // One that follows the topic already is left as it is; an event
            // stream follows the list its cursor is for.
            if self
                .muxes
                .get(conn)
                .is_none_or(|s| s.is_stream() || s.get(topic).is_some())
            {
                continue;
            }
            let asked = SubscribeAsked {
                topic,
                since: None,
                presence: false,
                ticket: None,
                by: SubscribedBy::Server,
                delta: false,
            };
            self.subscribe_multiplexed(ctx, parts, None, conn, asked);
            if self.muxes.get(conn).is_some_and(|s| s.get(topic).is_some()) {
                count += 1;
            }
        }
        count
    }

    /// The server ends `user`'s multiplexed subscriptions to `topic` on
    /// this loop (`unsubscribed by the server`, or the reason given): how
    /// many.
    pub(crate) fn unsubscribe_user(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        user: &str,
        topic: &str,
        reason: &str,
    ) -> usize {
        let conns = self.multiplexed_of(user);
        let mut count = 0;
        for conn in conns {
            if self.unsubscribe_multiplexed(ctx, parts, conn, topic, Some(reason)) {
                count += 1;
            }
        }
        count
    }

    /// This loop's multiplexed sockets of the subject `user`.
    fn multiplexed_of(&self, user: &str) -> Vec<ConnId> {
        self.muxes
            .conns()
            .filter(|&conn| self.subscribers.get(conn).and_then(Subscriber::subject) == Some(user))
            .collect()
    }
}
