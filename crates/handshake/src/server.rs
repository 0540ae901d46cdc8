//! Server role: validate an upgrade request, run the policy and the
//! negotiators, and write the 101 response or the rejection.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use base64::Engine as _;
use httparse::{Header, Status};

use crate::extension::{self, Extension, ExtensionNegotiator, NegotiatedExtension};
use crate::http::{
    check_extra_headers, is_token, list_elements, lists_token, single, utf8, values, write_decimal,
    write_header,
};
use crate::{Error, accept_key};

/// How many header lines [`parse_request`] and
/// [`ClientHandshake`](crate::ClientHandshake) accept by default. Browsers
/// send about 15 on a WebSocket upgrade.
pub const DEFAULT_MAX_HEADERS: usize = 64;

/// A parsed request head, borrowed: what validation reads.
///
/// Build it from the `httparse::Request` the server already parsed (so the
/// head is parsed once, whatever the route turns out to be) with
/// [`from_httparse`](Self::from_httparse), from loose parts with
/// [`new`](Self::new), or get one from [`Request::head`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    method: &'a str,
    target: &'a str,
    version: u8,
    headers: &'a [Header<'a>],
}

impl<'a> RequestHead<'a> {
    /// A head from its parts; `version` is the HTTP/1.x minor version, as
    /// httparse reports it (`1` for HTTP/1.1).
    pub fn new(method: &'a str, target: &'a str, version: u8, headers: &'a [Header<'a>]) -> Self {
        Self {
            method,
            target,
            version,
            headers,
        }
    }

    /// Borrows a request httparse has parsed completely.
    ///
    /// Call it only after `parse` returned `Complete`. A request that is
    /// still partial is [`Error::IncompleteRequest`] when that shows: its
    /// method, path or version is unset, or its header array still has
    /// unused (empty-named) slots, which httparse trims on completion. A
    /// partial parse that happens to have filled every slot cannot be told
    /// from a complete one.
    ///
    /// ```
    /// use tether_handshake::RequestHead;
    ///
    /// let mut headers = [httparse::EMPTY_HEADER; 16];
    /// let mut req = httparse::Request::new(&mut headers);
    /// req.parse(b"GET /chat HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    /// let head = RequestHead::from_httparse(&req)?;
    /// assert_eq!((head.method(), head.target(), head.headers().len()), ("GET", "/chat", 1));
    /// # Ok::<(), tether_handshake::Error>(())
    /// ```
    pub fn from_httparse(req: &'a httparse::Request<'_, '_>) -> Result<Self, Error> {
        match (req.method, req.path, req.version) {
            (Some(method), Some(target), Some(version)) if !req.headers.iter().any(|h| h.name.is_empty()) => {
                Ok(Self {
                    method,
                    target,
                    version,
                    headers: req.headers,
                })
            }
            _ => Err(Error::IncompleteRequest),
        }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'a str {
        self.method
    }

    /// The request target as sent, path and query.
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The HTTP/1.x minor version.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The header lines.
    pub fn headers(&self) -> &'a [Header<'a>] {
        self.headers
    }
}

/// A request head parsed by [`parse_request`]: like `httparse::Request`,
/// but owning its header array so it can be returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'b> {
    method: &'b str,
    target: &'b str,
    version: u8,
    headers: Vec<Header<'b>>,
}

impl<'b> Request<'b> {
    /// The borrowed view that validation reads.
    pub fn head(&self) -> RequestHead<'_> {
        RequestHead::new(self.method, self.target, self.version, &self.headers)
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'b str {
        self.method
    }

    /// The request target, path and query.
    pub fn target(&self) -> &'b str {
        self.target
    }

    /// The header lines, in order.
    pub fn headers(&self) -> &[Header<'b>] {
        &self.headers
    }
}

