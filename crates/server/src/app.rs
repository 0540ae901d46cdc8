//! The interface an embedder implements, and the context through which it
//! acts on connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_ws::{CloseCode, Message, MessageRef};

use crate::loops::{Peers, Stats};
use crate::output::{OutQueue, Pool};

/// A connection's identity for as long as it lives. Ids are never reused
/// for a later connection, so a stale id simply addresses nobody.
///
/// Over HTTP/2 each stream the application sees (a request, an event
/// stream, a WebSocket) has an id of its own: the connection's, with the
/// stream's identifier beside it (0 for HTTP/1.1 and for the connection
/// itself). Every [`Ctx`] method routes to that stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
    stream: u32,
}

impl ConnId {
    /// The id of the connection in slab slot `index`. Every connection
    /// holds a descriptor, so the index is far below `u32::MAX`; one that
    /// were not would become an id that addresses nobody.
    pub(crate) fn new(index: usize, generation: u32) -> ConnId {
        ConnId {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            generation,
            stream: 0,
        }
    }

    /// The id of HTTP/2 stream `stream` of this connection.
    pub(crate) fn with_stream(self, stream: u32) -> ConnId {
        ConnId { stream, ..self }
    }

    /// The HTTP/2 stream this id names, 0 for a whole connection.
    pub(crate) fn stream(self) -> u32 {
        self.stream
    }

    /// The connection this id belongs to (stream 0).
    pub(crate) fn connection(self) -> ConnId {
        self.with_stream(0)
    }

    pub(crate) fn index(self) -> usize {
        self.index as usize
    }

    pub(crate) fn generation(self) -> u32 {
        self.generation
    }
}

/// An HTTP request head, as the application sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a [httparse::Header<'a>],
    pub(crate) admin: bool,
    pub(crate) secure: bool,
}

impl<'a> Request<'a> {
    /// The method (`GET`, `POST`, ...).
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The path, without the query.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The query string after `?`, if any (not decoded).
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// The first value of a query parameter, percent-decoded.
    ///
    /// ```
    /// # use tether_server::Request;
    /// # fn check(req: Request<'_>) {
    /// let room = req.query_param("room").unwrap_or_else(|| "lobby".into());
    /// # }
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::http::query_param(self.query?, name)
    }

    /// Whether the request came through the admin listener
    /// ([`crate::Config::admin_addr`]).
    pub fn via_admin_listener(&self) -> bool {
        self.admin
    }

    /// Whether the request came over TLS (its scheme is `https`): what the
    /// connection is, whatever the request's headers say.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The first header with this name (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    }
}

/// What a path is, decided by [`App::route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A WebSocket endpoint (GET with an upgrade; a GET without one gets
    /// 426, any other method 405 with `Allow: GET`, `HEAD` included).
    /// The tag is the application's own and comes back in every callback
    /// for connections of this route.
    WebSocket(u32),
    /// A Server-Sent Events stream (GET). `HEAD` gets the stream's head
    /// alone, and the connection goes on; other methods get 405.
    EventStream(u32),
    /// A fixed page (GET or HEAD; other methods get 405).
    Page {
        /// The `Content-Type` header.
        content_type: &'static str,
        /// The body.
        body: &'static [u8],
    },
    /// A request the application answers itself, in
    /// [`App::on_request`], with any method; its body (announced with
    /// `Content-Length`, up to [`crate::Config::max_request_body`]) is read
    /// first. The answer to `HEAD`, now or later, goes out as its head
    /// alone, with the `Content-Length` of its body; a `HEAD` answered
    /// with [`Reply::Later`] waits like its GET would, so an application
    /// that holds GETs (a long poll) answers their `HEAD` at once.
    Handler(u32),
    /// Nothing here: 404.
    NotFound,
}

