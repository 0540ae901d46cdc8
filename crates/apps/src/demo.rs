//! The demo served by `tether serve`: a page, an echo, and the pub/sub hub
//! with a clock feed and chat rooms as topics, on one port and every
//! event loop.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{Clock, Echo, HubApp, HubSettings, HubShared};
use tether_hub::HubMessage;
use tether_server::{App, CloseReason, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

const ECHO: u32 = 1;
const CLOCK: u32 = 4;

/// The page at `/`: plain HTML and JavaScript, served by the binary.
const PAGE: &[u8] = include_bytes!("../static/index.html");

/// The demo application.
///
/// | path | what |
/// | --- | --- |
/// | `/` | the demo page: the `clock` topic's feed and a chat room (`chat.ROOM`), both through the hub |
/// | `/healthz` | `ok` (served by the server itself) |
/// | `/echo` | WebSocket echo |
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
    hub: HubApp,
    clock: Clock,
    ticks: u64,
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
    /// ([`Demo::settings`]).
    pub fn new() -> Demo {
        Demo::with_hub(HubShared::new(Demo::settings(HubSettings::default()), 1).app(0))
    }

    /// The demo around a hub (one per loop: [`HubShared::app`], with
    /// settings passed through [`Demo::settings`]).
    pub fn with_hub(hub: HubApp) -> Demo {
        Demo {
            hub,
            clock: Clock::new(),
            ticks: 0,
        }
    }

    /// `settings` with what the demo needs: the chat topics (`chat.*`) open
    /// to WebSocket publishers.
    pub fn settings(mut settings: HubSettings) -> HubSettings {
        if !settings.ws_publish.iter().any(|p| p == "chat.*") {
            settings.ws_publish.push("chat.*".to_owned());
        }
        settings
    }
}

impl App for Demo {
    type Post = HubMessage;

    fn route(&mut self, request: &Request<'_>) -> Route {
        if request.via_admin_listener() {
            // The hub decides what an operator's listener serves.
            return self.hub.route(request);
        }
        match request.path() {
            "/" | "/index.html" => Route::Page {
                content_type: "text/html; charset=utf-8",
                body: PAGE,
            },
            "/echo" => Route::WebSocket(ECHO),
            "/clock" => Route::EventStream(CLOCK),
            _ => self.hub.route(request),
        }
    }

    fn on_open(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, request: &Request<'_>) {
        if HubApp::handles(tag) {
            self.hub.on_open(ctx, conn, tag, request);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, message: MessageRef<'_>) {
        match tag {
            ECHO => Echo::reply(ctx, conn, message),
            _ if HubApp::handles(tag) => self.hub.on_message(ctx, conn, tag, message),
            _ => {}
        }
    }

    fn on_close(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, reason: CloseReason) {
        if HubApp::handles(tag) {
            self.hub.on_close(ctx, conn, tag, reason);
        }
    }

    fn event_stream_headers(&mut self, tag: u32, request: &Request<'_>) -> Vec<(String, String)> {
        if HubApp::handles(tag) {
            self.hub.event_stream_headers(tag, request)
        } else {
            Vec::new()
        }
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        match tag {
            CLOCK => self.clock.subscribe(ctx, conn, last_event_id),
            _ if HubApp::handles(tag) => self.hub.on_subscribe(ctx, conn, tag, request, last_event_id),
            _ => {}
        }
    }

    fn on_unsubscribe(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32, reason: CloseReason) {
        match tag {
            CLOCK => self.clock.unsubscribe(conn),
            _ if HubApp::handles(tag) => self.hub.on_unsubscribe(ctx, conn, tag, reason),
            _ => {}
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        self.clock.tick(ctx);
        if ctx.loop_index().0 == 0 {
            self.ticks += 1;
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            let data = format!("{{\"n\":{},\"unix_ms\":{unix_ms}}}", self.ticks);
            if let Err(e) = self.hub.publish(ctx, Demo::CLOCK_TOPIC, Some("tick"), &data) {
                log::warn!("demo: the clock could not publish: {e}");
            }
        }
        self.hub.on_tick(ctx);
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        if HubApp::handles(tag) {
            return self.hub.on_request(ctx, conn, tag, request, body);
        }
        Reply::Now(Response::text(404, "404 Not Found\n"))
    }

    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32) -> Response {
        self.hub.on_request_timeout(ctx, conn, tag)
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, tag: u32) {
        self.hub.on_request_abandoned(ctx, conn, tag);
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, HubMessage>, message: HubMessage) {
        self.hub.on_post(ctx, message);
    }

    fn refuse_before_body(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        request: &Request<'_>,
    ) -> Option<Response> {
        self.hub.refuse_before_body(ctx, request)
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        self.hub.on_shutdown(ctx);
    }

    fn on_request_shutdown(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        tag: u32,
    ) -> Option<Response> {
        self.hub.on_request_shutdown(ctx, conn, tag)
    }
}
