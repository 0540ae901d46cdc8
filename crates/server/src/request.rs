//! What the application is asked about and answers with: a connection's
//! id, a request, the route it takes, a response, and why a session ended.

use std::net::SocketAddr;
use std::time::Duration;

use tether_ws::CloseCode;

/// A connection's identity for as long as it lives. Ids are never reused
/// for a later connection, so a stale id simply addresses nobody.
///
/// Over HTTP/2 each stream the application sees (a request, an event
/// stream, a WebSocket) has an id of its own: the connection's, with the
/// stream's identifier beside it (0 for HTTP/1.1 and for the connection
/// itself). Every [`Ctx`](crate::Ctx) method routes to that stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    generation: u32,
    stream: u32,
}

/// The bit of [`ConnId`]'s index that says it names a QUIC connection:
/// TCP connections each hold a descriptor, so their slab slots stay far
/// below it.
const QUIC_INDEX: u32 = 1 << 31;

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

    /// The id of QUIC connection `index` of the loop's QUIC endpoint (its
    /// handle there, which the endpoint reuses: `generation` tells its
    /// connections apart). Its index lies above any connection slot of
    /// the TCP slab, so that each id names one or the other.
    #[cfg(feature = "tls")]
    pub(crate) fn quic(index: usize, generation: u32) -> ConnId {
        ConnId {
            index: u32::try_from(index).unwrap_or(u32::MAX) | QUIC_INDEX,
            generation,
            stream: 0,
        }
    }

    /// The QUIC endpoint's handle of the connection this id names.
    #[cfg(feature = "tls")]
    pub(crate) fn quic_index(self) -> usize {
        (self.index & !QUIC_INDEX) as usize
    }

    /// Whether this id names a QUIC connection (or one of its streams).
    pub(crate) fn is_quic(self) -> bool {
        self.index & QUIC_INDEX != 0
    }

    /// The id of HTTP/2 stream `stream` of this connection.
    pub(crate) fn with_stream(self, stream: u32) -> ConnId {
        ConnId { stream, ..self }
    }

    /// The HTTP/2 stream this id names (over HTTP/3, the request stream's
    /// ordinal plus one), 0 for a whole connection.
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

    /// The slot of its loop's connection table that this id's connection
    /// holds, when the id names a whole TCP connection (not an HTTP/2 or
    /// HTTP/3 stream, not a QUIC connection); `None` otherwise. A loop
    /// reuses the slots of closed connections, so they stay about as few as
    /// its connections: an application may keep per-connection state in a
    /// `Vec` by slot, checking the whole id, since a later connection gets
    /// the same slot under another id.
    pub fn slot(self) -> Option<usize> {
        (self.stream == 0 && !self.is_quic()).then_some(self.index as usize)
    }

    pub(crate) fn generation(self) -> u32 {
        self.generation
    }
}

/// `SLOT#GENERATION` for a TCP connection, `q` before it for a QUIC one,
/// and `/STREAM` after it for an HTTP/2 or HTTP/3 stream: how logs name
/// a connection.
impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_quic() {
            f.write_str("q")?;
        }
        write!(f, "{}#{}", self.index & !QUIC_INDEX, self.generation)?;
        if self.stream != 0 {
            write!(f, "/{}", self.stream)?;
        }
        Ok(())
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
    pub(crate) peer: Option<SocketAddr>,
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

    /// Every value of a query parameter, percent-decoded, in their order.
    ///
    /// ```
    /// # use tether_server::Request;
    /// # fn check(req: Request<'_>) {
    /// let topics: Vec<String> = req.query_params("topic").collect();
    /// # }
    /// ```
    pub fn query_params<'q>(&self, name: &'q str) -> impl Iterator<Item = String> + use<'a, 'q> {
        crate::http::query_params(self.query.unwrap_or_default(), name)
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

    /// The address of the peer the request came from: the TCP peer (over
    /// HTTP/1.1 and HTTP/2), or the QUIC connection's current address
    /// (over HTTP/3, which follows a migration). Behind a proxy or load
    /// balancer this is the proxy's, unless the proxy is one of
    /// [`Config::trusted_proxies`](crate::Config::trusted_proxies): then
    /// it is the client its `Forwarded` or `X-Forwarded-For` header names
    /// (port 0 when the header gives none).
    /// `None` if the socket no longer has a peer.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Every header with this name (case-insensitive) that is UTF-8,
    /// joined with commas as one list (RFC 9110 section 5.3); `None` if
    /// there is none.
    #[cfg_attr(not(feature = "deflate"), allow(dead_code))]
    pub(crate) fn header_list(&self, name: &str) -> Option<String> {
        let mut values = self
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .filter_map(|h| std::str::from_utf8(h.value).ok());
        let first = values.next()?.to_owned();
        Some(values.fold(first, |mut list, value| {
            list.push_str(", ");
            list.push_str(value);
            list
        }))
    }

    /// The first header with this name (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
    }
}

