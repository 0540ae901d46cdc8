//! The demo served by `tether serve`: a page, an echo, and the pub/sub hub
//! with a clock feed, chat rooms and private inboxes as topics, on one
//! port and every event loop; a sign-in that gives each visitor a
//! short-lived token (a guest's name, or the name signed in with), and
//! the routes that speak in the token's name.
//!
//! This file holds the demo application and the routes that speak in a
//! token's name (`/demo/say`, `/demo/tell`); the sign-in is in
//! `login.rs`, and what the demo serves beside the hub (the page, the
//! echo, the clock feed, the sign-in's routes) in `pages.rs`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tether_auth::Private;
use tether_hub::{HubMessage, Members, json_string};
use tether_hub_app::{HubApp, HubAuth, HubSettings, HubShared};
use tether_server::{App, ConnId, Ctx, Reply, Request, Response};

use crate::clock::Clock;
use crate::mount::{Mount, MountState};

mod login;
mod pages;

pub use self::login::{DEFAULT_DEMO_TOKEN_TTL, DemoLogin, MAX_DEMO_NAME_LEN};
use self::login::{demo_name, is_demo_name, is_name};
use self::pages::{LOGIN, Pages, SAY, TELL};

/// The longest message `/demo/say` and `/demo/tell` take, in bytes.
pub const MAX_DEMO_TEXT_LEN: usize = 2000;

/// The longest room name `/demo/say` takes.
const MAX_ROOM_LEN: usize = 100;

/// How long `/demo/tell` waits to learn whether anyone reads the inbox.
const TELL_TIMEOUT: Duration = Duration::from_secs(5);

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

/// The demo application.
///
/// | path | what |
/// | --- | --- |
/// | `/` | the demo page: the `clock` topic's feed, a chat room (`room.ROOM`) with who is in it, and private messages, through the hub |
/// | `/tether-client.js` | the browser client the page uses (`clients/js`, built) |
/// | `/healthz` | `ok` (served by the server itself) |
/// | `/echo` | WebSocket echo |
/// | `POST /demo/login`, `POST /demo/logout` | the sign-in ([`DemoLogin`]), when the demo has one; a name someone is online under (reading its inbox) is refused with 409, but to the browser signed in under it (its token, or the pass in its cookie `tether_demo_name`) |
/// | `POST /demo/guest` | a guest's token and name (`guest-N`), when the demo has a sign-in; with the guest's own token in `Authorization`, or the pass its cookie `tether_demo_guest` holds (set by every answer: one guest per browser), the same name again |
/// | `POST /demo/say?room=ROOM` | the body (UTF-8 text) said in the room, published to `room.ROOM` as `{"from":NAME,"text":TEXT}`, `NAME` the subject of the token in `Authorization`: 204 |
/// | `POST /demo/tell?to=NAME` | a private message from the token's holder (signed in, not a guest) to `inbox.NAME` and the sender's own inbox, as `{"from":..,"to":..,"text":..}`, if anyone is subscribed to `inbox.NAME` (the hub's presence): 200 `{"delivered":true,"message":"sent to NAME"}`, or 404 `{"delivered":false,"message":"nobody called NAME is here"}` |
/// | `/topics/...`, `/ws`, `/events`, `/poll`, `/tickets`, `/metrics` | the hub ([`HubApp`]) |
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
    /// Sign-ins waiting to learn whether their name is online, by
    /// request.
    logins: HashMap<ConnId, Login>,
}

/// A sign-in on its way (`POST /demo/login`): its answer, given if the
/// name is not online.
#[derive(Debug)]
struct Login {
    name: String,
    answer: Response,
}

/// A private message on its way (`POST /demo/tell`).
#[derive(Debug)]
struct Tell {
    from: String,
    to: String,
    text: String,
}

