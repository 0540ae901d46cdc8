//! Tokens a WebSocket sends after its upgrade: the first message of one
//! that authenticates first, another token that replaces the one held,
//! and the subject a token names late (asked of the backend on a
//! `subscribe=hook` topic before it is taken).

use std::sync::Arc;

use tether_hub::{Decision, HubMessage};
use tether_server::{CloseCode, CloseReason, ConnId, Ctx, Message, MessageRef};

use super::Delivery;
use crate::access::{TokenGrant, TokenRefused, auth_ok, warning_time};
use crate::backend::Hook;
use crate::hooks::{BackendHooks, Late, close_undecided};
use crate::loop_parts::LoopParts;
use crate::metrics::{Denial, Outcome, add};
use crate::replies::close_reason;
use crate::routes::TOO_MANY_CONNECTIONS;

impl Delivery {
    /// The first message of a WebSocket that has to authenticate: a token
    /// that grants its topic subscribes it, anything else closes it. On a
    /// `subscribe=hook` topic the backend is asked first, for the token's
    /// subject: the socket is subscribed (and told `auth-ok`) only when
    /// it allows.
    pub(crate) fn first_message(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        hooks: &mut BackendHooks,
        conn: ConnId,
        message: MessageRef<'_>,
    ) {
        let Some((subscriber, ok)) =
            self.awaiting
                .first_message(ctx, &parts.shared.access, parts.stats, conn, message)
        else {
            return;
        };
        if parts.shared.settings.subscribe_hook(&subscriber.topic) {
            let subject = subscriber.subject().map(str::to_owned);
            let topic = subscriber.topic.to_string();
            let late = Late::FirstMessage {
                subscriber,
                auth_ok: ok,
            };
            if hooks.ask_late(ctx, parts, conn, subject, topic, late).is_err() {
                close_undecided(ctx, conn);
            }
            return;
        }
        ctx.send(conn, &Message::text(ok));
        self.subscribe(ctx, parts, conn, subscriber);
    }

