//! The client side: response heads and the response decoder.

use alloc::vec::Vec;

use httparse::Header;

use crate::body::{BodyDecoder, Framing};
use crate::error::Error;
use crate::exchange::{self, Exchange};
use crate::fields::{self, Framed};
use crate::limits::Limits;
use crate::status::Status;
use crate::version::Version;

/// A parsed response head, borrowed from the input and from the caller's
/// header array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead<'h, 'b> {
    version: Version,
    status: u16,
    reason: &'b str,
    headers: &'h [Header<'b>],
    framing: Framing,
    keep_alive: bool,
}

impl<'h, 'b> ResponseHead<'h, 'b> {
    /// HTTP/1.0 or HTTP/1.1.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase (possibly empty).
    pub fn reason(&self) -> &'b str {
        self.reason
    }

    /// Whether this is an interim (1xx) response other than `101`: the
    /// final response follows it.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// All header field lines, in order.
    pub fn headers(&self) -> &'h [Header<'b>] {
        self.headers
    }

    /// The value of the first field line named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        fields::first(self.headers, name)
    }

    /// How the body is framed (`Length(0)` for a response that cannot
    /// have one: to `HEAD`, 1xx, 204, 304, a 2xx to `CONNECT`).
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether the connection can carry another request after this
    /// response: not after `Connection: close`, an HTTP/1.0 response
    /// without `keep-alive`, a body read until close, or a response with
    /// both `Transfer-Encoding` and `Content-Length`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }
}

/// Parses one response head to a request with `method` at the start of
/// `buf` (the method decides whether there is a body: RFC 9112 section
/// 6.3). [`ResponseDecoder`] wraps this with the body.
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    method: &str,
    limits: &Limits,
) -> Result<Status<(ResponseHead<'h, 'b>, usize)>, Error> {
    let window = buf.get(..limits.max_head).unwrap_or(buf);
    let mut res = httparse::Response::new(headers);
    let parsed = res.parse(window);
    let used = match exchange::head_status(
        parsed,
        buf,
        limits,
        || version_error(window),
        |_| Error::Malformed("invalid response head"),
    )? {
        Status::Complete(used) => used,
        Status::Partial => return Ok(Status::Partial),
    };
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(Error::Malformed("incomplete status line"));
    };
    let version = exchange::version(minor);
    let reason = res.reason.unwrap_or_default();
    let headers: &'h [Header<'b>] = res.headers;
    let Framed { framing, keep_alive } = fields::response_framing(version, status, method, headers)?;
    Ok(Status::Complete((
        ResponseHead {
            version,
            status,
            reason,
            headers,
            framing,
            keep_alive,
        },
        used,
    )))
}

/// What a version httparse refused means, for the status line in `buf`:
/// the version is its first token.
fn version_error(buf: &[u8]) -> Option<Error> {
    let line = exchange::start_line(buf);
    let end = line.iter().position(|&b| matches!(b, b' ' | b'\r' | b'\n'));
    let version = line.get(..end.unwrap_or(line.len())).unwrap_or_default();
    exchange::version_verdict(version, end.is_some())
}

/// The client side of an HTTP/1.1 connection: decodes the response to each
/// request, without doing any I/O.
///
/// # Calling contract
///
/// The caller owns the read buffer and tells the decoder the method of the
/// request each response answers. For each response:
///
/// 1. [`decode_head`](Self::decode_head) on the buffer, reading more on
///    [`Status::Partial`]; on [`Status::Complete`], drop the returned
///    number of bytes from the front of the buffer. An interim response
///    ([`ResponseHead::is_interim`], such as `100 Continue`) is followed by
///    another head: go back to step 1.
/// 2. [`decode_body`](Self::decode_body) until it says the body is done,
///    dropping the bytes it used and reading more in between. When the
///    connection ends, call [`finish`](Self::finish): it completes a body
///    read until close and reports a truncated one.
/// 3. If the head said [`keep_alive`](ResponseHead::keep_alive), the
///    connection can carry the next request; the bytes after the body were
///    not consumed. After `101 Switching Protocols` the bytes that follow
///    belong to the new protocol and the decoder stops.
///
/// Body bytes are limited by [`Limits::max_body`] (an event stream that
/// should never end wants `u64::MAX`).
///
/// ```
/// use tether_http1::{Framing, Limits, ResponseDecoder, Status, EMPTY_HEADER};
///
/// let mut decoder = ResponseDecoder::new(Limits::default());
/// let wire = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\
///     Content-Length: 5\r\n\r\nhello";
/// let mut headers = [EMPTY_HEADER; 32];
/// let Status::Complete((head, used)) = decoder.decode_head(wire, &mut headers, "GET")? else {
///     unreachable!("the head is all there")
/// };
/// assert_eq!((head.status(), head.framing()), (200, Framing::Length(5)));
/// let mut body = Vec::new();
/// let (_, done) = decoder.decode_body(&wire[used..], &mut body)?;
/// assert!(done);
/// assert_eq!(body, b"hello");
/// # Ok::<(), tether_http1::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseDecoder {
    limits: Limits,
    bare_lf: bool,
    state: Exchange,
}

impl ResponseDecoder {
    /// A decoder for a new connection. Chunk lines must end in CRLF.
    pub fn new(limits: Limits) -> ResponseDecoder {
        ResponseDecoder {
            limits,
            bare_lf: false,
            state: Exchange::Head,
        }
    }

    /// Accept a bare LF where the chunked coding has CRLF, as RFC 9112
    /// section 2.2 allows a recipient to.
    pub fn allow_bare_lf(mut self, allow: bool) -> ResponseDecoder {
        self.bare_lf = allow;
        self
    }

    /// Whether it waits for a response head (not in the middle of a body,
    /// not stopped).
    pub fn is_idle(&self) -> bool {
        self.state == Exchange::Head
    }

    /// Parses the next response head (step 1), for a request with
    /// `method`. [`Error::WrongState`] while a body is still to be read,
    /// or once the decoder has stopped.
    pub fn decode_head<'h, 'b>(
        &mut self,
        buf: &'b [u8],
        headers: &'h mut [Header<'b>],
        method: &str,
    ) -> Result<Status<(ResponseHead<'h, 'b>, usize)>, Error> {
        let (limits, bare_lf) = (&self.limits, self.bare_lf);
        self.state.head(
            || parse_response(buf, headers, method, limits),
            |(head, _)| {
                if head.is_interim() {
                    Exchange::Head
                } else if head.status == 101 {
                    Exchange::Closed
                } else {
                    Exchange::Body {
                        body: BodyDecoder::new(head.framing, limits.max_body, limits.max_head)
                            .allow_bare_lf(bare_lf),
                        keep_alive: head.keep_alive,
                    }
                }
            },
        )
    }

    /// Decodes body bytes from the start of `buf` into `body` (step 2):
    /// how many bytes it used and whether the body is complete.
    pub fn decode_body(&mut self, buf: &[u8], body: &mut Vec<u8>) -> Result<(usize, bool), Error> {
        self.decode_body_with(buf, &mut |bytes| body.extend_from_slice(bytes))
    }

    /// [`ResponseDecoder::decode_body`] handing the body to `sink` as
    /// slices of `buf`, without a copy.
    pub fn decode_body_with(
        &mut self,
        buf: &[u8],
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(usize, bool), Error> {
        self.state.body(buf, sink)
    }

    /// The connection has ended (step 2): `Ok` if the body is complete,
    /// which a body read until close now is; [`Error::IncompleteBody`] if
    /// it was cut short. The decoder stops either way.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.state.finish()
    }
}