/// An HTTP response built by the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`, if there is a body.
    pub content_type: String,
    /// Further headers (not `Content-Length` or `Connection`, which the
    /// server writes).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of the given type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A plain-text response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "text/plain; charset=utf-8", body.into().into_bytes())
    }

    /// A JSON response (the body must already be JSON).
    pub fn json(status: u16, body: impl Into<String>) -> Response {
        Response::new(status, "application/json", body.into().into_bytes())
    }

    /// An empty response.
    pub fn empty(status: u16) -> Response {
        Response::new(status, "", Vec::new())
    }

    /// The same response with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The application's answer to a [`Route::Handler`] request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// This response, now.
    Now(Response),
    /// Later: the application keeps the [`ConnId`] and answers with
    /// [`Ctx::respond`] (a long poll, say). If it has not answered within
    /// the duration, [`App::on_request_timeout`] is asked for the response.
    Later(Duration),
}

/// Why a WebSocket session or event stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The WebSocket close handshake ran; the peer's code.
    Closed(CloseCode),
    /// The peer broke the protocol or a limit; the code we sent.
    Failed(CloseCode),
    /// The transport ended without a close handshake (code 1006 in
    /// browser terms), timed out, or errored.
    Dropped,
    /// Cut loose for not reading its output fast enough.
    SlowConsumer,
    /// The server is shutting down.
    Shutdown,
    /// The application itself ended the event stream.
    Ended,
}

/// A tether application: decides routes and reacts to connections.
///
/// All callbacks run on the event loop's thread and must not block. They
/// act through the [`Ctx`] they are given. A server runs one application
/// per event loop; the loops of a [`crate::Cluster`] share nothing and
/// talk by posting [`App::Post`] messages to each other.
///
/// A greeter: a page, a WebSocket that answers every message, and a
/// handler that counts the requests this loop has answered.
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
/// const GREET: u32 = 1;
/// const COUNT: u32 = 2;
///
/// #[derive(Default)]
/// struct Greeter {
///     answered: u64,
/// }
///
/// impl App for Greeter {
///     // The loops of this application post nothing to each other.
///     type Post = ();
///
///     fn route(&mut self, request: &Request<'_>) -> Route {
///         match request.path() {
///             "/" => Route::Page { content_type: "text/plain", body: b"hello\n" },
///             "/greet" => Route::WebSocket(GREET),
///             "/count" => Route::Handler(COUNT),
///             _ => Route::NotFound,
///         }
///     }
///
///     fn on_message(&mut self, ctx: &mut Ctx<'_>, conn: ConnId, _tag: u32, message: MessageRef<'_>) {
///         if let Some(name) = message.as_text() {
///             ctx.send(conn, &Message::text(format!("hello, {name}")));
///         }
///     }
///
///     fn on_request(
///         &mut self,
///         _ctx: &mut Ctx<'_>,
///         _conn: ConnId,
///         _tag: u32,
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

    /// Chooses what a request path is. Called once per request.
    fn route(&mut self, request: &Request<'_>) -> Route;

    /// A WebSocket session opened on a route tagged `tag`.
    fn on_open(&mut self, ctx: &mut Ctx<'_, Self::Post>, conn: ConnId, tag: u32, request: &Request<'_>) {
        let _ = (ctx, conn, tag, request);
    }

    /// A complete message arrived. The default ignores it.
    ///
    /// The message is borrowed: a message that arrived whole in one read
    /// is lent straight from the loop's read buffer, unmasked where it lay
    /// (no copy); one that came in fragments or pieces, or compressed, from
    /// the buffer it was assembled in. Keep it with
    /// [`MessageRef::to_owned`](tether_ws::MessageRef::to_owned); send it
    /// back or on as it is with [`Ctx::send`].
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self::Post>, conn: ConnId, tag: u32, message: MessageRef<'_>) {
        let _ = (ctx, conn, tag, message);
    }

    /// A WebSocket session ended. The connection can no longer be sent to.
    fn on_close(&mut self, ctx: &mut Ctx<'_, Self::Post>, conn: ConnId, tag: u32, reason: CloseReason) {
        let _ = (ctx, conn, tag, reason);
    }

    /// Header fields for the head of an event stream about to start on a
    /// route tagged `tag`, or of the answer to its `HEAD` (CORS fields,
    /// say). The server writes `Content-Type`, `Cache-Control`,
    /// `X-Accel-Buffering` and `Connection` itself; a field whose name is
    /// not a token or whose value holds a control character is left out.
    /// The default adds none.
    fn event_stream_headers(&mut self, tag: u32, request: &Request<'_>) -> Vec<(String, String)> {
        let _ = (tag, request);
        Vec::new()
    }

    /// An event stream started. `last_event_id` is the `Last-Event-ID`
    /// header, or else the `lastEventId` query parameter (for clients that
    /// cannot set headers), when non-empty. The `retry` hint has been
    /// sent; events sent now come before any live ones.
    fn on_subscribe(
        &mut self,
        ctx: &mut Ctx<'_, Self::Post>,
        conn: ConnId,
        tag: u32,
        request: &Request<'_>,
        last_event_id: Option<&str>,
    ) {
        let _ = (ctx, conn, tag, request, last_event_id);
    }

    /// An event stream ended.
    fn on_unsubscribe(&mut self, ctx: &mut Ctx<'_, Self::Post>, conn: ConnId, tag: u32, reason: CloseReason) {
        let _ = (ctx, conn, tag, reason);
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
        tag: u32,
        request: &Request<'_>,
        body: &[u8],
    ) -> Reply {
        let _ = (ctx, conn, tag, request, body);
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

    /// A request answered with [`Reply::Later`] was not answered in time.
    /// The default answers 204 No Content.
    fn on_request_timeout(&mut self, ctx: &mut Ctx<'_, Self::Post>, conn: ConnId, tag: u32) -> Response {
        let _ = (ctx, conn, tag);
        Response::empty(204)
    }

    /// The client of a request answered with [`Reply::Later`] went away
    /// before the answer (forget its id).
    fn on_request_abandoned(&mut self, ctx: &mut Ctx<'_, Self::Post>, conn: ConnId, tag: u32) {
        let _ = (ctx, conn, tag);
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
        tag: u32,
    ) -> Option<Response> {
        let _ = (ctx, conn, tag);
        Some(Response::text(503, "the server is shutting down\n").header("Retry-After", "1"))
    }
}

