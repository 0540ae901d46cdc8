//! The interface an embedder implements, and the context through which it
//! acts on connections.

use std::time::Duration;

use tether_ws::MessageRef;

mod ctx;
mod encoded;
mod forward;
mod readiness;
pub(crate) mod sse_coding;

pub use crate::request::{BeforeBody, CloseReason, ConnId, Reply, Request, Response, Route};
pub use ctx::Ctx;
pub(crate) use ctx::{Action, Actions, Current, InPlace, Queued};
pub use encoded::Encoded;
pub use readiness::Readiness;
pub(crate) use readiness::shared_asked;

/// A tether application: decides routes and reacts to connections.
///
/// All callbacks run on the event loop's thread and must not block. They
/// act through the [`Ctx`] they are given. A server runs one application
/// per event loop; the loops of a [`crate::Cluster`] share nothing and
/// talk by posting [`App::Post`] messages to each other.
///
/// # A request's state
///
/// [`App::route`] sees a request's head first; for a
/// [`Route::WebSocket`], [`Route::EventStream`] or [`Route::Handler`] it
/// returns the request's [`App::State`], its own value of what it decided
/// (a credential checked, a parsed topic). The server keeps that value
/// for the request (one per HTTP/1.1 request, per HTTP/2 and HTTP/3
/// stream) and hands it by `&mut` to every later callback of the same
/// request, never to another's:
///
/// - a handler: [`App::on_request`] (again after [`Ctx::proceed`] with a
///   handler, [`App::on_proceed`] first), then, if it answered later or held the request,
///   [`App::on_request_timeout`], [`App::on_request_shutdown`] or
///   [`App::on_request_abandoned`];
/// - a WebSocket: [`App::on_open`], [`App::on_message`], [`App::on_close`];
/// - an event stream: [`App::event_stream_headers`], [`App::on_subscribe`],
///   [`App::on_unsubscribe`].
///
/// A held handler that proceeds ([`Ctx::proceed`]) as a WebSocket or an
/// event stream keeps its state, shown to [`App::on_proceed`] first. The server drops a state exactly once,
/// when its request is over: after the answer of a handler is given
/// (now, by [`Ctx::respond`], by a timeout or at a shutdown), after
/// [`App::on_close`], [`App::on_unsubscribe`] or
/// [`App::on_request_abandoned`], when the request turns out not to open
/// what its route said (a `HEAD` of an event stream, a refused WebSocket
/// handshake, a route refused for its method, or while sessions close),
/// or with the loop; or earlier, once the session has opened, if the
/// application lets it go ([`App::keeps_session_state`]: a zero-sized
/// state, and any the application says it keeps nothing in). A route
/// that is a page or not found has no state;
/// [`App::refuse_before_body`] and [`App::body_too_large`] come before
/// the route and have none. [`App::before_body`] may make a handler's
/// state from the head of a request whose body is still to come
/// ([`BeforeBody::Handler`]): the server keeps it, does not call
/// [`App::route`] for that request, and hands it to [`App::on_request`]
/// with the body, so that what the head told is worked out once.
///
/// A greeter: a page, a WebSocket that answers every message with the
/// greeting its request asked for, and a handler that counts the requests
/// this loop has answered.
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use std::thread;
///
/// use tether_server::{
///     App, Config, ConnId, Ctx, Handshake, Message, MessageRef, Reply, Request, Response, Route, Server,
/// };
///
/// // What the server keeps for one request: decided in `route`, handed
/// // to each later callback of the same request.
/// #[derive(Default)]
/// enum Visit {
///     // A WebSocket greeting with the name of its `?as=` parameter.
///     Greet { greeting: String, greeted: u32 },
///     #[default]
///     Count,
/// }
///
/// #[derive(Default)]
/// struct Greeter {
///     answered: u64,
/// }
///
/// impl App for Greeter {
///     // The loops of this application post nothing to each other.
///     type Post = ();
///     type State = Visit;
///
///     fn route(&mut self, request: &Request<'_>) -> Route<Visit> {
///         match request.path() {
///             "/" => Route::Page { content_type: "text/plain", body: b"hello\n" },
///             "/greet" => {
///                 let greeting = request.query_param("as").unwrap_or_else(|| "hello".into());
///                 Route::WebSocket(Visit::Greet { greeting, greeted: 0 })
///             }
///             "/count" => Route::Handler(Visit::Count),
///             _ => Route::NotFound,
///         }
///     }
///
///     fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, visit: &mut Visit, message: MessageRef<'_>) {
///         if let (Visit::Greet { greeting, greeted }, Some(name)) = (visit, message.as_text()) {
///             *greeted += 1;
///             ctx.send(conn, &Message::text(format!("{greeting}, {name} (#{greeted})")));
///         }
///     }
///
///     fn on_request(
///         &mut self,
///         _ctx: &mut Ctx<'_>,
///         _conn: ConnId,
///         _visit: &mut Visit,
///         _request: &Request<'_>,
///         _body: &[u8],
///     ) -> Reply {
///         self.answered += 1;
///         Reply::Now(Response::text(200, format!("{}\n", self.answered)))
///     }
/// }
///
/// let server = Server::bind(Config::new("127.0.0.1:0".parse()?), Handshake::new(), Greeter::default())?;
/// let (addr, handle) = (server.local_addr(), server.handle());
/// let running = thread::spawn(move || server.run());
///
/// let mut client = TcpStream::connect(addr)?;
/// client.write_all(b"GET /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
/// let mut answer = String::new();
/// client.read_to_string(&mut answer)?;
/// assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("\r\n\r\n1\n"));
///
/// handle.shutdown();
/// running.join().expect("the loop ends")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait App {
    /// What the loops of a server post to each other ([`Ctx::post`],
    /// [`App::on_post`], [`crate::Poster`]): the application's own type,
    /// `()` if it posts nothing.
    type Post: Send + 'static;

    /// What the application decided about one request, kept by the server
    /// for it (see "A request's state" above): `()` if it keeps nothing.
    /// Its default value is what the callbacks of a session whose state
    /// was let go receive ([`App::keeps_session_state`]).
    type State: Default + Send + 'static;

    /// Chooses what a request path is, and for a WebSocket, an event
    /// stream or a handler, the request's state. Called once per request.
    fn route(&mut self, request: &Request<'_>) -> Route<Self::State>;

    /// A WebSocket session opened.
    fn on_open(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        conn: ConnId,
        state: &mut Self::State,
        request: &Request<'_>,
    ) {
        let _ = (ctx, conn, state, request);
    }

    /// A complete message arrived. The default ignores it.
    ///
    /// The message is borrowed: a message that arrived whole in one read
    /// is lent straight from the loop's read buffer, unmasked where it lay
    /// (no copy); one that came in fragments or pieces, or compressed, from
    /// the buffer it was assembled in. Keep it with
    /// [`MessageRef::to_owned`](tether_ws::MessageRef::to_owned); send it
    /// back or on as it is with [`Ctx::send`].
    fn on_message(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        conn: ConnId,
        state: &mut Self::State,
        message: MessageRef<'_>,
    ) {
        let _ = (ctx, conn, state, message);
    }

    /// A WebSocket session ended. The connection can no longer be sent to.
    /// The last callback of the session: its state is dropped after it.
    fn on_close(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        conn: ConnId,
        state: &mut Self::State,
        reason: CloseReason,
    ) {
        let _ = (ctx, conn, state, reason);
    }

    /// Header fields for the head of an event stream about to start, or
    /// of the answer to its `HEAD` (CORS fields,
    /// say). The server writes `Content-Type`, `Cache-Control`,
    /// `X-Accel-Buffering` and `Connection` itself; a field whose name is
    /// not a token or whose value holds a control character is left out.
    /// The default adds none.
    fn event_stream_headers(
        &mut self,
        state: &mut Self::State,
        request: &Request<'_>,
    ) -> Vec<(String, String)> {
        let _ = (state, request);
        Vec::new()
    }

    /// Whether an event stream about to start may be compressed, when
    /// the server compresses event streams (`Config::sse_compression`)
    /// and its client accepts it. The default lets every stream be.
    fn compress_event_stream(&mut self, state: &mut Self::State, request: &Request<'_>) -> bool {
        let _ = (state, request);
        true
    }

    /// An event stream started. `last_event_id` is the `Last-Event-ID`
    /// header, or else the `lastEventId` query parameter (for clients that
    /// cannot set headers), when non-empty. The `retry` hint has been
    /// sent; events sent now come before any live ones.
    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        conn: ConnId,
        state: &mut Self::State,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        let _ = (ctx, conn, state, request, last_event_id);
    }

    /// An event stream ended. Its last callback: its state is dropped
    /// after it.
    fn on_unsubscribe(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        conn: ConnId,
        state: &mut Self::State,
        reason: CloseReason,
    ) {
        let _ = (ctx, conn, state, reason);
    }

    /// Who the request's credential says it is, as far as `state` knows
    /// (a token's subject, say), for the access log: asked only with an
    /// access log, once per request it reports, while the state is still
    /// held (before an answer given at once releases it, and before
    /// [`App::on_open`] or [`App::on_subscribe`]). The default: nobody.
    fn subject<'s>(&self, state: &'s Self::State) -> Option<&'s str> {
        let _ = state;
        None
    }

    /// Whether the server keeps `state` for the life of the WebSocket or
    /// event stream its request opened, asked once [`App::on_open`] or
    /// [`App::on_subscribe`] has returned. If not, the state is dropped
    /// then, the server keeps nothing for the session, and each of the
    /// session's later callbacks receives a fresh `State::default()`: an
    /// application that keeps what its sessions need in tables of its own
    /// (by [`ConnId`]) saves a slot of the server's per open session. By
    /// default a state is kept unless it is zero-sized (there is nothing
    /// in it to keep).
    fn keeps_session_state(&self, state: &Self::State) -> bool {
        let _ = state;
        size_of::<Self::State>() != 0
    }

    /// Whether the application can take work now, as one check: `false`
    /// makes the server answer `GET /readyz` with `503` and
    /// `Retry-After`; `/healthz` is not asked. The default is always
    /// ready. Asked only by the default [`App::readiness`].
    fn ready(&self) -> bool {
        true
    }

    /// The application's checks for `GET /readyz`, reported into
    /// `report` beside the server's own (`draining`): each named, a
    /// condition of this node alone ([`Readiness::check`], which takes it
    /// out of rotation when it fails) or one every node shares
    /// ([`Readiness::shared`], reported, counted only when the probe asks).
    /// The default reports [`App::ready`] as the check `app`. Called on
    /// the loop that answers the probe: it must not block.
    fn readiness(&self, report: &mut Readiness) {
        let ready = self.ready();
        report.check("app", ready, if ready { "ready" } else { "not ready" });
    }

    /// How often [`App::on_tick`] runs; `None` (the default) for never.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// A periodic call, for applications that push on their own (a clock).
    fn on_tick(&mut self, ctx: &mut Ctx<'_, Self::Post>) {
        let _ = ctx;
    }

    /// A request on a [`Route::Handler`] route, with its body. The default
    /// answers 404.
    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        conn: ConnId,
        state: &mut Self::State,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        let _ = (ctx, conn, state, request, body);
        Reply::Now(Response::text(404, "404 Not Found\n"))
    }

    /// The head of a request has arrived and its body has not yet: `Some`
    /// answers it now, without reading the body, and closes the
    /// connection (a client that sent `Expect: 100-continue` never sends
    /// the body at all). For requests that will be refused whatever their
    /// body (a publish without the right token, say): a large body is not
    /// read in vain. Called at most once per request, only while its body
    /// is incomplete; `None` (the default) goes on as usual, and
    /// [`App::route`] then sees the complete request.
    fn refuse_before_body(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        request: &Request<'_>,
    ) -> Option<Response> {
        let _ = (ctx, request);
        None
    }

    /// The head of a request has arrived and its body has not: what the
    /// application makes of the head alone. [`BeforeBody::Refuse`]
    /// answers now, as [`App::refuse_before_body`] does;
    /// [`BeforeBody::Handler`] decides the request's route and state now,
    /// kept by the server for [`App::on_request`] ([`App::route`] is then
    /// not called for it); [`BeforeBody::Read`] reads the body and routes
    /// the request when it is whole. Called at most once per request, only
    /// while its body is incomplete, and before the server's own checks
    /// of a route (its method among them), which a kept handler passes
    /// through as any other. Not called for the paths the server answers
    /// itself (`/healthz`, `/readyz`), which [`App::route`] never sees
    /// either. The default asks
    /// [`App::refuse_before_body`], and reads the body unless it refuses.
    fn before_body(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        request: &Request<'_>,
    ) -> BeforeBody<Self::State> {
        match self.refuse_before_body(ctx, request) {
            Some(refusal) => BeforeBody::Refuse(refusal),
            None => BeforeBody::Read,
        }
    }

    /// The answer to a request whose body is larger than the largest
    /// body (`limit`, [`crate::Config::max_request_body`]), in the
    /// application's own shape (an API's JSON error, say); `None` (the
    /// default) is the server's plain `413`. Its status is 413 whatever
    /// it says; the body is not read, and an HTTP/1.1 connection closes
    /// after it. Called where the request's head is known: a
    /// `Content-Length` over the limit, or a body that grows past it.
    fn body_too_large(&mut self, request: &Request<'_>, limit: usize) -> Option<Response> {
        let _ = (request, limit);
        None
    }

    /// A request answered with [`Reply::Later`] was not answered in time.
    /// The default answers 204 No Content. The request's last callback:
    /// its state is dropped after it.
    fn on_request_timeout(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        conn: ConnId,
        state: &mut Self::State,
    ) -> Response {
        let _ = (ctx, conn, state);
        Response::empty(204)
    }

    /// The client of a request answered with [`Reply::Later`] went away
    /// before the answer (forget its id). The request's last callback: its
    /// state is dropped after it.
    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, Self::Post>, conn: ConnId, state: &mut Self::State) {
        let _ = (ctx, conn, state);
    }

    /// A request held with [`Reply::Hold`] goes on as `route`
    /// ([`Ctx::proceed`]), with the state it was held with: the place to
    /// make that state what the route needs (the route the application
    /// chose, say), before the route's callbacks get it. Not called for a
    /// page or a 404, which end the request. The default keeps the state
    /// as it is.
    fn on_proceed(&mut self, conn: ConnId, state: &mut Self::State, route: &Route) {
        let _ = (conn, state, route);
    }

    /// A message posted to this loop with [`Ctx::post`] by another loop of
    /// the same server (or by a [`crate::Handle`] from another thread).
    fn on_post(&mut self, ctx: &mut Ctx<'_, Self::Post>, message: Self::Post) {
        let _ = (ctx, message);
    }

    /// The server has begun a graceful shutdown (SIGTERM, SIGINT,
    /// [`crate::Handle::shutdown`]); called once on each loop, first
    /// thing. From now on the application should refuse work whose promise
    /// it could not keep (the hub answers publishes `503` with
    /// `Retry-After`), because the loop's sessions are about to close.
    ///
    /// The shutdown runs in two steps, so that what was promised before
    /// is kept: after this callback the loop tells every loop it has
    /// drained, and goes on serving (posts are delivered, deferred
    /// requests answered, sessions sent to) until it has heard the same
    /// from every loop. Only then are WebSockets closed with 1001, event
    /// streams ended and waiting requests asked for their answer
    /// ([`App::on_request_shutdown`]). A message one loop posted to another
    /// before its own `on_shutdown` ran therefore reaches the other's
    /// [`App::on_post`] while its sessions are still open.
    fn on_shutdown(&mut self, ctx: &mut Ctx<'_, Self::Post>) {
        let _ = ctx;
    }

    /// A request answered with [`Reply::Later`] is still waiting when the
    /// shutdown closes the loop's sessions (see [`App::on_shutdown`]).
    /// `Some(response)` answers it now (a long poll's events so far, or
    /// an empty answer with `Retry-After`); `None` leaves it waiting for
    /// [`Ctx::respond`] or its own timeout, within the shutdown timeout.
    /// The connection closes after the answer. The default answers `503`
    /// with `Retry-After: 1`.
    fn on_request_shutdown(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        conn: ConnId,
        state: &mut Self::State,
    ) -> Option<Response> {
        let _ = (ctx, conn, state);
        Some(Response::text(503, "the server is shutting down\n").header("Retry-After", "1"))
    }
}
