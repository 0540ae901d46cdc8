//! What the demo serves beside the hub: the page, the echo, the clock
//! feed and the sign-in's routes, and the tags of the demo's routes.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tether_auth::{Identity, bearer_token, cookie_token, verify};
use tether_hub::HubMessage;
use tether_hub_app::{HubAuth, HubSettings};
use tether_server::{App, CloseReason, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

use super::login::{
    DemoLogin, GUEST_COOKIE, GUEST_PASS_TTL, NAME_COOKIE, demo_name, form_field, is_guest_name, is_name, sign,
};
use crate::clock::Clock;
use crate::echo::Echo;

const ECHO: u32 = 1;
const CLOCK: u32 = 4;
pub(super) const LOGIN: u32 = 5;
const LOGOUT: u32 = 6;
const LOGIN_PREFLIGHT: u32 = 7;
const ONLY_POST: u32 = 8;
const GUEST: u32 = 9;
pub(super) const SAY: u32 = 10;
pub(super) const TELL: u32 = 11;

/// The page at `/`: plain HTML and JavaScript, served by the binary.
const PAGE: &[u8] = include_bytes!("../../static/index.html");

/// Seconds since 1970, as tokens count them.
fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the demo serves beside the hub: the page, the echo, the clock
/// feed and the sign-in.
#[derive(Debug)]
pub(super) struct Pages {
    pub(super) clock: Clock,
    pub(super) login: Option<DemoLogin>,
    /// The hub's: who is trusted, and the token cookie.
    pub(super) settings: HubSettings,
}

impl Pages {
    /// `POST /demo/login`: a token for the name in the form body, in the
    /// answer and in the cookie.
    pub(super) fn login(&self, body: &[u8]) -> Response {
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
        let cookie = auth
            .cookie
            .as_deref()
            .unwrap_or(tether_hub_app::DEFAULT_TOKEN_COOKIE);
        let secure = if login.secure { "; Secure" } else { "" };
        let mut response = Response::json(
            200,
            format!("{{\"token\":\"{signed}\",\"sub\":\"{name}\",\"expires_in\":{ttl}}}"),
        )
        .header(
            "Set-Cookie",
            &format!(
                "{cookie}={signed}; Path=/topics/user.{name}; Max-Age={ttl}; HttpOnly; SameSite=Lax{secure}"
            ),
        )
        .header("Cache-Control", "no-store");
        // This browser is NAME while the token lasts: its other windows
        // may sign in under the name though it is online.
        if let Some(pass) = login.pass(name, ttl, now_secs()) {
            response = response.header(
                "Set-Cookie",
                &format!(
                    "{NAME_COOKIE}={pass}; Path=/demo/login; Max-Age={ttl}; HttpOnly; SameSite=Strict{secure}"
                ),
            );
        }
        response
    }

    /// Whether the browser that sends `request` signed in as `name` (the
    /// pass in its [`NAME_COOKIE`], or a good token for the name in
    /// `Authorization`).
    pub(super) fn is_signed_in_as(&self, request: &Request<'_>, name: &str) -> bool {
        let by_pass = || {
            let login = self.login.as_ref()?;
            let pass = cookie_token(request.header("cookie")?, NAME_COOKIE)?;
            login.name_of_pass(pass, now_secs())
        };
        self.identity(request)
            .is_ok_and(|who| who.subject.as_deref() == Some(name))
            || by_pass().as_deref() == Some(name)
    }

    /// `POST /demo/guest`: a token for a guest's name, `guest-N`, new for
    /// every browser. A guest keeps its name: shown its own token (in
    /// `Authorization`), or the pass in its cookie ([`GUEST_COOKIE`],
    /// `Path=/demo/guest`, `HttpOnly; SameSite=Strict`, renewed with
    /// every answer), so every window of one browser is one guest, before
    /// and after a restart of a server that keeps the demo's secret
    /// ([`DemoLogin::kept_in`]).
    fn guest(&self, request: &Request<'_>) -> Response {
        let (login, auth) = match self.sign_in() {
            Ok(both) => both,
            Err(off) => return off,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let by_token = self
            .identity(request)
            .ok()
            .and_then(|who| who.subject)
            .filter(|name| is_guest_name(name) && is_name(name));
        let by_pass = || {
            request
                .header("cookie")
                .and_then(|cookie| cookie_token(cookie, GUEST_COOKIE))
                .and_then(|pass| login.name_of_pass(pass, now))
                .filter(|name| is_guest_name(name))
        };
        let name = by_token.or_else(by_pass).unwrap_or_else(|| {
            format!(
                "guest-{}",
                login.guests.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
            )
        });
        let ttl = login.ttl.as_secs().max(1);
        let signed = match sign(login, auth, &name, DemoLogin::guest_rights(), ttl) {
            Ok(signed) => signed,
            Err(refusal) => return refusal,
        };
        let mut response = Response::json(
            200,
            format!("{{\"token\":\"{signed}\",\"sub\":\"{name}\",\"expires_in\":{ttl}}}"),
        )
        .header("Cache-Control", "no-store");
        if let Some(pass) = login.pass(&name, GUEST_PASS_TTL.as_secs(), now) {
            let secure = if login.secure { "; Secure" } else { "" };
            response = response.header(
                "Set-Cookie",
                &format!(
                    "{GUEST_COOKIE}={pass}; Path=/demo/guest; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
                    GUEST_PASS_TTL.as_secs()
                ),
            );
        }
        response
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
    pub(super) fn identity(&self, request: &Request<'_>) -> Result<Identity, Response> {
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
            .unwrap_or(tether_hub_app::DEFAULT_TOKEN_COOKIE);
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
    pub(super) fn login_origin_ok(&self, request: &Request<'_>) -> bool {
        self.settings.origins().allows(request)
    }

    /// The CORS fields of an answer to `origin`, if the hub trusts it.
    pub(super) fn with_cors(&self, response: Response, request: &Request<'_>) -> Response {
        self.settings.origins().with_cors(request, response)
    }
}

impl App for Pages {
    type Post = HubMessage;
    type State = u32;

    fn route(&mut self, request: &Request<'_>) -> Route<u32> {
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

    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: &mut u32,
        message: MessageRef<'_>,
    ) {
        if *tag == ECHO {
            Echo::reply(ctx, conn, message);
        }
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: &mut u32,
        _request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        if *tag == CLOCK {
            self.clock.subscribe(ctx, conn, last_event_id);
        }
    }

    fn on_unsubscribe(
        &mut self,
        _ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: &mut u32,
        _reason: CloseReason,
    ) {
        if *tag == CLOCK {
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
        tag: &mut u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        let response = match *tag {
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