    /// Another token from a subscribed WebSocket: its rights replace the
    /// old ones and its deadline moves; one that does not verify, or no
    /// longer grants the topic, closes the connection. A token that names
    /// the subject of a socket that had none, on a `subscribe=hook` topic,
    /// is taken only when the backend allows that subject.
    pub(crate) fn refresh(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        hooks: &mut BackendHooks,
        conn: ConnId,
        token: &str,
    ) {
        let Some((topic, had)) =
            (self.subscribers.get(conn)).map(|s| (s.topic.clone(), s.subject().is_some()))
        else {
            return;
        };
        let access = &parts.shared.access;
        let now = access.unix_secs_at_arrival();
        match access.take_token(token, &topic, now) {
            Ok(grant)
                if !had && grant.holder.subject.is_some() && parts.shared.settings.subscribe_hook(&topic) =>
            {
                let subject = grant.holder.subject.clone();
                let late = Late::InBand { grant, now };
                if hooks
                    .ask_late(ctx, parts, conn, subject, topic.to_string(), late)
                    .is_err()
                {
                    self.leave(ctx, parts, conn, &CloseReason::Ended);
                    close_undecided(ctx, conn);
                }
            }
            Ok(grant) => self.take_grant(ctx, parts, conn, grant, now),
            Err(TokenRefused::Revoked) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                add(&parts.stats.refused_401, 1);
                parts.stats.deny(Denial::Revoked);
                ctx.close(conn, CloseCode::POLICY, "token revoked");
            }
            Err(TokenRefused::Invalid(e)) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                parts.stats.deny(Denial::of(&e));
                ctx.close(
                    conn,
                    CloseCode::POLICY,
                    close_reason(&format!("invalid token: {e}")),
                );
            }
            Err(TokenRefused::NotGranted) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                parts.stats.deny(Denial::NotGranted);
                ctx.close(conn, CloseCode::POLICY, "topic no longer granted");
            }
        }
    }

    /// What a token a subscribed socket sent grants, taken at `now` (Unix
    /// seconds): its rights, its deadline, and its subject if the socket
    /// had none; another subject than the socket's closes it.
    pub(crate) fn take_grant(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        grant: TokenGrant,
        now: u64,
    ) {
        let Some(had) = self.subscribers.get(conn).map(|s| s.subject().map(str::to_owned)) else {
            return;
        };
        let named = match (had.as_deref(), grant.holder.subject.as_deref()) {
            // A connection is one subject's for good: what it was
            // counted, revoked and acted on as.
            (Some(had), new) if new != Some(had) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                parts.stats.deny(Denial::NotGranted);
                ctx.close(conn, CloseCode::POLICY, "the token names another subject");
                return;
            }
            (None, named) => named,
            _ => None,
        };
        // A socket that came in without a credential names its
        // subject: counted, and present, as that subject from now
        // on, as if it had come in with it.
        if let Some(subject) = named
            && !self.take_subject(ctx, parts, conn, subject)
        {
            return;
        }
        let deadline = grant.holder.deadline;
        let warn_at = deadline.map(|d| warning_time(d, now));
        let Some(subscriber) = self.subscribers.renew(conn, deadline, warn_at) else {
            return;
        };
        subscriber.may_publish = grant.may_publish;
        // The new token's id and `iat` are what a revocation is
        // checked against from now on (its subject is the one
        // the connection was counted under).
        subscriber.set_token(grant.holder.token_id, grant.holder.issued_at);
        ctx.send(conn, &Message::text(auth_ok(deadline, now)));
    }

    /// A subscribed socket without a subject takes `subject` (from a
    /// token it sent): a place among the subject's connections (none
    /// left: closed with 1008, false), and present as the subject where
    /// its topic keeps presence.
    pub(super) fn take_subject(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        subject: &str,
    ) -> bool {
        let (settings, access, stats) = (&parts.shared.settings, &parts.shared.access, parts.stats);
        let slot = match access
            .connections
            .open(subject, settings.max_connections_per_subject)
        {
            Some(slot) => slot,
            None => {
                log::debug!(
                    subject = subject, conn = conn.to_string().as_str();
                    "hub: closed: the subject named late has its most connections open"
                );
                add(&stats.connection_limited, 1);
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                ctx.close(conn, CloseCode::POLICY, TOO_MANY_CONNECTIONS);
                return false;
            }
        };
        let Some(subscriber) = self.subscribers.get_mut(conn) else {
            return false;
        };
        subscriber.set_subject(Some(subject.to_owned()));
        subscriber.rare_mut().slot = Some(slot);
        subscriber.set_since(Some(access.unix_secs(ctx.now())));
        // Present as its connection until now: as its subject from now on
        // (a subject that is no member name leaves it as it was).
        if let Some(old) = subscriber.member()
            && tether_hub::is_valid_member(subject)
        {
            let topic = Arc::clone(&subscriber.topic);
            let key = (conn, subscriber.transport);
            let watches = subscriber.watches;
            self.roster.leave(ctx, &topic, conn, Some(&old));
            let member = self.roster.join(ctx, &topic, key, Some(subject), watches);
            subscriber.set_member(member);
        }
        true
    }
}

/// The answer about a subject a socket named after its upgrade
/// ([`Late`]).
impl Delivery {
    /// The backend's decision about the subject a socket named late.
    pub(crate) fn late_decided(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        conn: ConnId,
        late: Late,
        decision: Decision,
    ) {
        let outcome = Outcome::of(&decision);
        parts.stats.decided(Hook::Subscribe, outcome);
        match (decision, late) {
            (Decision::Allow(_), Late::FirstMessage { subscriber, auth_ok }) => {
                ctx.send(conn, &Message::text(auth_ok));
                self.subscribe(ctx, parts, conn, subscriber);
            }
            (Decision::Allow(_), Late::InBand { grant, now }) => {
                self.take_grant(ctx, parts, conn, grant, now);
            }
            (Decision::Deny { status, reason }, _) => {
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                match status {
                    401 => add(&parts.stats.refused_401, 1),
                    _ => add(&parts.stats.refused_403, 1),
                }
                parts.stats.deny(Denial::NotGranted);
                let reason = if reason.is_empty() { "refused" } else { &reason };
                ctx.close(conn, CloseCode::POLICY, close_reason(reason));
            }
            (decision, _) => {
                log::debug!("hub: the backend did not decide (subscribe, late subject): {decision:?}");
                self.leave(ctx, parts, conn, &CloseReason::Ended);
                close_undecided(ctx, conn);
            }
        }
    }
}
