//! An application of one's own on tether-server: one chat room spread over
//! every event loop of the process.
//!
//! - `GET /` a short text page;
//! - `GET /ws` a WebSocket: each text message is said to the whole room;
//! - `GET /events` an event stream of what is said (`event: said`);
//! - `GET /count` how many messages this loop has relayed.
//!
//! A message arrives on one loop; the loops share nothing, so it is posted
//! to every loop (the application's own [`App::Post`] type, [`Said`]),
//! and each sends it to its own members, encoded once.
//!
//! ```text
//! cargo run -p tether-server --example room -- 127.0.0.1:8080 2
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use tether_server::{
    App, CloseReason, Cluster, Config, ConnId, Ctx, Encoded, Handshake, Message, MessageRef, Reply, Request,
    Response, Route,
};

/// What one loop posts to every loop: a message said in the room.
#[derive(Debug, Clone)]
pub(crate) struct Said(Arc<str>);

/// One loop's part of the room: its own members and listeners.
#[derive(Debug, Default)]
pub(crate) struct Room {
    members: HashSet<ConnId>,
    listeners: HashSet<ConnId>,
    relayed: u64,
}

impl App for Room {
    type Post = Said;
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/" => Route::Page {
                content_type: "text/plain; charset=utf-8",
                body: b"a room: WebSocket /ws, events /events, count /count\n",
            },
            "/ws" => Route::WebSocket(()),
            "/events" => Route::EventStream(()),
            "/count" => Route::Handler(()),
            _ => Route::NotFound,
        }
    }

    fn on_open(&mut self, _ctx: &mut Ctx<'_, Said>, conn: ConnId, _state: &mut (), _request: &Request<'_>) {
        self.members.insert(conn);
    }

    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, Said>,
        _conn: ConnId,
        _state: &mut (),
        message: MessageRef<'_>,
    ) {
        let Some(text) = message.as_text() else { return };
        let said = Said(Arc::from(text));
        let (_, loops) = ctx.loop_index();
        for to_loop in 0..loops {
            ctx.post(to_loop, said.clone());
        }
    }

    fn on_close(&mut self, _ctx: &mut Ctx<'_, Said>, conn: ConnId, _state: &mut (), _reason: CloseReason) {
        self.members.remove(&conn);
    }

    fn on_subscribe(
        &mut self,
        _ctx: &mut Ctx<'_, Said>,
        conn: ConnId,
        _state: &mut (),
        _request: &Request<'_>,
        _last_event_id: Option<&str>,
    ) {
        self.listeners.insert(conn);
    }

    fn on_unsubscribe(
        &mut self,
        _ctx: &mut Ctx<'_, Said>,
        conn: ConnId,
        _state: &mut (),
        _reason: CloseReason,
    ) {
        self.listeners.remove(&conn);
    }

    fn on_request(
        &mut self,
        _ctx: &mut Ctx<'_, Said>,
        _conn: ConnId,
        _state: &mut (),
        _request: &Request<'_>,
        _body: &[u8],
    ) -> Reply {
        Reply::Now(Response::json(200, format!("{{\"relayed\":{}}}", self.relayed)))
    }

    fn on_post(&mut self, ctx: &mut Ctx<'_, Said>, Said(text): Said) {
        self.relayed += 1;
        let frame = Encoded::ws(&Message::text(text.as_ref()));
        ctx.send_encoded(self.members.iter().copied(), &frame);
        let event = tether_sse::Event::new().event("said").data(&text);
        if let Ok(event) = Encoded::sse(&event) {
            ctx.send_encoded(self.listeners.iter().copied(), &event);
        }
    }
}

/// Serves the room on the address and loop count given on the command
/// line (defaults: 127.0.0.1:8080, one loop per core).
#[allow(dead_code)] // The test includes this file for `Room` alone.
fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("an address: {e}")))?;
    let loops = match args.next() {
        Some(n) => n.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("a loop count: {e}"))
        })?,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let mut cluster = Cluster::bind(Config::new(addr), Handshake::new(), loops, |_| Room::default())?;
    cluster.handle_signals()?;
    println!("room on http://{}/ ({loops} loops)", cluster.local_addr());
    cluster.run()
}