/// An encoded WebSocket frame or SSE event, shared by every connection it
/// is sent to: encoded once, never copied per subscriber.
///
/// # Compressed fan-out
///
/// A WebSocket frame may carry a compressed twin (permessage-deflate, RFC
/// 7692): the same message compressed once on its own, with RSV1 set.
/// Each WebSocket session it is sent to gets the twin if its handshake
/// agreed on permessage-deflate with `server_no_context_takeover` (what
/// the server's `DeflateConfig` answers by default) and a
/// `server_max_window_bits` large enough for the message
/// (`tether_deflate::window_bits_for`, 15 takes any); every other session
/// gets the plain frame, as does a session that negotiated context
/// takeover (its peer's window must follow the server's own compressor,
/// which a frame compressed elsewhere would break). Nothing is compressed
/// per session, and neither frame is copied. Event streams always get the
/// plain bytes.
///
/// [`Encoded::ws_deflated`] makes both at once (feature `deflate`);
/// [`Encoded::with_deflated`] adds a twin made elsewhere, and
/// [`Encoded::with_deflated_lazy`] one made only if some session needs it
/// (the hub compresses each event this way).
///
/// ```
/// # #[cfg(feature = "deflate")] {
/// use tether_server::{ConnId, Ctx, Encoded, Message};
///
/// /// Sends one quote to every subscriber: compressed once for those that
/// /// can take it, plain for the others.
/// fn broadcast(ctx: &mut Ctx<'_>, subscribers: &[ConnId], quote: &str) {
///     let encoded = Encoded::ws_deflated(&Message::text(quote));
///     ctx.send_encoded(subscribers.iter().copied(), &encoded);
/// }
///
/// let quote = "{\"symbol\":\"ACME\",\"bid\":101.25,\"ask\":101.5}".repeat(10);
/// let encoded = Encoded::ws_deflated(&Message::text(quote.as_str()));
/// assert_eq!(encoded.as_bytes()[0], 0x81); // the plain frame
/// assert_eq!(encoded.deflated().expect("it shrinks")[0], 0xC1); // FIN, RSV1, text
/// # let _ = broadcast;
/// # }
/// ```
#[derive(Clone)]
pub struct Encoded {
    pub(crate) bytes: Arc<[u8]>,
    deflated: Option<Deflated>,
}

