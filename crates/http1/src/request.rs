//! The server side: request heads and the request decoder.

use alloc::vec::Vec;

use httparse::Header;

use crate::body::{BodyDecoder, Framing};
use crate::error::Error;
use crate::exchange::{self, Exchange};
use crate::fields::{self, Framed};
use crate::limits::Limits;
use crate::status::Status;
use crate::version::Version;

/// The form of a request-target (RFC 9112 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`, the usual one.
    Origin,
    /// `http://host/path?query`, as sent to proxies; a server must accept
    /// it too.
    Absolute,
    /// `host:port`, with `CONNECT` only.
    Authority,
    /// `*`, with `OPTIONS` only.
    Asterisk,
}

/// A parsed and validated request head, borrowed from the input and from
/// the caller's header array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'h, 'b> {
    method: &'b str,
    target: &'b str,
    form: TargetForm,
    path: &'b str,
    query: Option<&'b str>,
    authority: Option<&'b str>,
    version: Version,
    headers: &'h [Header<'b>],
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

impl<'h, 'b> RequestHead<'h, 'b> {
    /// The method, as sent (methods are case-sensitive).
    pub fn method(&self) -> &'b str {
        self.method
    }

    /// The request-target exactly as sent.
    pub fn target(&self) -> &'b str {
        self.target
    }

    /// The form of the request-target.
    pub fn form(&self) -> TargetForm {
        self.form
    }

    /// The path: of an origin-form target, or taken from an absolute-form
    /// one (`/` if it has none); `*` for the asterisk form, empty for the
    /// authority form. Not percent-decoded.
    pub fn path(&self) -> &'b str {
        self.path
    }

    /// The query, without its `?`; not percent-decoded.
    pub fn query(&self) -> Option<&'b str> {
        self.query
    }

    /// The authority of an absolute-form or authority-form target (which,
    /// RFC 9112 section 3.2.2 says, takes the place of `Host`).
    pub fn authority(&self) -> Option<&'b str> {
        self.authority
    }

    /// The value of `Host` (empty when there is none, as HTTP/1.0 allows).
    pub fn host(&self) -> &'b [u8] {
        self.header("host").unwrap_or_default()
    }

    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.version
    }

    /// All header field lines, in order.
    pub fn headers(&self) -> &'h [Header<'b>] {
        self.headers
    }

    /// The value of the first field line named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        fields::first(self.headers, name)
    }

    /// How the body is framed.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the connection stays open after this request's response
    /// (RFC 9112 section 9.3). When false, the response carries
    /// `Connection: close` and the server closes after it.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether the client waits for `100 Continue` before sending the body
    /// (`Expect: 100-continue` on HTTP/1.1; RFC 9110 section 10.1.1 has an
    /// HTTP/1.0 one ignored). Send it with [`write_continue`](crate::encode::write_continue), or
    /// answer with a final status instead and close.
    pub fn expect_continue(&self) -> bool {
        self.expect_continue
    }
}

/// Parses and validates one request head at the start of `buf`, with the
/// caller's `headers` array as storage (its length is the header limit).
///
/// Returns the head and its length in bytes, `Status::Partial` while the
/// head is incomplete, or the error whose [`Error::status`] to answer.
/// [`RequestDecoder`] wraps this with the body; use this directly only for
/// a request that cannot have one.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    limits: &Limits,
) -> Result<Status<(RequestHead<'h, 'b>, usize)>, Error> {
    let window = buf.get(..limits.max_head).unwrap_or(buf);
    let mut req = httparse::Request::new(headers);
    let parsed = req.parse(window);
    let used = match exchange::head_status(parsed, buf, limits, || version_error(window), parse_error)? {
        Status::Complete(used) => used,
        Status::Partial => return Ok(Status::Partial),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Error::Malformed("incomplete request line"));
    };
    let version = exchange::version(minor);
    let headers: &'h [Header<'b>] = req.headers;

    // RFC 9112 section 3.2: exactly one Host on HTTP/1.1, never two.
    let mut hosts = headers.iter().filter(|h| h.name.eq_ignore_ascii_case("host"));
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::Http11 => return Err(Error::MissingHost),
        (Some(_), Some(_)) => return Err(Error::BadHost),
        (Some(host), None) if !valid_host(host.value) => return Err(Error::BadHost),
        _ => {}
    }

    let (form, path, query, authority) = parse_target(method, target)?;
    let Framed { framing, keep_alive } = fields::request_framing(version, headers)?;
    if let Framing::Length(n) = framing
        && n > limits.max_body
    {
        return Err(Error::BodyTooLarge);
    }

    let mut expect_continue = false;
    for expectation in fields::list(headers, "expect") {
        if expectation.eq_ignore_ascii_case(b"100-continue") {
            expect_continue = version == Version::Http11;
        } else {
            return Err(Error::UnsupportedExpectation);
        }
    }

    Ok(Status::Complete((
        RequestHead {
            method,
            target,
            form,
            path,
            query,
            authority,
            version,
            headers,
            framing,
            keep_alive,
            expect_continue,
        },
        used,
    )))
}

