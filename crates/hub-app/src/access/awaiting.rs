//! WebSockets that authenticate with their first message, and what a
//! WebSocket is told about its token: that it was taken, and when it is
//! about to expire.

use std::collections::HashMap;
use std::time::Instant;

use tether_server::{CloseCode, ConnId, Ctx, MessageRef};

use super::{Access, TokenRefused};
use crate::metrics::{Denial, HubStats, add};
use crate::replies::close_reason;
use crate::subscribers::Subscriber;

/// The most seconds before its token expires that a WebSocket is warned.
const EXPIRY_WARNING_LEAD: u64 = 30;

/// The Unix second a WebSocket whose token was taken at `now` and stops
/// being good at `deadline` is warned: 30 s before the deadline, or a third
/// of the time the token had left when taken if that is less, rounded up
/// so that a token with a second or two left is still warned a second
/// before it expires (not on its deadline, when it is closed).
pub(crate) fn warning_time(deadline: u64, now: u64) -> u64 {
    let left = deadline.saturating_sub(now);
    deadline.saturating_sub(left.div_ceil(3).min(EXPIRY_WARNING_LEAD))
}

/// What a WebSocket is told when its token is taken:
/// `{"type":"auth-ok","expires_in":SECONDS}` (no `expires_in` for a token
/// without `exp`).
pub(crate) fn auth_ok(deadline: Option<u64>, now: u64) -> String {
    match deadline {
        Some(deadline) => format!(
            "{{\"type\":\"auth-ok\",\"expires_in\":{}}}",
            deadline.saturating_sub(now)
        ),
        None => "{\"type\":\"auth-ok\"}".to_owned(),
    }
}

/// WebSockets let in without a credential to send their token as their
/// first message: the subscriber each becomes once it has, and until
/// when it may take.
#[derive(Debug, Default)]
pub(crate) struct Awaiting {
    sockets: HashMap<ConnId, (Subscriber, Instant)>,
}

impl Awaiting {
    pub(crate) fn admit(&mut self, conn: ConnId, subscriber: Subscriber, until: Instant) {
        self.sockets.insert(conn, (subscriber, until));
    }

    pub(crate) fn contains(&self, conn: ConnId) -> bool {
        self.sockets.contains_key(&conn)
    }

    pub(crate) fn forget(&mut self, conn: ConnId) {
        self.sockets.remove(&conn);
    }

    /// Closes the sockets that did not authenticate in time.
    pub(crate) fn time_out<P>(&mut self, ctx: &mut Ctx<'_, P>, stats: &HubStats) {
        let now = ctx.now();
        let late: Vec<ConnId> = self
            .sockets
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(conn, _)| *conn)
            .collect();
        for conn in late {
            self.sockets.remove(&conn);
            stats.deny(Denial::AuthTimeout);
            ctx.close(conn, CloseCode::POLICY, "authentication timeout");
        }
    }

    /// A socket's first message: a token that grants its topic makes it
    /// the subscriber returned, with the `auth-ok` it is to be told once
    /// it subscribes (at once, or when the subscribe hook allows it);
    /// anything else closes it, counted.
    pub(crate) fn first_message<P>(
        &mut self,
        ctx: &mut Ctx<'_, P>,
        access: &Access,
        stats: &HubStats,
        conn: ConnId,
        message: MessageRef<'_>,
    ) -> Option<(Subscriber, String)> {
        let (mut subscriber, _) = self.sockets.remove(&conn)?;
        let Some(token) = message.as_text().and_then(tether_auth::ws_auth_token) else {
            stats.deny(Denial::NotAuthMessage);
            ctx.close(conn, CloseCode::POLICY, "authentication required");
            return None;
        };
        let now = access.unix_secs_at_arrival();
        match access.take_token(&token, &subscriber.topic, now) {
            Ok(grant) => {
                let deadline = grant.holder.deadline;
                subscriber.may_publish = grant.may_publish;
                subscriber.hold(grant.holder);
                subscriber.set_warn_at(deadline.map(|d| warning_time(d, now)));
                return Some((subscriber, auth_ok(deadline, now)));
            }
            Err(TokenRefused::Revoked) => {
                add(&stats.refused_401, 1);
                stats.deny(Denial::Revoked);
                ctx.close(conn, CloseCode::POLICY, "token revoked");
            }
            Err(TokenRefused::Invalid(e)) => {
                add(&stats.refused_401, 1);
                stats.deny(Denial::of(&e));
                ctx.close(
                    conn,
                    CloseCode::POLICY,
                    close_reason(&format!("invalid token: {e}")),
                );
            }
            Err(TokenRefused::NotGranted) => {
                add(&stats.refused_403, 1);
                stats.deny(Denial::NotGranted);
                ctx.close(conn, CloseCode::POLICY, "the token does not grant this topic");
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_warnings_come_a_third_of_the_time_left_before_at_most_30_s() {
        assert_eq!(warning_time(1_000, 400), 970);
        assert_eq!(warning_time(1_000, 910), 970);
        assert_eq!(warning_time(1_000, 940), 980);
        assert_eq!(warning_time(1_000, 994), 998);
        assert_eq!(warning_time(1_000, 995), 998);
        // A second or two left: warned a second before, not on the deadline.
        assert_eq!(warning_time(1_000, 998), 999);
        assert_eq!(warning_time(1_000, 999), 999);
        assert_eq!(warning_time(1_000, 1_000), 1_000);
        // A deadline passed already, or at the ends of the range.
        assert_eq!(warning_time(1_000, 2_000), 1_000);
        assert_eq!(warning_time(0, 0), 0);
        assert_eq!(warning_time(u64::MAX, 0), u64::MAX - 30);
    }

    #[test]
    fn auth_ok_says_when_the_token_expires() {
        assert_eq!(
            auth_ok(Some(130), 100),
            "{\"type\":\"auth-ok\",\"expires_in\":30}"
        );
        assert_eq!(auth_ok(Some(90), 100), "{\"type\":\"auth-ok\",\"expires_in\":0}");
        assert_eq!(auth_ok(None, 100), "{\"type\":\"auth-ok\"}");
    }
}
