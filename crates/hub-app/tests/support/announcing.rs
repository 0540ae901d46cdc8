//! The hub wrapped to tell each subscriber which event loop serves it,
//! for the tests that need to know where a client landed.

use tether_hub::HubMessage;
use tether_hub_app::HubApp;
use tether_server::{App, ConnId, Ctx, Message, Request};

/// The hub, telling each subscriber first which loop serves it: a
/// WebSocket `{"loop":N}` (plain: shorter than anything worth
/// compressing), an event stream an event of type `loop`. Everything
/// else is the hub's own.
pub(crate) struct Announcing(pub(crate) HubApp);

impl App for Announcing {
    type Post = HubMessage;
    type State = <HubApp as App>::State;

    tether_server::forward_app!(self.0 =>
        route, on_message, on_close, event_stream_headers, on_unsubscribe, tick_interval, on_tick,
        on_request, before_body, refuse_before_body, body_too_large, on_request_timeout, on_request_abandoned,
        on_post, on_shutdown, on_request_shutdown, ready, readiness, on_proceed, keeps_session_state,
    );

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
}