/// The paths the hub serves in the demo.
/// `/ws`, `/events` and `/poll` are the multiplexed routes the browser
/// client carries all of a page's subscriptions on.
const HUB_PATHS: &[&str] = &[
    "/topics/",
    "/tickets",
    "/metrics",
    "/tether-client.js",
    "/ws",
    "/events",
    "/poll",
];

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
            logins: HashMap::new(),
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

    /// `POST /demo/login`: the sign-in's answer, unless someone is online
    /// under that name (reading `inbox.NAME`, by the hub's presence, on
    /// every node): a name is one person's at a time. The browser that
    /// signed in under it (its token, or the pass in its cookie) signs in
    /// again without the question, in any of its windows.
    fn login(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        let pages = self.apps.rest();
        if !pages.login_origin_ok(request) {
            return Reply::Now(pages.with_cors(Response::text(403, "origin not allowed\n"), request));
        }
        let answer = pages.with_cors(pages.login(body), request);
        let Ok(name) = demo_name(body) else {
            return Reply::Now(answer);
        };
        let renewal = pages.is_signed_in_as(request, name);
        if answer.status != 200 || renewal {
            return Reply::Now(answer);
        }
        let inbox = format!("inbox.{name}");
        self.logins.insert(
            conn,
            Login {
                name: name.to_owned(),
                answer,
            },
        );
        self.apps.mounted_mut().ask_presence(ctx, conn, &inbox);
        Reply::Later(TELL_TIMEOUT)
    }

    /// Whether `conn`'s sign-in name is online is known: its answer, or a
    /// refusal that says the name is taken.
    fn logged_in(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, members: &Members) {
        let Some(login) = self.logins.remove(&conn) else {
            return;
        };
        if members.count == 0 {
            ctx.respond(conn, login.answer);
            return;
        }
        // The refusal keeps the answer's CORS fields, and sets no cookie.
        let mut refusal = Response::text(
            409,
            format!(
                "{} is signed in already, in another window or by someone else: choose another name\n",
                login.name
            ),
        );
        refusal.headers.extend(
            login
                .answer
                .headers
                .into_iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("set-cookie")),
        );
        ctx.respond(conn, refusal);
    }

    /// `conn`'s sign-in will not be answered by [`Demo::logged_in`].
    fn drop_login(&mut self, conn: ConnId) -> bool {
        self.apps.mounted_mut().forget_presence_question(conn);
        self.logins.remove(&conn).is_some()
    }

    /// `conn`'s private message will not be answered by [`Demo::told`].
    fn drop_tell(&mut self, conn: ConnId) -> bool {
        self.apps.mounted_mut().forget_presence_question(conn);
        self.tells.remove(&conn).is_some()
    }
}

/// The hub mounted beside the demo's pages; loop 0 publishes the clock
/// topic on every tick.
impl App for Demo {
    type Post = HubMessage;
    type State = MountState<<HubApp as App>::State, u32>;

    tether_server::forward_app!(self.apps =>
        route, on_open, on_message, on_close, event_stream_headers, on_subscribe, on_unsubscribe,
        tick_interval, ready, readiness, on_proceed, before_body, refuse_before_body, body_too_large, on_shutdown,
        keeps_session_state, subject,
    );

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
        state: &mut Self::State,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        // The pages' tags are the mount's unmarked ones: these need the hub.
        match state {
            MountState::Rest(SAY) => Reply::Now(self.say(ctx, request, body)),
            MountState::Rest(TELL) => self.tell(ctx, conn, request, body),
            MountState::Rest(LOGIN) => self.login(ctx, conn, request, body),
            _ => self.apps.on_request(ctx, conn, state, request, body),
        }
    }

    fn on_request_timeout(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
    ) -> Response {
        if matches!(state, MountState::Rest(TELL)) {
            self.drop_tell(conn);
            return said(504, false, "nobody answered in time: try again");
        }
        if matches!(state, MountState::Rest(LOGIN)) {
            self.drop_login(conn);
            return Response::text(504, "whether the name is online is not known yet: try again\n");
        }
        self.apps.on_request_timeout(ctx, conn, state)
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, state: &mut Self::State) {
        if matches!(state, MountState::Rest(TELL)) {
            self.drop_tell(conn);
            return;
        }
        if matches!(state, MountState::Rest(LOGIN)) {
            self.drop_login(conn);
            return;
        }
        self.apps.on_request_abandoned(ctx, conn, state);
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, HubMessage>, message: HubMessage) {
        self.apps.on_post(ctx, message);
        for (conn, members) in self.apps.mounted_mut().take_presence_answers() {
            if self.logins.contains_key(&conn) {
                self.logged_in(ctx, conn, &members);
            } else {
                self.told(ctx, conn, &members);
            }
        }
    }

    fn on_request_shutdown(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
    ) -> Option<Response> {
        if matches!(state, MountState::Rest(TELL)) && self.drop_tell(conn) {
            return Some(said(503, false, "the server is restarting: try again"));
        }
        if matches!(state, MountState::Rest(LOGIN)) && self.drop_login(conn) {
            return Some(Response::text(503, "the server is restarting: try again\n"));
        }
        self.apps.on_request_shutdown(ctx, conn, state)
    }
}
