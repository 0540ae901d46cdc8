//! The hub wrapped to tell each subscriber which event loop serves it,
//! for the tests that need to know where a client landed.

use std::time::Duration;

use tether_hub::HubMessage;
use tether_hub_app::HubApp;
use tether_server::{
    App, BeforeBody, CloseReason, ConnId, Ctx, Message, MessageRef, Reply, Request, Response, Route,
};

/// The hub, telling each subscriber first which loop serves it: a
/// WebSocket `{"loop":N}` (plain: shorter than anything worth
/// compressing), an event stream an event of type `loop`. Everything
/// else is the hub's own.
pub(crate) struct Announcing(pub(crate) HubApp);

impl App for Announcing {
    type Post = HubMessage;
    type State = <HubApp as App>::State;

    fn route(&mut self, request: &Request<'_>) -> Route<Self::State> {
        self.0.route(request)
    }

    fn on_open(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
        request: &Request<'_>,
    ) {
        let index = ctx.loop_index().0;
        ctx.send(conn, &Message::text(format!("{{\"loop\":{index}}}")));
        self.0.on_open(ctx, conn, state, request);
    }

    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
        message: MessageRef<'_>,
    ) {
        self.0.on_message(ctx, conn, state, message);
    }

    fn on_close(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
        reason: CloseReason,
    ) {
        self.0.on_close(ctx, conn, state, reason);
    }

    fn event_stream_headers(
        &mut self,
        state: &mut Self::State,
        request: &Request<'_>,
    ) -> Vec<(String, String)> {
        self.0.event_stream_headers(state, request)
    }

    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        let index = ctx.loop_index().0.to_string();
        let _ = ctx.send_event(conn, &tether_sse::Event::new().event("loop").data(&index));
        self.0.on_subscribe(ctx, conn, state, request, last_event_id);
    }

    fn on_unsubscribe(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
        reason: CloseReason,
    ) {
        self.0.on_unsubscribe(ctx, conn, state, reason);
    }

    fn tick_interval(&self) -> Option<Duration> {
        self.0.tick_interval()
    }

    fn on_tick(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        self.0.on_tick(ctx);
    }

    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        self.0.on_request(ctx, conn, state, request, body)
    }

    fn before_body(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        request: &Request<'_>,
    ) -> BeforeBody<Self::State> {
        self.0.before_body(ctx, request)
    }

    fn body_too_large(&mut self, request: &Request<'_>, limit: usize) -> Option<Response> {
        self.0.body_too_large(request, limit)
    }

    fn on_request_timeout(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
    ) -> Response {
        self.0.on_request_timeout(ctx, conn, state)
    }

    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, HubMessage>, conn: ConnId, state: &mut Self::State) {
        self.0.on_request_abandoned(ctx, conn, state);
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, HubMessage>, message: HubMessage) {
        self.0.on_post(ctx, message);
    }

    fn on_shutdown(&mut self, ctx: &mut Ctx<'_, HubMessage>) {
        self.0.on_shutdown(ctx);
    }

    fn on_request_shutdown(
        &mut self,
        ctx: &mut Ctx<'_, HubMessage>,
        conn: ConnId,
        state: &mut Self::State,
    ) -> Option<Response> {
        self.0.on_request_shutdown(ctx, conn, state)
    }
}