/// Parses a request head with at most [`DEFAULT_MAX_HEADERS`] header lines.
///
/// A head that has not fully arrived is `Ok(Status::Partial)`: call again
/// with more bytes (the whole buffer, from its start). `Complete` carries
/// the number of bytes the head used; anything after it is not part of the
/// handshake. Bounding the head's size is the caller's job: give up once
/// the buffer is full and this still says `Partial`.
///
/// ```
/// use tether_handshake::{parse_request, Status};
///
/// let buf = b"GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\nrest";
/// assert_eq!(parse_request(&buf[..20])?, Status::Partial);
/// let Status::Complete((req, used)) = parse_request(buf)? else { unreachable!() };
/// assert_eq!((req.target(), used), ("/chat", buf.len() - 4));
/// # Ok::<(), tether_handshake::Error>(())
/// ```
pub fn parse_request(buf: &[u8]) -> Result<Status<(Request<'_>, usize)>, Error> {
    parse_request_with(buf, DEFAULT_MAX_HEADERS)
}

/// [`parse_request`] with a different limit on header lines; more is
/// [`Error::Http`]`(TooManyHeaders)`, answered with 431.
pub fn parse_request_with(buf: &[u8], max_headers: usize) -> Result<Status<(Request<'_>, usize)>, Error> {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf).map_err(Error::Http)? {
        Status::Complete(n) => n,
        Status::Partial => return Ok(Status::Partial),
    };
    let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
        // httparse fills all three before it reports Complete.
        return Ok(Status::Partial);
    };
    let count = req.headers.len();
    headers.truncate(count);
    Ok(Status::Complete((
        Request {
            method,
            target,
            version,
            headers,
        },
        used,
    )))
}

/// A request that passed every RFC 6455 check (section 4.2.1): what the
/// policy sees, and what the 101 response is built from.
///
/// Everything borrows the request buffer. Header values are bytes in HTTP;
/// the few this type hands out as `&str` were checked to be UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeRequest<'a> {
    head: RequestHead<'a>,
    host: &'a str,
    origin: Option<&'a str>,
    key: &'a str,
    protocols: Vec<&'a str>,
    extensions: Vec<Extension<'a>>,
}

impl<'a> UpgradeRequest<'a> {
    /// Checks `head` against RFC 6455 section 4.2.1, in this order (the
    /// first failure wins; [`Error::http_status`] gives the status):
    ///
    /// 1. method `GET`, else [`Error::Method`] (405, with `Allow: GET`;
    ///    a server that routes other methods elsewhere checks first);
    /// 2. HTTP/1.1 or later, else [`Error::HttpVersion`] (400: the upgrade
    ///    mechanism does not exist in HTTP/1.0, so 426 would not help);
    /// 3. exactly one non-empty, UTF-8 `Host` (400);
    /// 4. `Upgrade` lists `websocket` and `Connection` lists `Upgrade`, as
    ///    case-insensitive comma lists over any number of headers, else
    ///    [`Error::NotUpgrade`] (426);
    /// 5. exactly one `Sec-WebSocket-Version`, equal to `13`, else
    ///    [`Error::UnsupportedVersion`] (426; duplicates are 400);
    /// 6. exactly one `Sec-WebSocket-Key` that is canonical base64 of 16
    ///    bytes (400);
    /// 7. at most one `Origin`, UTF-8 (400: two origins are ambiguous to a
    ///    policy that reads one);
    /// 8. `Sec-WebSocket-Protocol` headers are comma lists of tokens (400);
    /// 9. `Sec-WebSocket-Extensions` headers parse per RFC 6455 section 9.1
    ///    (400); see [`parse_extensions`](crate::parse_extensions).
    pub fn new(head: RequestHead<'a>) -> Result<Self, Error> {
        let headers = head.headers;
        if head.method != "GET" {
            return Err(Error::Method);
        }
        if head.version < 1 {
            return Err(Error::HttpVersion);
        }
        let host = single(headers, "Host")?.ok_or(Error::MissingHeader("Host"))?;
        let host = utf8(host, "Host")?;
        if host.is_empty() {
            return Err(Error::InvalidHeader("Host"));
        }
        if !lists_token(headers, "Upgrade", "websocket") || !lists_token(headers, "Connection", "Upgrade") {
            return Err(Error::NotUpgrade);
        }
        match single(headers, "Sec-WebSocket-Version")? {
            Some(b"13") => {}
            _ => return Err(Error::UnsupportedVersion),
        }
        let key = single(headers, "Sec-WebSocket-Key")?.ok_or(Error::MissingHeader("Sec-WebSocket-Key"))?;
        let key = utf8(key, "Sec-WebSocket-Key")?;
        if !is_valid_key(key) {
            return Err(Error::InvalidHeader("Sec-WebSocket-Key"));
        }
        let origin = single(headers, "Origin")?
            .map(|o| utf8(o, "Origin"))
            .transpose()?;
        let mut protocols = Vec::new();
        for value in values(headers, "Sec-WebSocket-Protocol") {
            for p in list_elements(value) {
                if !is_token(p) {
                    return Err(Error::InvalidHeader("Sec-WebSocket-Protocol"));
                }
                protocols.push(utf8(p, "Sec-WebSocket-Protocol")?);
            }
        }
        let mut extensions = Vec::new();
        for value in values(headers, "Sec-WebSocket-Extensions") {
            let value = utf8(value, "Sec-WebSocket-Extensions")?;
            extension::parse_extensions_into(value, &mut extensions)?;
        }
        Ok(Self {
            head,
            host,
            origin,
            key,
            protocols,
            extensions,
        })
    }

