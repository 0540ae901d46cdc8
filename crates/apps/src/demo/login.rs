//! The demo's sign-in: the secret its tokens are signed with, the
//! rights they carry, the names they may be given, and the signing.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tether_auth::{Key, Keys, NewToken, TetherClaim, Validation, verify};
use tether_server::Response;

use tether_hub_app::HubAuth;

/// The file in the data directory that keeps the demo's secret
/// ([`DemoLogin::kept_in`]).
const SECRET_FILE: &str = "demo.secret";

/// The numbers a kept sign-in's first guest may start from.
const GUEST_NUMBERS: u64 = 1_000_000_000;

/// The largest secret file [`DemoLogin::kept_in`] reads.
const MAX_SECRET_FILE: u64 = 4096;

/// How long a guest's pass (the cookie that keeps a browser's guest
/// name) lasts: 30 days.
pub(super) const GUEST_PASS_TTL: Duration = Duration::from_secs(30 * 86_400);

/// The name of the cookie that holds a guest's pass (`Path=/demo/guest`).
pub(super) const GUEST_COOKIE: &str = "tether_demo_guest";

/// The name of the cookie that holds a signed-in name's pass
/// (`Path=/demo/login`): another window of the browser may sign in under
/// the name while it is online.
pub(super) const NAME_COOKIE: &str = "tether_demo_name";

/// The `aud` of a pass: no hub accepts it as a token.
const PASS_AUDIENCE: &str = "tether-demo-pass";

/// The bytes of the secret file at `path`: a regular file, at most
/// [`MAX_SECRET_FILE`] bytes, read as they are.
fn read_secret(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > MAX_SECRET_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{}: not a regular file of at most {MAX_SECRET_FILE} bytes",
                path.display()
            ),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE).read_to_end(&mut bytes)?;
    Ok(bytes)
}

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
/// under any name that nobody is online under (see [`crate::Demo`]): the
/// demo checks nobody's identity, it shows what a token does. `POST /demo/logout` with `name=NAME` clears the
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
    /// Where the secret is kept ([`DemoLogin::kept_in`]), if anywhere.
    kept_at: Option<std::path::PathBuf>,
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
            kept_at: None,
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
            kept_at: None,
        })
    }

    /// A sign-in whose secret is kept in `dir` (`DIR/demo.secret`, made
    /// with 32 random bytes the first time, readable by its owner only),
    /// so that its tokens and guests' passes still verify after a
    /// restart: a guest keeps its name, a page its sign-in.
    ///
    /// # Errors
    ///
    /// When the directory or the file cannot be made or read, or the file
    /// holds fewer than [`tether_auth::MIN_SECRET_LEN`] bytes.
    pub fn kept_in(dir: &std::path::Path) -> std::io::Result<DemoLogin> {
        use std::io::Write;
        let path = dir.join(SECRET_FILE);
        std::fs::create_dir_all(dir)?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(std::io::Error::other)?;
        // create_new: two processes starting at once keep the first one's.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let made = match options.open(&path) {
            Ok(mut file) => {
                file.write_all(&secret)?;
                file.sync_all()?;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        let kept = read_secret(&path)?;
        let mut login = DemoLogin::with_secret(&kept).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        login.kept_at = Some(path);
        // A new secret has no guests yet: they are guest-1, guest-2, ...
        // With a secret kept from an earlier run, guests from before keep
        // their names (their passes still verify): new guests are
        // numbered from a random point, so that a new one is given an old
        // one's name only if this start falls among the numbers the last
        // run gave (1 in 10^9 for each).
        if !made {
            let mut start = [0u8; 8];
            getrandom::fill(&mut start).map_err(std::io::Error::other)?;
            login.guests = Arc::new(AtomicU64::new(u64::from_le_bytes(start) % GUEST_NUMBERS));
        }
        Ok(login)
    }

    /// Where its secret comes from, as a start line says it: the file it
    /// is kept in, or made at start (its tokens end with the process).
    pub fn secret_origin(&self) -> String {
        match &self.kept_at {
            Some(path) => format!("the secret kept in {}", path.display()),
            None => "a secret made at start (its tokens end with this process)".to_owned(),
        }
    }

    /// A pass for `name`, good for `ttl` seconds: kept by the browser in
    /// a cookie ([`GUEST_COOKIE`], [`NAME_COOKIE`]) to say that this
    /// browser is `name`, so that all its windows are one person. It
    /// grants nothing, and its audience is one the hub refuses, so it is
    /// no token for the hub.
    pub(super) fn pass(&self, name: &str, ttl: u64, now: u64) -> Option<String> {
        let rights = TetherClaim::new(Vec::new(), Vec::new());
        let mut pass = NewToken::new(name, rights, now, now.saturating_add(ttl));
        pass.audience = Some(PASS_AUDIENCE.to_owned());
        pass.sign_hs256(&self.secret).ok()
    }

    /// The name a pass of [`DemoLogin::pass`] was made for, if it
    /// verifies.
    pub(super) fn name_of_pass(&self, pass: &str, now: u64) -> Option<String> {
        let validation = Validation::new().audience([PASS_AUDIENCE.to_owned()]);
        let who = verify(pass, &self.keys().ok()?, &validation, now).ok()?;
        who.subject.filter(|n| is_name(n))
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
