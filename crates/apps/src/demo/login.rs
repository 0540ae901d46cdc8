//! The demo's sign-in: the secret its tokens are signed with, the
//! rights they carry, the names they may be given, and the signing.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tether_auth::{Key, Keys, NewToken, TetherClaim};
use tether_server::Response;

use crate::HubAuth;

/// The longest name `/demo/login` takes.
pub const MAX_DEMO_NAME_LEN: usize = 32;

/// How long a demo token is good for unless [`DemoLogin::ttl`] says
/// otherwise: 10 minutes.
pub const DEFAULT_DEMO_TOKEN_TTL: Duration = Duration::from_secs(600);

/// The demo's sign-in: the secret it signs its tokens with (HS256), how
/// long they last, and whether its cookie is `Secure`.
///
/// `POST /demo/login` with the form body `name=NAME` (1 to
/// [`MAX_DEMO_NAME_LEN`] ASCII letters, digits, `_` and `-`; and
/// optionally `ttl=SECONDS`, shorter than [`DemoLogin::ttl`]) answers
/// `{"token":"...","sub":"NAME","expires_in":S}` and sets the hub's token
/// cookie to the token (`HttpOnly; SameSite=Lax`, and `Secure` if
/// [`DemoLogin::secure`]), for the paths of the user's own topic
/// (`Path=/topics/user.NAME`: the browser sends it to its event stream,
/// WebSocket and long poll, and nowhere else, so that a stale cookie
/// never spoils the open topics). The token lets its holder subscribe to
/// `chat.*`, `room.*`, `user.NAME` and `inbox.NAME`, and publish to
/// `chat.*` and `user.*` (so that users can write to each other: with the
/// token in `Authorization`); `user.*` and `inbox.*` are private in the
/// demo. The page's rooms (`room.*`) and inboxes (`inbox.*`) are written
/// by the demo alone, in the name of the token that asks
/// (`/demo/say`, `/demo/tell`): what the page shows as a sender's name
/// is a token's subject, never a claim in a message. Names starting
/// with `guest-` are the demo's to give (`POST /demo/guest`). Anyone may sign in
/// under any free-form name: the demo checks nobody's identity, it shows
/// what a token does. `POST /demo/logout` with `name=NAME` clears the
/// cookie.
///
/// Its `Debug` output never shows the secret.
#[derive(Clone)]
#[non_exhaustive]
pub struct DemoLogin {
    pub(super) secret: Arc<[u8]>,
    /// How long a token is good for ([`DEFAULT_DEMO_TOKEN_TTL`]); a login
    /// may ask for less.
    pub ttl: Duration,
    /// The cookie is set `Secure` (the page is served over TLS).
    pub secure: bool,
    /// The number of the last guest named (`guest-N`), shared by every
    /// loop's copy.
    pub(super) guests: Arc<AtomicU64>,
}

impl fmt::Debug for DemoLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoLogin")
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .field("secure", &self.secure)
            .finish()
    }
}

impl DemoLogin {
    /// A sign-in with a random secret of 32 bytes, made now and never
    /// shown: its tokens are good for this process only.
    ///
    /// # Errors
    ///
    /// When the system has no randomness to give.
    pub fn generate() -> std::io::Result<DemoLogin> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(std::io::Error::other)?;
        Ok(DemoLogin {
            secret: Arc::from(&secret[..]),
            ttl: DEFAULT_DEMO_TOKEN_TTL,
            secure: false,
            guests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// A sign-in that signs with `secret` (at least
    /// [`tether_auth::MIN_SECRET_LEN`] bytes).
    ///
    /// # Errors
    ///
    /// [`tether_auth::Error::ShortSecret`] for a shorter one.
    pub fn with_secret(secret: &[u8]) -> Result<DemoLogin, tether_auth::Error> {
        // The same check as the verifying side's.
        Key::hmac(secret)?;
        Ok(DemoLogin {
            secret: Arc::from(secret),
            ttl: DEFAULT_DEMO_TOKEN_TTL,
            secure: false,
            guests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The keys that verify this sign-in's tokens.
    ///
    /// # Errors
    ///
    /// None in practice: the secret was checked when made.
    pub fn keys(&self) -> Result<Keys, tether_auth::Error> {
        // The secret's bytes as they are: not `Keys::from_secret`, which
        // reads a key file and drops a final line break, so that a
        // secret ending in 0x0A (one random secret in 256) would verify
        // with one byte fewer than it signs with.
        Keys::new(vec![Key::hmac(&self.secret)?])
    }

    /// The rights of a demo user's token (`{sub}` is the name): the page's
    /// rooms (`room.*`) and the user's inbox (`inbox.NAME`) to read, which
    /// only the demo itself writes to (`/demo/say`, `/demo/tell`, in the
    /// sender's name); and the hub's open chat topics (`chat.*`) and the
    /// users' topics (`user.*`), to try the hub's own publishing with.
    pub fn rights() -> TetherClaim {
        TetherClaim::new(
            vec![
                "chat.*".into(),
                "room.*".into(),
                "user.{sub}".into(),
                "inbox.{sub}".into(),
            ],
            vec!["chat.*".into(), "user.*".into()],
        )
    }

    /// The rights of a guest's token (`POST /demo/guest`): the rooms to
    /// read, nothing to write to but through the demo.
    pub fn guest_rights() -> TetherClaim {
        TetherClaim::new(vec!["chat.*".into(), "room.*".into()], Vec::new())
    }
}

/// The value of `name` in a form body (`a=1&b=2`), as it is: names are
/// taken without percent-decoding, so only plain ones pass.
pub(super) fn form_field<'b>(body: &'b [u8], name: &str) -> Option<&'b str> {
    let form = std::str::from_utf8(body).ok()?;
    form.split('&')
        .find_map(|pair| pair.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
}

/// The name of a sign-in form, or the answer that refuses it.
pub(super) fn demo_name(body: &[u8]) -> Result<&str, Response> {
    if body.len() > 1024 {
        return Err(Response::text(413, "the form is too long\n"));
    }
    form_field(body, "name")
        .filter(|n| is_demo_name(n))
        .ok_or_else(|| {
            Response::text(
                400,
                format!("a name is 1 to {MAX_DEMO_NAME_LEN} letters, digits, _ and -\n"),
            )
        })
}

/// A token for `name` with `rights`, good for `ttl` seconds from now.
pub(super) fn sign(
    login: &DemoLogin,
    auth: &HubAuth,
    name: &str,
    rights: TetherClaim,
    ttl: u64,
) -> Result<String, Response> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut token = NewToken::new(name, rights, now, now.saturating_add(ttl));
    token.audience = auth.validation.audience.first().cloned();
    token.issuer = auth.validation.issuer.first().cloned();
    token.sign_hs256(&login.secret).map_err(|e| {
        log::error!("demo: a token could not be signed: {e}");
        Response::text(500, "the token could not be signed\n")
    })
}

/// Whether `name` may sign in to the demo: guests' names (`guest-N`)
/// are the demo's to give.
pub(super) fn is_demo_name(name: &str) -> bool {
    is_name(name) && !is_guest_name(name)
}

/// Whether `name` is 1 to [`MAX_DEMO_NAME_LEN`] letters, digits, `_` and `-`.
pub(super) fn is_name(name: &str) -> bool {
    (1..=MAX_DEMO_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `name` looks like a guest's, in any case (`Guest-1` would
/// pass for `guest-1` on the page).
pub(super) fn is_guest_name(name: &str) -> bool {
    name.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("guest-"))
}