    /// The head this was validated from.
    pub fn head(&self) -> RequestHead<'a> {
        self.head
    }

    /// The `Host` header, trimmed, e.g. `example.com:8080`. Not checked
    /// against anything: compare it in the policy if it matters.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The `Origin` header, trimmed, if the client sent one (browsers
    /// always do; other clients may not).
    pub fn origin(&self) -> Option<&'a str> {
        self.origin
    }

    /// The request target as sent, path and query.
    pub fn target(&self) -> &'a str {
        self.head.target
    }

    /// The target up to the first `?`, not percent-decoded.
    pub fn path(&self) -> &'a str {
        self.head
            .target
            .split_once('?')
            .map_or(self.head.target, |(p, _)| p)
    }

    /// The target after the first `?`, if there is one, not decoded.
    pub fn query(&self) -> Option<&'a str> {
        self.head.target.split_once('?').map(|(_, q)| q)
    }

    /// The `Sec-WebSocket-Key`, trimmed.
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// Every subprotocol the client offered, in its order.
    pub fn protocols(&self) -> &[&'a str] {
        &self.protocols
    }

    /// Every extension offer, across all `Sec-WebSocket-Extensions`
    /// headers, in the client's order.
    pub fn extensions(&self) -> &[Extension<'a>] {
        &self.extensions
    }

    /// The first header called `name` (ASCII case-insensitive), untrimmed
    /// bytes as httparse gave them.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        values(self.head.headers, name).next()
    }

    /// Every header called `name` (ASCII case-insensitive), in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        values(self.head.headers, name)
    }

    /// The cookies of every `Cookie` header as `(name, value)` pairs, see
    /// [`Cookies`].
    pub fn cookies(&self) -> Cookies<'a> {
        Cookies {
            headers: self.head.headers,
            rest: None,
        }
    }

    /// The first subprotocol in `preference` (the server's order) that the
    /// client offered, compared exactly (subprotocol names are
    /// case-sensitive, RFC 7936). `None` is a valid outcome: the response
    /// then names no subprotocol.
    pub fn select_protocol<S: AsRef<str>>(&self, preference: &[S]) -> Option<&'a str> {
        preference.iter().find_map(|want| {
            self.protocols
                .iter()
                .copied()
                .find(|&offered| offered == want.as_ref())
        })
    }

    /// Runs `negotiators` in the server's order of preference over the
    /// offers; see [`ExtensionNegotiator`].
    pub fn negotiate<T>(
        &self,
        negotiators: &[&dyn ExtensionNegotiator<Value = T>],
    ) -> Result<Vec<NegotiatedExtension<T>>, Error> {
        extension::negotiate(&self.extensions, negotiators.iter().copied())
    }

    /// Accepts the upgrade with the given subprotocol (which must be one
    /// the client offered, else [`Error::InvalidArgument`]) and negotiated
    /// extensions. [`ServerConfig::accept`] does all of this in one call.
    pub fn accept<T>(
        self,
        protocol: Option<&str>,
        extensions: Vec<NegotiatedExtension<T>>,
    ) -> Result<Accepted<'a, T>, Error> {
        let protocol = match protocol {
            None => None,
            Some(p) => Some(
                self.protocols
                    .iter()
                    .copied()
                    .find(|&o| o == p)
                    .ok_or(Error::InvalidArgument("the selected subprotocol was not offered"))?,
            ),
        };
        Ok(Accepted {
            accept: accept_key(self.key.as_bytes()),
            request: self,
            protocol,
            extensions,
        })
    }
}

