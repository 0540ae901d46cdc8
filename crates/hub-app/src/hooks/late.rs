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
//! as a refused token does; no decision closes it with 1013
//! (`Delivery::late_decided`, in `deliver.rs`: what a socket becomes is
//! told here, and the delivery acts on it).

use tether_server::{CloseCode, ConnId, Ctx};

use crate::access::TokenGrant;
use crate::subscribers::Subscriber;

/// What a socket whose subject the backend is asked about becomes on an
/// allow.
#[derive(Debug)]
pub(crate) enum Late {
    /// A first message's token: the subscriber it makes, and the
    /// `auth-ok` it is told as it subscribes.
    FirstMessage { subscriber: Subscriber, auth_ok: String },
    /// An in-band token of a subscribed socket that had no subject: what
    /// it grants, taken at `now` (Unix seconds).
    InBand { grant: TokenGrant, now: u64 },
}

/// Closes a socket whose subject the backend did not decide about (busy,
/// down, slow): 1013, try again later.
pub(crate) fn close_undecided<P>(ctx: &mut Ctx<'_, P>, conn: ConnId) {
    ctx.close(
        conn,
        CloseCode::TRY_AGAIN_LATER,
        "the application's backend did not decide",
    );
}