/// What a path is, decided by [`App::route`](crate::App::route), with
/// the request's state `S` ([`App::State`](crate::App::State)) for the
/// routes that have later callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<S = ()> {
    /// A WebSocket endpoint (GET with an upgrade; a GET without one gets
    /// 426, any other method 405 with `Allow: GET`, `HEAD` included).
    /// The state comes back in every callback of the session.
    WebSocket(S),
    /// A Server-Sent Events stream (GET). `HEAD` gets the stream's head
    /// alone, and the connection goes on; other methods get 405.
    EventStream(S),
    /// A fixed page (GET or HEAD; other methods get 405).
    Page {
        /// The `Content-Type` header.
        content_type: &'static str,
        /// The body.
        body: &'static [u8],
    },
    /// A request the application answers itself, in
    /// [`App::on_request`](crate::App::on_request), with any method; its body (announced with
    /// `Content-Length`, up to [`crate::Config::max_request_body`]) is read
    /// first. The answer to `HEAD`, now or later, goes out as its head
    /// alone, with the `Content-Length` of its body; a `HEAD` answered
    /// with [`Reply::Later`] waits like its GET would, so an application
    /// that holds GETs (a long poll) answers their `HEAD` at once.
    Handler(S),
    /// Nothing here: 404.
    NotFound,
}

impl<S> Route<S> {
    /// The same route with its state (if it has one) made by `f`.
    pub fn map<T>(self, f: impl FnOnce(S) -> T) -> Route<T> {
        match self {
            Route::WebSocket(s) => Route::WebSocket(f(s)),
            Route::EventStream(s) => Route::EventStream(f(s)),
            Route::Handler(s) => Route::Handler(f(s)),
            Route::Page { content_type, body } => Route::Page { content_type, body },
            Route::NotFound => Route::NotFound,
        }
    }
}

/// What the application makes of a request's head while its body is
/// still to come ([`App::before_body`](crate::App::before_body)).
#[derive(Debug)]
pub enum BeforeBody<S> {
    /// Read the body; [`App::route`](crate::App::route) sees the request
    /// once it is whole, as for any other.
    Read,
    /// The request is a [`Route::Handler`] with this state, decided from
    /// its head: the body is read and handed to
    /// [`App::on_request`](crate::App::on_request) with the state kept
    /// from here, and [`App::route`](crate::App::route) is not called for
    /// the request. The server drops the state as for any handler's, or
    /// when the request ends before its body is whole.
    Handler(S),
    /// Answer now, the body unread, and close the connection (HTTP/1.1;
    /// on HTTP/2 and HTTP/3 the stream).
    Refuse(Response),
}

impl<S> BeforeBody<S> {
    /// The same answer with its state (if it has one) made by `f`.
    pub fn map<T>(self, f: impl FnOnce(S) -> T) -> BeforeBody<T> {
        match self {
            BeforeBody::Read => BeforeBody::Read,
            BeforeBody::Handler(state) => BeforeBody::Handler(f(state)),
            BeforeBody::Refuse(response) => BeforeBody::Refuse(response),
        }
    }
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
    /// [`Ctx::respond`](crate::Ctx::respond) (a long poll, say). If it has not answered within
    /// the duration, [`App::on_request_timeout`](crate::App::on_request_timeout) is asked for the response.
    Later(Duration),
    /// Not yet decided: the application keeps the [`ConnId`] and, within
    /// the duration, either answers with [`Ctx::respond`](crate::Ctx::respond)
    /// (a refusal, say) or lets the request go on as another route with
    /// [`Ctx::proceed`](crate::Ctx::proceed): a WebSocket upgrade or an
    /// event stream that waits for a decision made elsewhere (a database,
    /// the application's backend) before it opens, so that a refused
    /// client gets a real status (401, 403, 503) instead of an opened
    /// session closed at once. The server keeps the request's head until
    /// then and reads nothing after it. On time out,
    /// [`App::on_request_timeout`](crate::App::on_request_timeout) is
    /// asked for the answer, as for [`Reply::Later`].
    Hold(Duration),
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