/// The compressed twin of a plain frame.
#[derive(Clone)]
struct Deflated {
    /// The smallest `server_max_window_bits` it is valid under.
    window_bits: u8,
    frame: DeflatedFrame,
}

#[derive(Clone)]
enum DeflatedFrame {
    Ready(Arc<[u8]>),
    Lazy(Arc<LazyFrame>),
}

/// A twin made on first need, at most once per [`Encoded`] (and its
/// clones).
struct LazyFrame {
    frame: std::sync::OnceLock<Option<Arc<[u8]>>>,
    make: Box<dyn Fn() -> Option<Arc<[u8]>> + Send + Sync>,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let deflated = self.deflated.as_ref().map(|d| match &d.frame {
            DeflatedFrame::Ready(frame) => format!("{} bytes", frame.len()),
            DeflatedFrame::Lazy(lazy) => match lazy.frame.get() {
                None => "not yet made".to_owned(),
                Some(None) => "none (does not shrink)".to_owned(),
                Some(Some(frame)) => format!("{} bytes", frame.len()),
            },
        });
        f.debug_struct("Encoded")
            .field("len", &self.bytes.len())
            .field("deflated", &deflated)
            .finish()
    }
}

/// The window a frame's payload needs when compressed on its own; the
/// frame's whole length stands for its payload's (a bound, never less).
fn window_bits_for(frame_len: usize) -> u8 {
    (8u8..15).find(|&bits| frame_len <= 1usize << bits).unwrap_or(15)
}

