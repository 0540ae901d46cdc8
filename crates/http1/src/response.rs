//! The client side: response heads and the response decoder.

use httparse::Header;

use crate::body::{BodyDecoder, Framing};
use crate::fields::{self, Framed};
use crate::{Error, Limits, Status, Version};

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
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
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
    let used = match res.parse(window) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head => return Err(Error::HeadTooLarge),
        Ok(httparse::Status::Partial) => return Ok(Status::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::TooManyHeaders),
        Err(httparse::Error::Version) => {
            let start = window
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(window.len());
            let line = window.get(start..).unwrap_or_default();
            let end = line.iter().position(|&b| matches!(b, b' ' | b'\r' | b'\n'));
            let version = line.get(..end.unwrap_or(line.len())).unwrap_or_default();
            return match crate::request::version_verdict(version, end.is_some()) {
                Some(e) => Err(e),
                None if buf.len() >= limits.max_head => Err(Error::HeadTooLarge),
                None => Ok(Status::Partial),
            };
        }
        Err(_) => return Err(Error::Malformed("invalid response head")),
    };
    let (Some(minor), Some(status)) = (res.version, res.code) else {
        return Err(Error::Malformed("incomplete status line"));
    };
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Head,
    Body { body: BodyDecoder, keep_alive: bool },
    Closed,
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
    state: State,
}

impl ResponseDecoder {
    /// A decoder for a new connection. Chunk lines must end in CRLF.
    pub fn new(limits: Limits) -> ResponseDecoder {
        ResponseDecoder {
            limits,
            bare_lf: false,
            state: State::Head,
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
        self.state == State::Head
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
        if self.state != State::Head {
            return Err(Error::WrongState);
        }
        match parse_response(buf, headers, method, &self.limits) {
            Ok(Status::Complete((head, used))) => {
                self.state = if head.is_interim() {
                    State::Head
                } else if head.status == 101 {
                    State::Closed
                } else {
                    let body = BodyDecoder::new(head.framing, self.limits.max_body, self.limits.max_head)
                        .allow_bare_lf(self.bare_lf);
                    State::Body {
                        body,
                        keep_alive: head.keep_alive,
                    }
                };
                Ok(Status::Complete((head, used)))
            }
            Ok(Status::Partial) => Ok(Status::Partial),
            Err(e) => {
                self.state = State::Closed;
                Err(e)
            }
        }
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
        let State::Body { body, keep_alive } = &mut self.state else {
            return Err(Error::WrongState);
        };
        let keep_alive = *keep_alive;
        match body.decode_with(buf, sink) {
            Ok((used, true)) => {
                self.state = if keep_alive { State::Head } else { State::Closed };
                Ok((used, true))
            }
            Ok(partial) => Ok(partial),
            Err(e) => {
                self.state = State::Closed;
                Err(e)
            }
        }
    }

    /// The connection has ended (step 2): `Ok` if the body is complete,
    /// which a body read until close now is; [`Error::IncompleteBody`] if
    /// it was cut short. The decoder stops either way.
    pub fn finish(&mut self) -> Result<(), Error> {
        let result = match &mut self.state {
            State::Body { body, .. } => body.finish(),
            State::Head | State::Closed => Ok(()),
        };
        self.state = State::Closed;
        result
    }
}
