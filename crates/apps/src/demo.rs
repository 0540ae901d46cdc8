//! The demo served by `tether serve`: a page, an echo, and the pub/sub hub
//! with a clock feed, chat rooms and private inboxes as topics, on one
//! port and every event loop; a sign-in that gives each visitor a
//! short-lived token (a guest's name, or the name signed in with), and
//! the routes that speak in the token's name.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Clock, Echo, HubApp, HubAuth, HubSettings, HubShared, Mount};
use tether_auth::{Identity, Key, Keys, NewToken, Private, TetherClaim, bearer_token, verify};
use tether_hub::{HubMessage, Members, json_string};
use tether_server::{App, CloseReason, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

const ECHO: u32 = 1;
const CLOCK: u32 = 4;
const LOGIN: u32 = 5;
const LOGOUT: u32 = 6;
const LOGIN_PREFLIGHT: u32 = 7;
const ONLY_POST: u32 = 8;
const GUEST: u32 = 9;
const SAY: u32 = 10;
const TELL: u32 = 11;

/// The longest message `/demo/say` and `/demo/tell` take, in bytes.
pub const MAX_DEMO_TEXT_LEN: usize = 2000;

/// The longest room name `/demo/say` takes.
const MAX_ROOM_LEN: usize = 100;

/// How long `/demo/tell` waits to learn whether anyone reads the inbox.
const TELL_TIMEOUT: Duration = Duration::from_secs(5);

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
    secret: Arc<[u8]>,
    /// How long a token is good for ([`DEFAULT_DEMO_TOKEN_TTL`]); a login
    /// may ask for less.
    pub ttl: Duration,
    /// The cookie is set `Secure` (the page is served over TLS).
    pub secure: bool,
    /// The number of the last guest named (`guest-N`), shared by every
    /// loop's copy.
    guests: Arc<AtomicU64>,
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
fn form_field<'b>(body: &'b [u8], name: &str) -> Option<&'b str> {
    let form = std::str::from_utf8(body).ok()?;
    form.split('&')
        .find_map(|pair| pair.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
}