impl Encoded {
    /// Encodes a message as one unmasked WebSocket frame (server to
    /// client).
    pub fn ws<'m>(message: impl Into<MessageRef<'m>>) -> Encoded {
        let message = message.into();
        let opcode = if message.is_text() {
            tether_frame::OpCode::Text
        } else {
            tether_frame::OpCode::Binary
        };
        let payload = message.as_bytes();
        let header = tether_frame::FrameHeader::new(true, opcode, payload.len() as u64).to_bytes();
        let mut bytes = Vec::with_capacity(header.len() + payload.len());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(payload);
        Encoded::from(Arc::<[u8]>::from(bytes))
    }

    /// Encodes a message as [`Encoded::ws`] does, and compresses it once
    /// as its twin for sessions that can take it (see **Compressed
    /// fan-out** above; none if it does not shrink). The compression is
    /// done now, whoever it is sent to: to compress only when needed, use
    /// [`Encoded::with_deflated_lazy`].
    #[cfg(feature = "deflate")]
    pub fn ws_deflated<'m>(message: impl Into<MessageRef<'m>>) -> Encoded {
        let message = message.into();
        let opcode = if message.is_text() {
            tether_frame::OpCode::Text
        } else {
            tether_frame::OpCode::Binary
        };
        let deflated = tether_deflate::shared_frame(opcode, message.as_bytes());
        let encoded = Encoded::ws(message);
        match deflated {
            Some(frame) => encoded.with_deflated(frame.into()),
            None => encoded,
        }
    }

    /// The same frame with a compressed twin made elsewhere: one whole,
    /// final, unmasked frame with RSV1 set whose payload is this frame's
    /// payload compressed on its own, as RFC 7692 section 7.2.1 says (a
    /// fresh LZ77 window, the sync flush's `00 00 ff ff` removed), such as
    /// `tether_deflate::shared_frame` makes. It is sent as it is, unchecked.
    pub fn with_deflated(mut self, frame: Arc<[u8]>) -> Encoded {
        self.deflated = Some(Deflated {
            window_bits: window_bits_for(self.bytes.len()),
            frame: DeflatedFrame::Ready(frame),
        });
        self
    }

    /// The same frame with a compressed twin (as [`Encoded::with_deflated`]
    /// takes) that `make` returns the first time a session can take it:
    /// called at most once for this value and its clones, never if no
    /// such session is sent to. `None` from it sends the plain frame
    /// to all.
    pub fn with_deflated_lazy(
        mut self,
        make: impl Fn() -> Option<Arc<[u8]>> + Send + Sync + 'static,
    ) -> Encoded {
        self.deflated = Some(Deflated {
            window_bits: window_bits_for(self.bytes.len()),
            frame: DeflatedFrame::Lazy(Arc::new(LazyFrame {
                frame: std::sync::OnceLock::new(),
                make: Box::new(make),
            })),
        });
        self
    }

    /// Encodes an SSE event.
    pub fn sse(event: &tether_sse::Event<'_>) -> Result<Encoded, tether_sse::Error> {
        let mut bytes = Vec::new();
        event.encode(&mut bytes)?;
        Ok(Encoded::from(Arc::<[u8]>::from(bytes)))
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The compressed twin, if there is one (making it now if it is made
    /// lazily).
    pub fn deflated(&self) -> Option<&Arc<[u8]>> {
        match &self.deflated.as_ref()?.frame {
            DeflatedFrame::Ready(frame) => Some(frame),
            DeflatedFrame::Lazy(lazy) => lazy.frame.get_or_init(|| (lazy.make)()).as_ref(),
        }
    }

    /// The bytes for a WebSocket session that takes compressed twins made
    /// with windows up to `window_bits` (0: none), and whether they are
    /// the twin.
    pub(crate) fn for_session(&self, window_bits: u8) -> (&Arc<[u8]>, bool) {
        if self
            .deflated
            .as_ref()
            .is_some_and(|d| window_bits >= d.window_bits)
            && let Some(frame) = self.deflated()
        {
            return (frame, true);
        }
        (&self.bytes, false)
    }
}

/// Bytes encoded elsewhere (a hub event's frame, say), shared as they
/// are: no copy. They must be what the receiving connections expect: whole
/// server-to-client WebSocket frames, or whole SSE events.
///
/// ```
/// use std::sync::Arc;
/// use tether_server::Encoded;
///
/// let frame: Arc<[u8]> = Arc::from(&[0x81, 0x02, b'h', b'i'][..]);
/// let encoded = Encoded::from(frame.clone());
/// assert!(std::ptr::eq(encoded.as_bytes(), &frame[..]));
/// ```
impl From<Arc<[u8]>> for Encoded {
    fn from(bytes: Arc<[u8]>) -> Encoded {
        Encoded {
            bytes,
            deflated: None,
        }
    }
}

/// Something to do to a connection other than the one being handled,
/// applied by the loop as soon as the callback returns.
#[derive(Debug)]
pub(crate) enum Action {
    /// Encoded bytes for a WebSocket session or an event stream.
    Send(ConnId, Encoded),
    /// Start the close handshake.
    Close(ConnId, CloseCode, String),
    /// End an event stream.
    EndStream(ConnId),
    /// Answer a deferred request.
    Respond(ConnId, Response),
}

/// The connection whose event is being handled, written to directly.
pub(crate) struct Current<'a> {
    pub(crate) id: ConnId,
    pub(crate) ws: Option<&'a mut tether_ws::Connection>,
    /// What [`Encoded::for_session`] is given for this session.
    pub(crate) deflate_window: u8,
    pub(crate) out: &'a mut OutQueue,
    pub(crate) closing: &'a mut bool,
    /// The message being handled, when it can be echoed where it lies.
    pub(crate) in_place: InPlace<'a>,
}