fn parse_error(e: httparse::Error) -> Error {
    match e {
        httparse::Error::TooManyHeaders => Error::TooManyHeaders,
        httparse::Error::Version => Error::Malformed("invalid HTTP version"),
        httparse::Error::Token => Error::Malformed("invalid method"),
        httparse::Error::HeaderName => Error::Malformed("invalid header name (or obs-fold)"),
        httparse::Error::HeaderValue => Error::Malformed("invalid header value"),
        httparse::Error::NewLine => Error::Malformed("invalid line ending"),
        httparse::Error::Status => Error::Malformed("invalid status"),
    }
}

/// What a version httparse refused means, for the request line in `buf`.
fn version_error(buf: &[u8]) -> Option<Error> {
    let rest = exchange::start_line(buf);
    let (line, complete) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (rest.get(..end).unwrap_or_default(), true),
        None => (rest, false),
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // method SP request-target SP HTTP-version, single spaces: the
    // version is all that follows the second space.
    let version = line.splitn(3, |&b| b == b' ').nth(2).unwrap_or_default();
    exchange::version_verdict(version, complete)
}

/// uri-host [ ":" port ] (RFC 9110 section 7.2), or empty: the bytes of a
/// reg-name, an IP literal or an IPv4 address.
fn valid_host(value: &[u8]) -> bool {
    value.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
            )
    })
}

type Target<'b> = (TargetForm, &'b str, Option<&'b str>, Option<&'b str>);

fn split_query(path_and_query: &str) -> (&str, Option<&str>) {
    match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    }
}

/// The request-target's form, path, query and authority, checked against
/// the method (RFC 9112 section 3.2).
fn parse_target<'b>(method: &str, target: &'b str) -> Result<Target<'b>, Error> {
    if target.contains('#') {
        return Err(Error::BadTarget);
    }
    let connect = method == "CONNECT";
    if connect {
        return authority_form(target).map(|a| (TargetForm::Authority, "", None, Some(a)));
    }
    if target.starts_with('/') {
        let (path, query) = split_query(target);
        return Ok((TargetForm::Origin, path, query, None));
    }
    if target == "*" {
        return if method == "OPTIONS" {
            Ok((TargetForm::Asterisk, "*", None, None))
        } else {
            Err(Error::BadTarget)
        };
    }
    let (scheme, rest) = target.split_once("://").ok_or(Error::BadTarget)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(Error::BadTarget);
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at_checked(end).ok_or(Error::BadTarget)?;
    // RFC 9110 section 4.2.1: an http(s) URI with an empty host is invalid.
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if host.is_empty() || host.starts_with(':') || !valid_host(host.as_bytes()) {
        return Err(Error::BadTarget);
    }
    let (path, query) = split_query(path_and_query);
    let path = if path.is_empty() { "/" } else { path };
    Ok((TargetForm::Absolute, path, query, Some(authority)))
}

/// authority-form: `host:port` (RFC 9112 section 3.2.3), the port
/// required.
fn authority_form(target: &str) -> Result<&str, Error> {
    let (host, port) = target.rsplit_once(':').ok_or(Error::BadTarget)?;
    let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if host.is_empty() || !port_ok || host.contains('@') || !valid_host(host.as_bytes()) {
        return Err(Error::BadTarget);
    }
    Ok(target)
}

