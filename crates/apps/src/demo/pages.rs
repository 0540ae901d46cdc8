//! What the demo serves beside the hub: the page, the echo, the clock
//! feed and the sign-in's routes, and the tags of the demo's routes.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tether_auth::{Identity, bearer_token, verify};
use tether_hub::HubMessage;
use tether_server::{App, CloseReason, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

use super::login::{DemoLogin, demo_name, form_field, is_guest_name, is_name, sign};
use crate::{Clock, Echo, HubAuth, HubSettings};

const ECHO: u32 = 1;
const CLOCK: u32 = 4;
const LOGIN: u32 = 5;
const LOGOUT: u32 = 6;
const LOGIN_PREFLIGHT: u32 = 7;
const ONLY_POST: u32 = 8;
const GUEST: u32 = 9;
pub(super) const SAY: u32 = 10;
pub(super) const TELL: u32 = 11;

/// The page at `/`: plain HTML and JavaScript, served by the binary.
const PAGE: &[u8] = include_bytes!("../../static/index.html");

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
