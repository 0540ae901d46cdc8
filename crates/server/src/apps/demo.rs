//! The demo served by `tether serve`: a page, an echo, chat rooms and a
//! clock feed on one port.

use std::time::Duration;

use crate::apps::{Chat, Clock, Echo};
use crate::{App, CloseReason, ConnId, Ctx, Message, Request, Route};

const ECHO: u32 = 1;
const CHAT: u32 = 2;
const CHAT_EVENTS: u32 = 3;
const CLOCK: u32 = 4;

/// The page at `/`: plain HTML and JavaScript, served by the binary.
const PAGE: &[u8] = include_bytes!("../../static/index.html");

/// The demo application.
///
/// | path | what |
/// | --- | --- |
/// | `/` | the demo page |
/// | `/healthz` | `ok` (served by the server itself) |
/// | `/echo` | WebSocket echo |
/// | `/chat?room=NAME` | WebSocket chat room (default room "lobby") |
/// | `/chat/events?room=NAME` | the room's messages as Server-Sent Events |
/// | `/clock` | a tick a second as Server-Sent Events, with ids |
#[derive(Debug, Default)]
pub struct Demo {
    chat: Chat,
    clock: Clock,
}

impl Demo {
    /// The demo, with no rooms and the clock at zero.
    pub fn new() -> Demo {
        Demo::default()
    }
}

impl App for Demo {
    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/" | "/index.html" => Route::Page {
                content_type: "text/html; charset=utf-8",
                body: PAGE,
            },
            "/echo" => Route::WebSocket(ECHO),
            "/chat" => Route::WebSocket(CHAT),
            "/chat/events" => Route::EventStream(CHAT_EVENTS),
            "/clock" => Route::EventStream(CLOCK),
            _ => Route::NotFound,
        }
    }

    fn on_open(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId, tag: u32, request: &Request<'_>) {
        if tag == CHAT {
            self.chat.join(conn, request);
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, tag: u32, message: Message) {
        match tag {
            ECHO => Echo::reply(ctx, conn, &message),
            CHAT => self.chat.message(ctx, conn, message),
            _ => {}
        }
    }

    fn on_close(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId, tag: u32, reason: CloseReason) {
        if tag == CHAT {
            self.chat.leave(conn, &reason);
        }
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        match tag {
            CHAT_EVENTS => self.chat.subscribe(conn, request),
            CLOCK => self.clock.subscribe(ctx, conn, last_event_id),
            _ => {}
        }
    }

    fn on_unsubscribe(&mut self, _ctx: &mut Ctx<'_>, conn: ConnId, tag: u32, reason: CloseReason) {
        match tag {
            CHAT_EVENTS => self.chat.leave(conn, &reason),
            CLOCK => self.clock.unsubscribe(conn),
            _ => {}
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.clock.tick(ctx);
    }
}