/// A received message that lies whole, unmasked, at the end of the bytes
/// just read (at `at` in them), and what the application did with it. Sent
/// back unchanged to its sender ahead of anything else, it is not copied:
/// the driver writes the frame header over the bytes before the payload
/// and the socket takes the frame from the read buffer
/// ([`tether_ws::Connection::frame_in_place`]); only what the socket does
/// not take is queued.
#[derive(Clone, Copy)]
pub(crate) enum InPlace<'a> {
    /// No message, or one that cannot go back in place.
    No,
    /// Lent to the application.
    Lent(MessageRef<'a>, usize),
    /// Sent back to its sender: the driver frames and writes it.
    Echoed(MessageRef<'a>, usize),
}

impl Current<'_> {
    /// Takes a message sent to this connection as an echo in place, when
    /// it is the one lent and nothing is queued ahead of it.
    fn echo_in_place(&mut self, message: MessageRef<'_>) -> bool {
        let InPlace::Lent(lent, at) = self.in_place else {
            return false;
        };
        let same = lent.kind() == message.kind()
            && std::ptr::eq(lent.as_bytes(), message.as_bytes())
            && self.out.is_empty()
            && self.ws.as_deref().is_some_and(|ws| ws.can_send());
        if same {
            self.in_place = InPlace::Echoed(lent, at);
        }
        same
    }

    /// Queues an echo taken in place, before anything else is written to
    /// this connection: from then on it is sent as any message.
    fn settle(&mut self, pool: &mut Pool) {
        if let (InPlace::Echoed(message, _), Some(ws)) = (self.in_place, self.ws.as_deref_mut()) {
            let _ = self.out.write_with(pool, |out| ws.send(message, out));
        }
        self.in_place = InPlace::No;
    }

    /// Where the payload of the message echoed in place lies in the bytes
    /// read, and its kind.
    pub(crate) fn echoed(&self) -> Option<(std::ops::Range<usize>, tether_ws::MessageKind)> {
        match self.in_place {
            InPlace::Echoed(message, at) => Some((at..at + message.as_bytes().len(), message.kind())),
            _ => None,
        }
    }
}

/// What an application callback can do. `P` is the application's
/// [`App::Post`].
pub struct Ctx<'a, P = ()> {
    pub(crate) now: Instant,
    pub(crate) current: Option<Current<'a>>,
    pub(crate) actions: &'a mut Vec<Action>,
    pub(crate) pool: &'a mut Pool,
    pub(crate) peers: &'a Peers<P>,
}