fn is_valid_key(key: &str) -> bool {
    // 16 bytes are always 24 characters with `==`; checking the length
    // first bounds the work on hostile input.
    let mut decoded = [0u8; 18];
    key.len() == 24
        && base64::engine::general_purpose::STANDARD
            .decode_slice(key, &mut decoded)
            .is_ok_and(|n| n == 16)
}

/// The cookies of a request's `Cookie` headers, as `(name, value)`.
///
/// Pairs are split on `;`, then at the first `=`, and trimmed; a value in
/// double quotes loses them (RFC 6265 section 4.1.1). A pair without `=`
/// is yielded with an empty name, as browsers send a cookie whose name is
/// empty. Values are not decoded. A `Cookie` header that is not UTF-8 is
/// skipped whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cookies<'a> {
    headers: &'a [Header<'a>],
    rest: Option<&'a str>,
}

impl<'a> Iterator for Cookies<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(rest) = self.rest {
                let (pair, tail) = rest.split_once(';').map_or((rest, None), |(p, t)| (p, Some(t)));
                self.rest = tail;
                let pair = pair.trim_matches([' ', '\t']);
                if pair.is_empty() {
                    continue;
                }
                let (name, value) = pair.split_once('=').unwrap_or(("", pair));
                let value = value.trim_matches([' ', '\t']);
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                return Some((name.trim_end_matches([' ', '\t']), value));
            }
            let (first, others) = self.headers.split_first()?;
            self.headers = others;
            if first.name.eq_ignore_ascii_case("Cookie") {
                self.rest = core::str::from_utf8(first.value).ok();
            }
        }
    }
}

