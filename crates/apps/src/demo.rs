//! The demo served by `tether serve`: a page, an echo, and the pub/sub hub
//! with a clock feed and chat rooms as topics, on one port and every
//! event loop; and a sign-in that gives each visitor a short-lived token
//! for their own private topic.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::client_script;
use crate::hub::origin;
use crate::{Clock, Echo, HubApp, HubAuth, HubSettings, HubShared, Mount};
use tether_auth::{Key, Keys, NewToken, Private, TetherClaim};
use tether_hub::HubMessage;
use tether_server::{App, CloseReason, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

const ECHO: u32 = 1;
const CLOCK: u32 = 4;
const LOGIN: u32 = 5;
const LOGOUT: u32 = 6;
const LOGIN_PREFLIGHT: u32 = 7;
const ONLY_POST: u32 = 8;

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
/// `chat.*` and `user.NAME`, and publish to `chat.*` and `user.*` (so
/// that users can write to each other: with the token in
/// `Authorization`); `user.*` is private in the demo. Anyone may sign in
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

    /// The rights of a demo user's token (`{sub}` is the name).
    pub fn rights() -> TetherClaim {
        TetherClaim::new(
            vec!["chat.*".into(), "user.{sub}".into()],
            vec!["chat.*".into(), "user.*".into()],
        )
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

/// Whether `name` may sign in to the demo.
fn is_demo_name(name: &str) -> bool {
    (1..=MAX_DEMO_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The page at `/`: plain HTML and JavaScript, served by the binary.
const PAGE: &[u8] = include_bytes!("../static/index.html");

/// The demo application.
///
/// | path | what |
/// | --- | --- |
/// | `/` | the demo page: the `clock` topic's feed and a chat room (`chat.ROOM`), both through the hub |
/// | `/tether-client.js` | the browser client the page uses (`clients/js`, built) |
/// | `/healthz` | `ok` (served by the server itself) |
/// | `/echo` | WebSocket echo |
/// | `POST /demo/login`, `POST /demo/logout` | the sign-in ([`DemoLogin`]), when the demo has one |
/// | `/topics/...`, `/tickets`, `/metrics` | the hub ([`HubApp`]) |
/// | `/clock` | a plain clock feed ([`Clock`]): a `welcome`, then a tick a second |
///
/// The hub's topics span every event loop: loop 0 publishes a `tick`
/// event (`{"n":N,"unix_ms":T}`) to the `clock` topic every second, and
/// WebSocket subscribers of `chat.*` topics may publish to them. `/clock`
/// is each loop's own feed: its ids only ever grow for a subscriber, and
/// it resumes from `Last-Event-ID` on whichever loop the client lands.
/// (Chat rooms are the `chat.*` topics; [`crate::Chat`] is the
/// single-loop building block for embedders who want raw-text rooms.)
#[derive(Debug)]
pub struct Demo {
    apps: Mount<HubApp, Pages>,
    ticks: u64,
}

/// The paths the hub serves in the demo.
const HUB_PATHS: &[&str] = &["/topics/", "/tickets", "/metrics"];

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
        }
    }

    /// The demo around a hub, with the sign-in: the hub's settings should
    /// have come through [`Demo::settings_with_login`] with the same
    /// `login`.
    pub fn with_login(hub: HubApp, login: DemoLogin) -> Demo {
        Demo::mount(hub, Some(login))
    }

    /// `settings` with what the demo needs: the chat topics (`chat.*`) open
    /// to WebSocket publishers, and with tokens verified, `user.*`
    /// private.
    pub fn settings(mut settings: HubSettings) -> HubSettings {
        if !settings.ws_publish.iter().any(|p| p == "chat.*") {
            settings.ws_publish.push("chat.*".to_owned());
        }
        if let Some(auth) = &mut settings.auth
            && !auth.private.needs_grant("user.x")
        {
            let mut patterns: Vec<String> = auth.private.patterns().iter().map(ToString::to_string).collect();
            patterns.push("user.*".to_owned());
            if let Ok(private) = Private::new(patterns) {
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

impl Pages {
    /// `POST /demo/login`: a token for the name in the form body, in the
    /// answer and in the cookie.
    fn login(&self, body: &[u8]) -> Response {
        let Some(login) = &self.login else {
            return Response::text(
                404,
                "the demo's sign-in is off: tokens come from the configured issuer\n",
            );
        };
        let Some(auth) = &self.settings.auth else {
            return Response::text(404, "the demo's sign-in is off\n");
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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut token = NewToken::new(name, DemoLogin::rights(), now, now.saturating_add(ttl));
        token.audience = auth.validation.audience.first().cloned();
        token.issuer = auth.validation.issuer.first().cloned();
        let signed = match token.sign_hs256(&login.secret) {
            Ok(signed) => signed,
            Err(e) => {
                log::error!("demo: a token could not be signed: {e}");
                return Response::text(500, "the token could not be signed\n");
            }
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
        let settings = &self.settings;
        request
            .header("origin")
            .is_none_or(|origin| settings.is_trusted(origin) || origin::is_own_origin(request, origin))
    }

    /// The CORS fields of an answer to `origin`, if the hub trusts it.
    fn with_cors(&self, response: Response, request: &Request<'_>) -> Response {
        let settings = &self.settings;
        if settings.trusted_origins.is_empty() {
            return response;
        }
        let response = response.header("Vary", "Origin");
        match request.header("origin").filter(|o| settings.is_trusted(o)) {
            Some(origin) => response
                .header("Access-Control-Allow-Origin", origin)
                .header("Access-Control-Allow-Credentials", "true"),
            None => response,
        }
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
            // The browser client the page imports.
            client_script::PATH => client_script::route(),
            "/echo" => Route::WebSocket(ECHO),
            "/clock" => Route::EventStream(CLOCK),
            "/demo/login" | "/demo/logout" => match request.method() {
                "POST" if request.path() == "/demo/login" => Route::Handler(LOGIN),
                "POST" => Route::Handler(LOGOUT),
                // A plain OPTIONS is a method the route does not take.
                "OPTIONS" if request.header("access-control-request-method").is_some() => {
                    Route::Handler(LOGIN_PREFLIGHT)
                }
                _ => Route::Handler(ONLY_POST),
            },
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
            LOGIN | LOGOUT if !self.login_origin_ok(request) => Response::text(403, "origin not allowed\n"),
            LOGIN => self.login(body),
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
        self.apps.on_request(ctx, conn, tag, request, body)
    }

    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32) -> Response {
        self.apps.on_request_timeout(ctx, conn, tag)
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32) {
        self.apps.on_request_abandoned(ctx, conn, tag);
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, HubMessage>, message: HubMessage) {
        self.apps.on_post(ctx, message);
    }

    fn refuse_before_body(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        request: &Request<'_>,
    ) -> Option<Response> {
        self.apps.refuse_before_body(ctx, request)
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
        self.apps.on_request_shutdown(ctx, conn, tag)
    }
}