impl<'a, P> Ctx<'a, P> {
    /// A context that acts on no connection in particular.
    pub(crate) fn new(
        now: Instant,
        actions: &'a mut Vec<Action>,
        pool: &'a mut Pool,
        peers: &'a Peers<P>,
    ) -> Ctx<'a, P> {
        Ctx {
            now,
            current: None,
            actions,
            pool,
            peers,
        }
    }

    /// The same context, acting on `current` for a while.
    pub(crate) fn with_current<'b>(&'b mut self, current: Current<'b>) -> Ctx<'b, P> {
        Ctx {
            now: self.now,
            current: Some(current),
            actions: &mut *self.actions,
            pool: &mut *self.pool,
            peers: self.peers,
        }
    }

    /// The time the loop woke up for this event.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Sends a message to a WebSocket session: a [`&Message`](Message),
    /// or a [`MessageRef`] such as the one [`App::on_message`] was given.
    ///
    /// The message [`App::on_message`] was given, sent back unchanged to
    /// its sender before anything else, is not copied when it lay whole
    /// at the end of what was read: its frame is made where it lies and
    /// written from there (an echo costs one write and no copy).
    pub fn send<'m>(&mut self, to: ConnId, message: impl Into<MessageRef<'m>>) {
        let message = message.into();
        match self.current.as_mut() {
            Some(current) if current.id == to => {
                if current.echo_in_place(message) {
                    Stats::add(&self.peers.own().stats.messages_out, 1);
                    return;
                }
                current.settle(self.pool);
                if let Some(ws) = current.ws.as_deref_mut()
                    && current
                        .out
                        .write_with(self.pool, |out| ws.send(message, out))
                        .is_ok()
                {
                    Stats::add(&self.peers.own().stats.messages_out, 1);
                }
            }
            _ => self.actions.push(Action::Send(to, Encoded::ws(message))),
        }
    }

    /// Sends a message it may keep: to the connection being handled, a
    /// large payload is queued as it is, not copied (what an echo wants);
    /// to any other, it is encoded as [`Ctx::send`] would.
    pub fn send_owned(&mut self, to: ConnId, message: Message) {
        match self.current.as_mut() {
            Some(current) if current.id == to => {
                current.settle(self.pool);
                if let Some(ws) = current.ws.as_deref_mut()
                    && let Ok(payload) = current
                        .out
                        .write_with(self.pool, |out| ws.send_owned(message, out))
                {
                    if let Some(payload) = payload {
                        current.out.push_payload(payload);
                    }
                    Stats::add(&self.peers.own().stats.messages_out, 1);
                }
            }
            _ => self.actions.push(Action::Send(to, Encoded::ws(&message))),
        }
    }

    /// Sends already encoded bytes (from [`Encoded::ws`] for a WebSocket
    /// session, [`Encoded::sse`] for an event stream) to each connection.
    pub fn send_encoded(&mut self, to: impl IntoIterator<Item = ConnId>, encoded: &Encoded) {
        for id in to {
            match self.current.as_mut() {
                Some(current) if current.id == id => {
                    current.settle(self.pool);
                    let open = current.ws.as_deref().is_none_or(|ws| ws.can_send());
                    if open && !*current.closing {
                        let stats = &self.peers.own().stats;
                        let bytes = if current.ws.is_some() {
                            let (bytes, deflated) = encoded.for_session(current.deflate_window);
                            if deflated {
                                Stats::add(&stats.deflated_out, 1);
                            }
                            bytes
                        } else {
                            &encoded.bytes
                        };
                        current.out.push_shared(bytes.clone());
                        Stats::add(&stats.messages_out, 1);
                    }
                }
                _ => self.actions.push(Action::Send(id, encoded.clone())),
            }
        }
    }

    /// Sends an SSE event to one event stream.
    pub fn send_event(&mut self, to: ConnId, event: &tether_sse::Event<'_>) -> Result<(), tether_sse::Error> {
        let encoded = Encoded::sse(event)?;
        self.send_encoded([to], &encoded);
        Ok(())
    }

    /// Starts the close handshake of a WebSocket session.
    pub fn close(&mut self, conn: ConnId, code: CloseCode, reason: &str) {
        match self.current.as_mut() {
            Some(current) if current.id == conn && current.ws.is_some() => {
                current.settle(self.pool);
                let now = self.now;
                if let Some(ws) = current.ws.as_deref_mut() {
                    let _ = current
                        .out
                        .write_with(self.pool, |out| ws.close(code, reason, now, out));
                }
            }
            _ => self.actions.push(Action::Close(conn, code, reason.to_owned())),
        }
    }

    /// Answers a request the application deferred with [`Reply::Later`].
    /// Nothing happens if it was answered (or timed out) already.
    pub fn respond(&mut self, conn: ConnId, response: Response) {
        self.actions.push(Action::Respond(conn, response));
    }

    /// The server's counters, added up over all its loops (for a metrics
    /// page).
    pub fn stats(&self) -> crate::loops::StatsSnapshot {
        self.peers.stats()
    }

    /// The index of this event loop among the server's loops, and how many
    /// there are.
    pub fn loop_index(&self) -> (usize, usize) {
        (self.peers.index, self.peers.len())
    }

    /// Posts a message to another loop of the same server (by index; to
    /// this loop too, delivered after the current callback), where
    /// [`App::on_post`] receives it. Messages from one loop to another
    /// arrive in the order they were posted.
    pub fn post(&mut self, to_loop: usize, message: P) {
        self.peers.post(to_loop, message);
    }

    /// Ends an event stream (the client will reconnect after its retry
    /// delay, with its last event id).
    pub fn end_stream(&mut self, conn: ConnId) {
        match self.current.as_mut() {
            Some(current) if current.id == conn && current.ws.is_none() => *current.closing = true,
            _ => self.actions.push(Action::EndStream(conn)),
        }
    }
}