/// The name of a sign-in form, or the answer that refuses it.
fn demo_name(body: &[u8]) -> Result<&str, Response> {
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
fn sign(
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
fn is_demo_name(name: &str) -> bool {
    is_name(name) && !is_guest_name(name)
}

/// Whether `name` is 1 to [`MAX_DEMO_NAME_LEN`] letters, digits, `_` and `-`.
fn is_name(name: &str) -> bool {
    (1..=MAX_DEMO_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `name` looks like a guest's, in any case (`Guest-1` would
/// pass for `guest-1` on the page).
fn is_guest_name(name: &str) -> bool {
    name.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("guest-"))
}

/// Whether `room` may name a room: 1 to [`MAX_ROOM_LEN`] of a topic
/// name's characters, not `.` or `..`.
fn is_room(room: &str) -> bool {
    (1..=MAX_ROOM_LEN).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The text of a message's body: UTF-8, 1 to [`MAX_DEMO_TEXT_LEN`] bytes.
fn message_text(body: &[u8]) -> Result<&str, Response> {
    if body.len() > MAX_DEMO_TEXT_LEN {
        return Err(Response::text(
            413,
            format!("a message is at most {MAX_DEMO_TEXT_LEN} bytes\n"),
        ));
    }
    match std::str::from_utf8(body) {
        Ok(text) if !text.trim().is_empty() => Ok(text),
        Ok(_) => Err(Response::text(400, "the message is empty\n")),
        Err(_) => Err(Response::text(400, "a message is UTF-8 text\n")),
    }
}

/// A JSON answer with a message for the page to show as it is.
fn said(status: u16, delivered: bool, message: &str) -> Response {
    Response::json(
        status,
        format!(
            "{{\"delivered\":{delivered},\"message\":{}}}",
            json_string(message)
        ),
    )
    .header("Cache-Control", "no-store")
}

/// The page at `/`: plain HTML and JavaScript, served by the binary.
const PAGE: &[u8] = include_bytes!("../static/index.html");

/// The demo application.
///
/// | path | what |
/// | --- | --- |
/// | `/` | the demo page: the `clock` topic's feed, a chat room (`room.ROOM`) with who is in it, and private messages, through the hub |
/// | `/tether-client.js` | the browser client the page uses (`clients/js`, built) |
/// | `/healthz` | `ok` (served by the server itself) |
/// | `/echo` | WebSocket echo |
/// | `POST /demo/login`, `POST /demo/logout` | the sign-in ([`DemoLogin`]), when the demo has one |
/// | `POST /demo/guest` | a guest's token and name (`guest-N`), when the demo has a sign-in; with the guest's own token in `Authorization`, the same name again |
/// | `POST /demo/say?room=ROOM` | the body (UTF-8 text) said in the room, published to `room.ROOM` as `{"from":NAME,"text":TEXT}`, `NAME` the subject of the token in `Authorization`: 204 |
/// | `POST /demo/tell?to=NAME` | a private message from the token's holder (signed in, not a guest) to `inbox.NAME` and the sender's own inbox, as `{"from":..,"to":..,"text":..}`, if anyone is subscribed to `inbox.NAME` (the hub's presence): 200 `{"delivered":true,"message":"sent to NAME"}`, or 404 `{"delivered":false,"message":"nobody called NAME is here"}` |
/// | `/topics/...`, `/tickets`, `/metrics` | the hub ([`HubApp`]) |
/// | `/clock` | a plain clock feed ([`Clock`]): a `welcome`, then a tick a second |
///
/// The hub's topics span every event loop: loop 0 publishes a `tick`
/// event (`{"n":N,"unix_ms":T}`) to the `clock` topic every second, and
/// WebSocket subscribers of `chat.*` topics may publish raw text to them
/// (the hub's open rooms, to try with any client). `/clock` is each
/// loop's own feed: its ids only ever grow for a subscriber, and it
/// resumes from `Last-Event-ID` on whichever loop the client lands. The
/// page's rooms are the `room.*` topics, where each message names its
/// sender. ([`crate::Chat`] is the single-loop building block for
/// embedders who want raw-text rooms.)
#[derive(Debug)]
pub struct Demo {
    apps: Mount<HubApp, Pages>,
    ticks: u64,
    /// Private messages waiting to learn whether anyone reads their
    /// recipient's inbox, by request.
    tells: HashMap<ConnId, Tell>,
}

/// A private message on its way (`POST /demo/tell`).
#[derive(Debug)]
struct Tell {
    from: String,
    to: String,
    text: String,
}

/// The paths the hub serves in the demo.
const HUB_PATHS: &[&str] = &["/topics/", "/tickets", "/metrics", "/tether-client.js"];

/// What the demo serves beside the hub: the page, the echo, the clock
/// feed and the sign-in.
#[derive(Debug)]
struct Pages {
    clock: Clock,
    login: Option<DemoLogin>,
    /// The hub's: who is trusted, and the token cookie.
    settings: HubSettings,
}

impl Default for Demo {
    fn default() -> Demo {
        Demo::new()
    }
}

impl Demo {
    /// The topic the demo publishes a tick to every second.
    pub const CLOCK_TOPIC: &'static str = "clock";

    /// The demo on one event loop, with the demo's hub settings
    /// ([`Demo::settings`]), without the sign-in.
    pub fn new() -> Demo {
        Demo::with_hub(HubShared::new(Demo::settings(HubSettings::default()), 1).app(0))
    }

    /// The demo on one event loop with the sign-in ([`DemoLogin`]), its
    /// tokens verified by the hub
    /// ([`Demo::settings_with_login`]).
    ///
    /// ```
    /// use tether_apps::{Demo, DemoLogin};
    ///
    /// let demo = Demo::signed_in(DemoLogin::generate().expect("randomness"));
    /// ```
    pub fn signed_in(login: DemoLogin) -> Demo {
        let settings = Demo::settings_with_login(HubSettings::default(), &login);
        Demo::with_login(HubShared::new(settings, 1).app(0), login)
    }

    /// The demo around a hub (one per loop: [`HubShared::app`], with
    /// settings passed through [`Demo::settings`]); `/demo/login` answers
    /// 404.
    pub fn with_hub(hub: HubApp) -> Demo {
        Demo::mount(hub, None)
    }

    fn mount(hub: HubApp, login: Option<DemoLogin>) -> Demo {
        let pages = Pages {
            clock: Clock::new(),
            login,
            settings: hub.settings().clone(),
        };
        Demo {
            apps: Mount::new(hub, HUB_PATHS, pages).with_admin_listener(),
            ticks: 0,
            tells: HashMap::new(),
        }
    }

    /// The demo around a hub, with the sign-in: the hub's settings should
    /// have come through [`Demo::settings_with_login`] with the same
    /// `login`.
    pub fn with_login(hub: HubApp, login: DemoLogin) -> Demo {
        Demo::mount(hub, Some(login))
    }

    /// `settings` with what the demo needs: the chat topics (`chat.*`) open
    /// to WebSocket publishers, and with tokens verified, `user.*` and
    /// `inbox.*` private.
    pub fn settings(mut settings: HubSettings) -> HubSettings {
        if !settings.ws_publish.iter().any(|p| p == "chat.*") {
            settings.ws_publish.push("chat.*".to_owned());
        }
        if let Some(auth) = &mut settings.auth {
            let mut patterns: Vec<String> = auth.private.patterns().iter().map(ToString::to_string).collect();
            let before = patterns.len();
            for (pattern, example) in [("user.*", "user.x"), ("inbox.*", "inbox.x")] {
                if !auth.private.needs_grant(example) {
                    patterns.push(pattern.to_owned());
                }
            }
            if patterns.len() > before
                && let Ok(private) = Private::new(patterns)
            {
                auth.private = private;
            }
        }
        settings
    }

    /// [`Demo::settings`], with tokens verified by `login`'s key if no key
    /// is set already.
    pub fn settings_with_login(mut settings: HubSettings, login: &DemoLogin) -> HubSettings {
        if settings.auth.is_none() {
            match login.keys() {
                Ok(keys) => settings.auth = Some(HubAuth::new(keys)),
                Err(e) => log::error!("demo: the sign-in's key is refused: {e}"),
            }
        }
        Demo::settings(settings)
    }
}

impl Demo {
    /// `POST /demo/say?room=ROOM`: the body said in `room.ROOM` in the
    /// name of the token's holder, as `{"from":NAME,"text":TEXT}`.
    fn say(&mut self, ctx: &mut Ctx<'_, HubMessage>, request: &Request<'_>, body: &[u8]) -> Response {
        let who = match self.apps.rest().identity(request) {
            Ok(who) => who,
            Err(refusal) => return refusal,
        };
        let Some(room) = request.query_param("room").filter(|r| is_room(r)) else {
            return Response::text(400, "?room= names the room\n");
        };
        let text = match message_text(body) {
            Ok(text) => text,
            Err(refusal) => return refusal,
        };
        let topic = format!("room.{room}");
        let Some(from) = who.subject.filter(|s| is_name(s)) else {
            return Response::text(403, "this token has no name the demo can show\n");
        };
        if !who.rights.may_subscribe(&topic) {
            return Response::text(403, "this token does not let you in this room\n");
        }
        let data = format!(
            "{{\"from\":{},\"text\":{}}}",
            json_string(&from),
            json_string(text)
        );
        match self.apps.mounted_mut().publish(ctx, &topic, None, &data) {
            Ok(()) => Response::empty(204),
            Err(e) => {
                log::warn!("demo: a message to {topic} was not published: {e}");
                Response::text(503, "the message was not published: try again\n")
            }
        }
    }

    /// `POST /demo/tell?to=NAME`: the body sent to `NAME`'s inbox
    /// (`inbox.NAME`) and the sender's, as
    /// `{"from":SENDER,"to":NAME,"text":TEXT}`, if anyone reads it: the
    /// hub's presence on the topic decides, and the answer says which.
    fn tell(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        let who = match self.apps.rest().identity(request) {
            Ok(who) => who,
            Err(refusal) => return Reply::Now(refusal),
        };
        let Some(from) = who
            .subject
            .filter(|s| is_demo_name(s) && who.rights.may_subscribe(&format!("inbox.{s}")))
        else {
            return Reply::Now(Response::text(403, "sign in to send private messages\n"));
        };
        let Some(to) = request.query_param("to").filter(|n| is_name(n)) else {
            return Reply::Now(Response::text(
                400,
                format!("?to= is a name: 1 to {MAX_DEMO_NAME_LEN} letters, digits, _ and -\n"),
            ));
        };
        let text = match message_text(body) {
            Ok(text) => text.to_owned(),
            Err(refusal) => return Reply::Now(refusal),
        };
        let inbox = format!("inbox.{to}");
        self.tells.insert(conn, Tell { from, to, text });
        self.apps.mounted_mut().ask_presence(ctx, conn, &inbox);
        Reply::Later(TELL_TIMEOUT)
    }

    /// Who reads the inbox of `conn`'s message is known: it is sent, or
    /// its sender told that nobody would read it.
    fn told(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, members: &Members) {
        let Some(tell) = self.tells.remove(&conn) else {
            return;
        };
        if members.count == 0 {
            ctx.respond(
                conn,
                said(404, false, &format!("nobody called {} is here", tell.to)),
            );
            return;
        }
        let data = format!(
            "{{\"from\":{},\"to\":{},\"text\":{}}}",
            json_string(&tell.from),
            json_string(&tell.to),
            json_string(&tell.text)
        );
        let hub = self.apps.mounted_mut();
        let mut inboxes = vec![format!("inbox.{}", tell.to)];
        if tell.from != tell.to {
            inboxes.push(format!("inbox.{}", tell.from));
        }
        let mut failed = false;
        for inbox in &inboxes {
            if let Err(e) = hub.publish(ctx, inbox, None, &data) {
                log::warn!("demo: a private message to {inbox} was not published: {e}");
                failed = true;
            }
        }
        let response = if failed {
            said(503, false, "the message was not sent: try again")
        } else {
            said(200, true, &format!("sent to {}", tell.to))
        };
        ctx.respond(conn, response);
    }

    /// `conn`'s private message will not be answered by [`Demo::told`].
    fn drop_tell(&mut self, conn: ConnId) -> bool {
        self.apps.mounted_mut().forget_presence_question(conn);
        self.tells.remove(&conn).is_some()
    }
}

impl Pages {
    /// `POST /demo/login`: a token for the name in the form body, in the
    /// answer and in the cookie.
    fn login(&self, body: &[u8]) -> Response {
        let (login, auth) = match self.sign_in() {
            Ok(both) => both,
            Err(off) => return off,
        };
        let name = match demo_name(body) {
            Ok(name) => name,
            Err(refusal) => return refusal,
        };
        let longest = login.ttl.as_secs().max(1);
        let ttl = match form_field(body, "ttl") {
            None => longest,
            Some(asked) => match asked.parse::<u64>() {
                Ok(asked) if (1..=longest).contains(&asked) => asked,
                _ => return Response::text(400, format!("ttl is 1 to {longest} seconds\n")),
            },
        };
        let signed = match sign(login, auth, name, DemoLogin::rights(), ttl) {
            Ok(signed) => signed,
            Err(refusal) => return refusal,
        };
        let cookie = auth.cookie.as_deref().unwrap_or(crate::DEFAULT_TOKEN_COOKIE);
        let secure = if login.secure { "; Secure" } else { "" };
        Response::json(
            200,
            format!("{{\"token\":\"{signed}\",\"sub\":\"{name}\",\"expires_in\":{ttl}}}"),
        )
        .header(
            "Set-Cookie",
            &format!(
                "{cookie}={signed}; Path=/topics/user.{name}; Max-Age={ttl}; HttpOnly; SameSite=Lax{secure}"
            ),
        )
        .header("Cache-Control", "no-store")
    }

    /// `POST /demo/guest`: a token for a guest's name, `guest-N`, new for
    /// every visitor; a guest that shows its own token (in
    /// `Authorization`) keeps its name.
    fn guest(&self, request: &Request<'_>) -> Response {
        let (login, auth) = match self.sign_in() {
            Ok(both) => both,
            Err(off) => return off,
        };
        let name = match self.identity(request).ok().and_then(|who| who.subject) {
            Some(name) if is_guest_name(&name) && is_name(&name) => name,
            _ => format!(
                "guest-{}",
                login.guests.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
            ),
        };
        let ttl = login.ttl.as_secs().max(1);
        match sign(login, auth, &name, DemoLogin::guest_rights(), ttl) {
            Ok(signed) => Response::json(
                200,
                format!("{{\"token\":\"{signed}\",\"sub\":\"{name}\",\"expires_in\":{ttl}}}"),
            )
            .header("Cache-Control", "no-store"),
            Err(refusal) => refusal,
        }
    }

    /// The sign-in and the hub's token settings, or the answer that says
    /// the sign-in is off.
    fn sign_in(&self) -> Result<(&DemoLogin, &HubAuth), Response> {
        let Some(login) = &self.login else {
            return Err(Response::text(
                404,
                "the demo's sign-in is off: tokens come from the configured issuer\n",
            ));
        };
        let Some(auth) = &self.settings.auth else {
            return Err(Response::text(404, "the demo's sign-in is off\n"));
        };
        Ok((login, auth))
    }

    /// Who sends a request: the token in its `Authorization` header, as
    /// the hub verifies it (never a cookie, which another site's form
    /// would carry along; never a name in the body).
    fn identity(&self, request: &Request<'_>) -> Result<Identity, Response> {
        let unknown = || Response::text(401, "sign in, or take a guest's name, first\n");
        let auth = self.settings.auth.as_ref().ok_or_else(unknown)?;
        let token = request
            .header("authorization")
            .and_then(bearer_token)
            .ok_or_else(unknown)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        verify(token, &auth.keys(), &auth.validation, now).map_err(|e| {
            log::debug!("demo: a token was refused: {e}");
            Response::text(401, "the token is not good (expired?): sign in again\n")
        })
    }

    /// `POST /demo/logout`: the cookie of `name=NAME` cleared.
    fn logout(&self, body: &[u8]) -> Response {
        let name = match demo_name(body) {
            Ok(name) => name,
            Err(refusal) => return refusal,
        };
        let cookie = self
            .settings
            .auth
            .as_ref()
            .and_then(|auth| auth.cookie.as_deref())
            .unwrap_or(crate::DEFAULT_TOKEN_COOKIE);
        let secure = if self.login.as_ref().is_some_and(|l| l.secure) {
            "; Secure"
        } else {
            ""
        };
        Response::empty(204).header(
            "Set-Cookie",
            &format!("{cookie}=; Path=/topics/user.{name}; Max-Age=0; HttpOnly; SameSite=Lax{secure}"),
        )
    }

    /// Whether a sign-in request comes from the demo's own page or an
    /// origin the hub trusts (no `Origin`: not from a browser): another
    /// site may not sign a visitor in under a name of its choosing.
    fn login_origin_ok(&self, request: &Request<'_>) -> bool {
        self.settings.origins().allows(request)
    }

    /// The CORS fields of an answer to `origin`, if the hub trusts it.
    fn with_cors(&self, response: Response, request: &Request<'_>) -> Response {
        self.settings.origins().with_cors(request, response)
    }
}

impl App for Pages {
    type Post = HubMessage;

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/" | "/index.html" => Route::Page {
                content_type: "text/html; charset=utf-8",
                body: PAGE,
            },
            "/echo" => Route::WebSocket(ECHO),
            "/clock" => Route::EventStream(CLOCK),
            path @ ("/demo/login" | "/demo/logout" | "/demo/guest" | "/demo/say" | "/demo/tell") => {
                match request.method() {
                    "POST" => Route::Handler(match path {
                        "/demo/login" => LOGIN,
                        "/demo/logout" => LOGOUT,
                        "/demo/guest" => GUEST,
                        "/demo/say" => SAY,
                        _ => TELL,
                    }),
                    // A plain OPTIONS is a method the route does not take;
                    // saying and telling are for the demo's own page.
                    "OPTIONS"
                        if request.header("access-control-request-method").is_some()
                            && !matches!(path, "/demo/say" | "/demo/tell") =>
                    {
                        Route::Handler(LOGIN_PREFLIGHT)
                    }
                    _ => Route::Handler(ONLY_POST),
                }
            }
            _ => Route::NotFound,
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, message: MessageRef<'_>) {
        if tag == ECHO {
            Echo::reply(ctx, conn, message);
        }
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        _request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        if tag == CLOCK {
            self.clock.subscribe(ctx, conn, last_event_id);
        }
    }

    fn on_unsubscribe(
        &mut self,
        _ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        _reason: CloseReason,
    ) {
        if tag == CLOCK {
            self.clock.unsubscribe(conn);
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        self.clock.tick(ctx);
    }

    fn on_request(
        &mut self,
        _ctx: &mut Ctx<'_, HubMessage>,
        _conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        let response = match tag {
            LOGIN | LOGOUT | GUEST if !self.login_origin_ok(request) => {
                Response::text(403, "origin not allowed\n")
            }
            LOGIN => self.login(body),
            GUEST => self.guest(request),
            LOGOUT => self.logout(body),
            LOGIN_PREFLIGHT
                if request
                    .header("origin")
                    .is_some_and(|o| self.settings.is_trusted(o)) =>
            {
                Response::empty(204)
                    .header("Access-Control-Allow-Methods", "POST")
                    .header("Access-Control-Allow-Headers", "Content-Type")
                    .header("Access-Control-Max-Age", "600")
            }
            LOGIN_PREFLIGHT => Response::text(403, "origin not allowed\n"),
            ONLY_POST => Response::text(405, "405 Method Not Allowed\n").header("Allow", "POST"),
            _ => Response::text(404, "404 Not Found\n"),
        };
        Reply::Now(self.with_cors(response, request))
    }
}

/// The hub mounted beside the demo's pages; loop 0 publishes the clock
/// topic on every tick.
impl App for Demo {
    type Post = HubMessage;

    fn route(&mut self, request: &Request<'_>) -> Route {
        self.apps.route(request)
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, request: &Request<'_>) {
        self.apps.on_open(ctx, conn, tag, request);
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, message: MessageRef<'_>) {
        self.apps.on_message(ctx, conn, tag, message);
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, reason: CloseReason) {
        self.apps.on_close(ctx, conn, tag, reason);
    }

    fn event_stream_headers(&mut self, tag: u32, request: &Request<'_>) -> Vec<(String, String)> {
        self.apps.event_stream_headers(tag, request)
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        self.apps.on_subscribe(ctx, conn, tag, request, last_event_id);
    }

    fn on_unsubscribe(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, reason: CloseReason) {
        self.apps.on_unsubscribe(ctx, conn, tag, reason);
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.apps.tick_interval()
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        if ctx.loop_index().0 == 0 {
            self.ticks += 1;
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let data = format!("{{\"n\":{},\"unix_ms\":{unix_ms}}}", self.ticks);
            let hub = self.apps.mounted_mut();
            if let Err(e) = hub.publish(ctx, Demo::CLOCK_TOPIC, Some("tick"), &data) {
                log::warn!("demo: the clock could not publish: {e}");
            }
        }
        self.apps.on_tick(ctx);
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        // The pages' tags are the mount's unmarked ones: these need the hub.
        match tag {
            SAY => Reply::Now(self.say(ctx, request, body)),
            TELL => self.tell(ctx, conn, request, body),
            _ => self.apps.on_request(ctx, conn, tag, request, body),
        }
    }

    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32) -> Response {
        if tag == TELL {
            self.drop_tell(conn);
            return said(504, false, "nobody answered in time: try again");
        }
        self.apps.on_request_timeout(ctx, conn, tag)
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32) {
        if tag == TELL {
            self.drop_tell(conn);
            return;
        }
        self.apps.on_request_abandoned(ctx, conn, tag);
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, HubMessage>, message: HubMessage) {
        self.apps.on_post(ctx, message);
        for (conn, members) in self.apps.mounted_mut().take_presence_answers() {
            self.told(ctx, conn, &members);
        }
    }

    fn refuse_before_body(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        request: &Request<'_>,
    ) -> Option<Response> {
        self.apps.refuse_before_body(ctx, request)
    }

    fn body_too_large(&mut self, request: &Request<'_>, limit: usize) -> Option<Response> {
        self.apps.body_too_large(request, limit)
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        self.apps.on_shutdown(ctx);
    }

    fn on_request_shutdown(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
    ) -> Option<Response> {
        if tag == TELL && self.drop_tell(conn) {
            return Some(said(503, false, "the server is restarting: try again"));
        }
        self.apps.on_request_shutdown(ctx, conn, tag)
    }
}
