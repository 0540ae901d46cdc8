//! Whom a ticket is issued for, when not the publish token's own reach.

use tether_server::Response;

/// The most bytes of claims a ticket request may carry.
const MAX_TICKET_CLAIMS: usize = tether_auth::MAX_TOKEN_LEN;

/// Whom a ticket was issued for: the subject and rights of the token that
/// asked for it (or that the publish token named), and when that token
/// stops being good.
#[derive(Debug, Clone)]
pub(super) struct TicketHolder {
    pub(super) subject: Option<String>,
    pub(super) rights: tether_auth::Rights,
    /// Unix seconds, the leeway included.
    pub(super) deadline: Option<u64>,
    /// The asking token's `jti` and `iat`: a ticket of a token revoked
    /// since is refused.
    pub(super) token_id: Option<String>,
    pub(super) issued_at: Option<u64>,
}

impl TicketHolder {
    /// The holder that the publish token names in a ticket request's body,
    /// or the 400 that says why not.
    pub(super) fn named_in(body: &[u8], now: u64) -> Result<TicketHolder, Response> {
        if body.len() > MAX_TICKET_CLAIMS {
            return Err(Response::text(400, "the ticket's claims are too long\n"));
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return Err(Response::text(400, "the ticket's claims must be UTF-8 JSON\n"));
        };
        match tether_auth::identity_from_claims(text, now) {
            Ok(who) => Ok(TicketHolder {
                subject: who.subject,
                rights: who.rights,
                deadline: who.expires_at,
                token_id: who.token_id,
                issued_at: who.issued_at,
            }),
            Err(e) => Err(Response::text(400, format!("the ticket's claims: {e}\n"))),
        }
    }
}
