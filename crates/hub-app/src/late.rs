//! Subjects named after the request: a WebSocket that authenticates with
//! its first message, or one let in without a credential that sends a
//! token in band. On a `subscribe=hook` topic the backend is asked about
//! the subject so named before the token is taken: the upgrade was not
//! decided for it (a first-message socket is not asked about at its
//! upgrade at all; an anonymous one was asked about as no one).
//!
//! Until the allow, a first-message socket is subscribed to nothing, and
//! an anonymous one stays what it was (anonymous, with what the backend
//! allowed no one); a deny closes it with 1008 and the backend's reason,
//! as a refused token does; no decision closes it with 1013.

use tether_hub::{Decision, HubMessage};
use tether_server::{CloseCode, CloseReason, ConnId, Ctx, Message};

use super::access::TokenGrant;
use super::backend::Hook;
use super::deliver::Delivery;
use super::loop_parts::LoopParts;
use super::metrics::{Denial, Outcome, add};
use super::publish_hook::PublishGate;
use super::replies::close_reason;
use super::subscribers::Subscriber;

/// What a socket whose subject the backend is asked about becomes on an
/// allow.
#[derive(Debug)]
pub(super) enum Late {
    /// A first message's token: the subscriber it makes, and the
    /// `auth-ok` it is told as it subscribes.
    FirstMessage { subscriber: Subscriber, auth_ok: String },
    /// An in-band token of a subscribed socket that had no subject: what
    /// it grants, taken at `now` (Unix seconds).
    InBand { grant: TokenGrant, now: u64 },
}

/// Closes a socket whose subject the backend did not decide about (busy,
/// down, slow): 1013, try again later.
pub(super) fn close_undecided<P>(ctx: &mut Ctx<'_, P>, conn: ConnId) {
    ctx.close(
        conn,
        CloseCode::TRY_AGAIN_LATER,
        "the application's backend did not decide",
    );
}

impl Delivery {
    /// The backend's decision about the subject a socket named late.
    pub(super) fn late_decided(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        parts: &mut LoopParts<'_>,
        held_publishes: &mut PublishGate,
        conn: ConnId,
        late: Late,
        decision: Decision,
    ) {
        let outcome = match &decision {
            Decision::Allow(_) => Outcome::Allowed,
            Decision::Deny { .. } => Outcome::Denied,
            _ => Outcome::Unavailable,
        };
        parts.stats.decided(Hook::Subscribe, outcome);
        match (decision, late) {
            (Decision::Allow(_), Late::FirstMessage { subscriber, auth_ok }) => {
                ctx.send(conn, &Message::text(auth_ok));
                self.subscribe(ctx, parts, held_publishes, conn, subscriber);
            }
            (Decision::Allow(_), Late::InBand { grant, now }) => {
                self.take_grant(ctx, parts, held_publishes, conn, grant, now);
            }
            (Decision::Deny { status, reason }, _) => {
                self.leave(ctx, parts, held_publishes, conn, &CloseReason::Ended);
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
                self.leave(ctx, parts, held_publishes, conn, &CloseReason::Ended);
                close_undecided(ctx, conn);
            }
        }
    }
}