/// The server side of an HTTP/1.1 connection: decodes requests one after
/// another from the bytes the caller reads, without doing any I/O.
///
/// # Calling contract
///
/// Sans-IO, in the words every tether crate uses: bytes in (the
/// caller's read buffer, to [`decode_head`](Self::decode_head) and
/// [`decode_body`](Self::decode_body)), events out (the head, the body's
/// progress), bytes out into a buffer the caller owns (the body; the
/// answer through [`Response`](crate::encode::Response)); no time passed in and no deadline
/// out: the caller's loop times the head and the idle connection.
///
/// The caller owns the read buffer. For each request:
///
/// 1. [`decode_head`](Self::decode_head) on the buffer; on
///    [`Status::Partial`], read more and call again (the buffer need not
///    grow past [`Limits::max_head`]: a head that large is refused with
///    431). On [`Status::Complete`], the head borrows the buffer; copy out
///    what you need, then drop the returned number of bytes from the
///    front of the buffer.
/// 2. If [`RequestHead::expect_continue`], write [`write_continue`](crate::encode::write_continue)
///    before reading the body (or answer with a final status and close).
/// 3. [`decode_body`](Self::decode_body) until it says the body is done
///    (at once for a request without one), dropping the bytes it used
///    from the buffer each time and reading more while it is not done.
///    The body is appended to a buffer you own, up to
///    [`Limits::max_body`].
/// 4. Answer (see [`Response`](crate::encode::Response)). If the head said
///    [`keep_alive`](RequestHead::keep_alive) is false, close after the
///    response; the decoder refuses further requests.
///
/// The decoder never consumes a byte past the current request, so the next
/// pipelined request stays in the buffer; a server stops reading the
/// socket while it answers (backpressure, not buffering) and goes back to
/// step 1 afterwards. After any [`Error`] the caller answers
/// [`Error::status`] (with `Connection: close`) and closes: the decoder
/// refuses to go on.
///
/// ```
/// use tether_http1::{Limits, RequestDecoder, Status, EMPTY_HEADER};
///
/// let mut decoder = RequestDecoder::new(Limits::default());
/// // Two pipelined requests; the first has a chunked body.
/// let mut buf = b"POST /topics/news HTTP/1.1\r\nHost: example.com\r\n\
///     Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
///     GET /healthz HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec();
///
/// let mut headers = [EMPTY_HEADER; 32];
/// let Status::Complete((head, used)) = decoder.decode_head(&buf, &mut headers)? else {
///     unreachable!("the head is all there")
/// };
/// assert_eq!((head.method(), head.path()), ("POST", "/topics/news"));
/// buf.drain(..used);
///
/// let mut body = Vec::new();
/// let (used, done) = decoder.decode_body(&buf, &mut body)?;
/// assert!(done);
/// assert_eq!(body, b"hello");
/// buf.drain(..used);
/// // The next request is still in the buffer, unread.
/// assert!(buf.starts_with(b"GET /healthz"));
/// # Ok::<(), tether_http1::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDecoder {
    limits: Limits,
    state: Exchange,
}

impl RequestDecoder {
    /// A decoder for a new connection.
    pub fn new(limits: Limits) -> RequestDecoder {
        RequestDecoder {
            limits,
            state: Exchange::Head,
        }
    }

    /// The limits it applies.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether it waits for a request head (not in the middle of a body,
    /// not stopped).
    pub fn is_idle(&self) -> bool {
        self.state == Exchange::Head
    }

    /// Parses the next request head from the start of `buf` (step 1 of the
    /// contract). [`Error::WrongState`] while a body is still to be read,
    /// or once the decoder has stopped.
    pub fn decode_head<'h, 'b>(
        &mut self,
        buf: &'b [u8],
        headers: &'h mut [Header<'b>],
    ) -> Result<Status<(RequestHead<'h, 'b>, usize)>, Error> {
        let limits = &self.limits;
        self.state.head(
            || parse_request(buf, headers, limits),
            |(head, _)| Exchange::Body {
                body: BodyDecoder::new(head.framing, limits.max_body, limits.max_head),
                keep_alive: head.keep_alive,
            },
        )
    }

    /// Decodes body bytes from the start of `buf` into `body` (step 3):
    /// how many bytes of `buf` it used, and whether the body is complete.
    /// Once it is, the decoder waits for the next head (or stops, if the
    /// request did not keep the connection alive).
    pub fn decode_body(&mut self, buf: &[u8], body: &mut Vec<u8>) -> Result<(usize, bool), Error> {
        self.decode_body_with(buf, &mut |bytes| body.extend_from_slice(bytes))
    }

    /// [`RequestDecoder::decode_body`] handing the body to `sink` as slices
    /// of `buf`, without a copy.
    pub fn decode_body_with(
        &mut self,
        buf: &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(usize, bool), Error> {
        self.state.body(buf, sink)
    }
}