/// A server's decision hook, run on every request that passed validation
/// and before extension negotiation: check the `Origin` against an
/// allowlist, authenticate a cookie, refuse unknown paths...
///
/// Any `Fn(&UpgradeRequest<'_>) -> Result<(), Rejection> + Send + Sync`
/// closure is a policy (see [`ServerConfig::policy`]); implement the trait
/// for a type to keep state in it. Refuse with [`Rejection::forbidden`].
pub trait Policy: Send + Sync {
    /// `Ok(())` to let the handshake go on, or the rejection to answer.
    fn check(&self, request: &UpgradeRequest<'_>) -> Result<(), Rejection>;
}

impl<F> Policy for F
where
    F: Fn(&UpgradeRequest<'_>) -> Result<(), Rejection> + Send + Sync,
{
    fn check(&self, request: &UpgradeRequest<'_>) -> Result<(), Rejection> {
        self(request)
    }
}

type BoxedNegotiator<T> = Box<dyn ExtensionNegotiator<Value = T> + Send + Sync>;

/// A server's handshake settings: the subprotocols it speaks in order of
/// preference, its extension negotiators in order of preference, and an
/// optional [`Policy`]. Build it once and share it: it is `Send + Sync`,
/// because negotiators and the policy must be.
///
/// `T` is the value the negotiators return; with none, leave it `()`.
///
/// ```
/// use tether_handshake::{parse_request, Rejection, ServerConfig, Status, UpgradeRequest};
///
/// let config: ServerConfig = ServerConfig::new()
///     .protocols(["chat.v2", "chat.v1"])
///     .policy(|req: &UpgradeRequest<'_>| match req.origin() {
///         Some("https://example.com") | None => Ok(()),
///         Some(_) => Err(Rejection::forbidden("origin not allowed")),
///     });
///
/// let buf = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat.v1, chat.v2\r\n\r\n";
/// let Status::Complete((req, _)) = parse_request(buf)? else { unreachable!() };
/// let mut out = Vec::new();
/// match config.accept(req.head()) {
///     Ok(accepted) => {
///         assert_eq!(accepted.protocol(), Some("chat.v2"));
///         accepted.write_response(&mut out, &[])?;
///     }
///     Err(rejection) => rejection.write_response(&mut out),
/// }
/// assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// # Ok::<(), tether_handshake::Error>(())
/// ```
pub struct ServerConfig<T = ()> {
    protocols: Vec<String>,
    negotiators: Vec<BoxedNegotiator<T>>,
    policy: Option<Box<dyn Policy>>,
}

impl<T> Default for ServerConfig<T> {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            negotiators: Vec::new(),
            policy: None,
        }
    }
}

impl<T> core::fmt::Debug for ServerConfig<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let names: Vec<&str> = self.negotiators.iter().map(|n| n.name()).collect();
        f.debug_struct("ServerConfig")
            .field("protocols", &self.protocols)
            .field("negotiators", &names)
            .field("policy", &self.policy.is_some())
            .finish()
    }
}

impl<T> ServerConfig<T> {
    /// No subprotocols, no extensions, no policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a subprotocol to the preference list (most preferred first).
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        self.protocols.push(name.into());
        self
    }

    /// Appends several subprotocols, most preferred first.
    pub fn protocols<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.protocols.extend(names.into_iter().map(Into::into));
        self
    }

    /// Appends an extension negotiator (most preferred first).
    pub fn negotiator<N>(mut self, negotiator: N) -> Self
    where
        N: ExtensionNegotiator<Value = T> + Send + Sync + 'static,
    {
        self.negotiators.push(Box::new(negotiator));
        self
    }

    /// Sets the policy from a closure. Annotate its argument
    /// (`|req: &UpgradeRequest<'_>|`) so it is generic over the lifetime.
    pub fn policy<F>(self, policy: F) -> Self
    where
        F: Fn(&UpgradeRequest<'_>) -> Result<(), Rejection> + Send + Sync + 'static,
    {
        self.policy_object(Box::new(policy))
    }

    /// Sets the policy from any [`Policy`] implementation.
    pub fn policy_object(mut self, policy: Box<dyn Policy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The whole server side of the handshake: validate (see
    /// [`UpgradeRequest::new`]), run the policy, select the subprotocol,
    /// negotiate extensions. The result writes either the 101 response or
    /// the rejection.
    pub fn accept<'a>(&self, head: RequestHead<'a>) -> Result<Accepted<'a, T>, Rejection> {
        let request = UpgradeRequest::new(head)?;
        if let Some(policy) = &self.policy {
            policy.check(&request)?;
        }
        let protocol = request.select_protocol(&self.protocols);
        let extensions = extension::negotiate(request.extensions(), self.negotiators.iter().map(|n| &**n))?;
        Ok(request.accept(protocol, extensions)?)
    }
}

/// Headers the 101 response writes itself, so extra ones cannot repeat them.
const RESPONSE_HEADERS: &[&str] = &[
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

/// An accepted upgrade: writes the 101 response and hands back the
/// negotiated extension values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted<'a, T> {
    request: UpgradeRequest<'a>,
    accept: [u8; 28],
    protocol: Option<&'a str>,
    extensions: Vec<NegotiatedExtension<T>>,
}

impl<'a, T> Accepted<'a, T> {
    /// The validated request.
    pub fn request(&self) -> &UpgradeRequest<'a> {
        &self.request
    }

    /// The `Sec-WebSocket-Accept` value.
    pub fn accept_key(&self) -> &str {
        // base64 output is ASCII.
        core::str::from_utf8(&self.accept).unwrap_or_default()
    }

    /// The selected subprotocol, if any.
    pub fn protocol(&self) -> Option<&'a str> {
        self.protocol
    }

    /// The accepted extensions, in the order the response lists them
    /// (which is the order they apply in, RFC 6455 section 9.1).
    pub fn extensions(&self) -> &[NegotiatedExtension<T>] {
        &self.extensions
    }

    /// The negotiators' values, in the same order as [`extensions`](Self::extensions).
    pub fn into_extension_values(self) -> Vec<T> {
        self.extensions
            .into_iter()
            .map(NegotiatedExtension::into_value)
            .collect()
    }

    /// Appends the 101 response head to `out`, with `extra` headers (e.g.
    /// `Set-Cookie`) after the handshake's own. An extra header that is not
    /// a token name with a control-free value, or that repeats one of the
    /// handshake's headers, is [`Error::InvalidArgument`] and nothing is
    /// written.
    pub fn write_response(&self, out: &mut Vec<u8>, extra: &[(&str, &str)]) -> Result<(), Error> {
        check_extra_headers(extra, RESPONSE_HEADERS)?;
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        write_header(out, "Upgrade", b"websocket");
        write_header(out, "Connection", b"Upgrade");
        write_header(out, "Sec-WebSocket-Accept", &self.accept);
        if let Some(p) = self.protocol {
            write_header(out, "Sec-WebSocket-Protocol", p.as_bytes());
        }
        if !self.extensions.is_empty() {
            out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
            for (i, e) in self.extensions.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(e.element().as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in extra {
            write_header(out, name, value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// A refused handshake: the status, a short reason for the body, and the
/// [`Error`] behind it (none for a policy refusal).
///
/// | cause | status |
/// | --- | --- |
/// | malformed head, HTTP/1.0, bad or missing `Host` / key, bad protocol or extension header | 400 |
/// | [`Policy`] refusal | 403 |
/// | method not `GET` | 405 (with `Allow: GET`) |
/// | not an upgrade, or `Sec-WebSocket-Version` not `13` | 426 (with `Upgrade: websocket`, `Sec-WebSocket-Version: 13`) |
/// | too many header lines | 431 |
/// | a negotiator or argument error (the server's fault) | 500 |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: u16,
    reason: Cow<'static, str>,
    error: Option<Error>,
}

impl Rejection {
    /// A 403 refusal, for a [`Policy`].
    pub fn forbidden(reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status: 403,
            reason: reason.into(),
            error: None,
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The short reason, sent as the body.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// What was wrong with the request, unless a policy refused it.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The header fields the status calls for, besides those of the body:
    /// `Allow: GET` for a 405; `Upgrade: websocket` and
    /// `Sec-WebSocket-Version: 13` for a 426 (RFC 6455 section 4.4); none
    /// for the others. [`write_response`](Self::write_response) writes
    /// them; a server that builds its responses from other HTTP types (such
    /// as the `http` crate's) copies them from here so the refusal stays
    /// complete.
    ///
    /// ```
    /// use tether_handshake::{Error, Rejection};
    ///
    /// let refusal = Rejection::from(Error::UnsupportedVersion);
    /// assert_eq!(refusal.status(), 426);
    /// assert!(refusal.headers().contains(&("Sec-WebSocket-Version", "13")));
    /// assert!(Rejection::from(Error::MissingHeader("Host")).headers().is_empty());
    /// ```
    pub fn headers(&self) -> &'static [(&'static str, &'static str)] {
        match self.status {
            405 => &[("Allow", "GET")],
            // RFC 9110 section 15.5.22: a 426 names the protocol to switch to.
            426 => &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
            _ => &[],
        }
    }

    /// Appends a complete HTTP/1.1 response to `out`: status line, the
    /// headers the status calls for, `Content-Type: text/plain`,
    /// `Content-Length`, `Connection: close`, and the reason as body. The
    /// server should close the connection once it is written.
    ///
    /// ```
    /// use tether_handshake::{Error, Rejection};
    ///
    /// let mut out = Vec::new();
    /// Rejection::from(Error::UnsupportedVersion).write_response(&mut out);
    /// let text = String::from_utf8(out).unwrap();
    /// assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    /// assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
    /// ```
    pub fn write_response(&self, out: &mut Vec<u8>) {
        self.write_response_with(out, &[]);
    }

    /// [`write_response`](Self::write_response) with `extra` header fields
    /// (such as `Alt-Svc`) after the refusal's own, each written as given:
    /// the caller's, not the peer's.
    ///
    /// ```
    /// use tether_handshake::{Error, Rejection};
    ///
    /// let mut out = Vec::new();
    /// Rejection::from(Error::UnsupportedVersion).write_response_with(&mut out, &[("Alt-Svc", "h3=\":443\"")]);
    /// let text = String::from_utf8(out).unwrap();
    /// assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\nAlt-Svc: h3=\":443\"\r\n"));
    /// ```
    pub fn write_response_with(&self, out: &mut Vec<u8>, extra: &[(&str, &str)]) {
        out.extend_from_slice(b"HTTP/1.1 ");
        write_decimal(out, u64::from(self.status));
        out.push(b' ');
        out.extend_from_slice(tether_http1::reason_phrase(self.status).as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in self.headers() {
            write_header(out, name, value.as_bytes());
        }
        for (name, value) in extra {
            write_header(out, name, value.as_bytes());
        }
        write_header(out, "Content-Type", b"text/plain; charset=utf-8");
        out.extend_from_slice(b"Content-Length: ");
        write_decimal(out, self.reason.len() as u64 + 1);
        out.extend_from_slice(b"\r\n");
        write_header(out, "Connection", b"close");
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.reason.as_bytes());
        out.push(b'\n');
    }
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Self {
            status: error.http_status(),
            reason: Cow::Owned(error.to_string()),
            error: Some(error),
        }
    }
}

#[cfg(test)]
mod rejection_tests {
    use super::*;
    use alloc::string::String;

    /// What `headers` lists is exactly what `write_response` writes
    /// between the status line and the body's own headers.
    #[test]
    fn headers_are_those_written() {
        let cases = [
            (
                Error::UnsupportedVersion,
                426,
                "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
            ),
            (
                Error::NotUpgrade,
                426,
                "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
            ),
            (Error::Method, 405, "Allow: GET\r\n"),
            (Error::MissingHeader("Host"), 400, ""),
        ];
        for (error, status, lines) in cases {
            let refusal = Rejection::from(error);
            assert_eq!(refusal.status(), status);
            let listed: String = refusal
                .headers()
                .iter()
                .map(|(n, v)| alloc::format!("{n}: {v}\r\n"))
                .collect();
            assert_eq!(listed, lines);
            let mut out = Vec::new();
            refusal.write_response(&mut out);
            let text = String::from_utf8(out).unwrap();
            let after_status = text.split_once("\r\n").unwrap().1;
            assert!(after_status.starts_with(&listed), "{text}");
            assert!(after_status[listed.len()..].starts_with("Content-Type"), "{text}");
        }
        assert!(Rejection::forbidden("no").headers().is_empty());
    }
}
