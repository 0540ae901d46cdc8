//! Writing heads and chunked bodies into a buffer the caller owns.

use alloc::vec::Vec;

use crate::body::Framing;
use crate::error::Error;
use crate::syntax::{is_token, write_decimal};

/// Writes `HTTP/1.1 100 Continue`, the go-ahead for a request that sent
/// `Expect: 100-continue`.
pub fn write_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// The reason phrase of the statuses RFC 9110 defines (and 429, 431 from
/// RFC 6585), or `""`.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Writes `name: value` lines, refusing what would break the head and the
/// fields the writer sets itself.
fn write_headers(out: &mut Vec<u8>, headers: &[(&str, &str)]) -> Result<(), Error> {
    for (name, value) in headers {
        if !is_token(name.as_bytes()) || value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(Error::InvalidHeader);
        }
        if ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r))
        {
            return Err(Error::ReservedHeader);
        }
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.trim_matches([' ', '\t']).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

/// A response head to write: status, fields, and whether the connection
/// closes after it. The writer adds the framing (`Content-Length` or
/// `Transfer-Encoding: chunked`) and `Connection: close`.
///
/// ```
/// use tether_http1::Response;
///
/// let mut out = Vec::new();
/// Response::new(200)
///     .headers(&[("Content-Type", "text/plain")])
///     .write(&mut out, b"ok")?;
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok");
///
/// // The same to HEAD: GET's headers, no body.
/// out.clear();
/// Response::new(200).head_request(true).write(&mut out, b"ok")?;
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
///
/// // A chunked body, closing the connection after it.
/// out.clear();
/// let mut body = Response::new(200).close(true).write_chunked(&mut out)?;
/// body.chunk(&mut out, b"hello");
/// body.finish(&mut out);
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n\
///     5\r\nhello\r\n0\r\n\r\n");
/// # Ok::<(), tether_http1::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    status: u16,
    reason: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
    close: bool,
    head_request: bool,
}

impl<'a> Response<'a> {
    /// A response with `status` and its usual reason phrase.
    pub fn new(status: u16) -> Response<'a> {
        Response {
            status,
            reason: None,
            headers: &[],
            close: false,
            head_request: false,
        }
    }

    /// Another reason phrase.
    pub fn reason(mut self, reason: &'a str) -> Response<'a> {
        self.reason = Some(reason);
        self
    }

    /// The header fields, other than the framing ones and `Connection`.
    pub fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Response<'a> {
        self.headers = headers;
        self
    }

    /// Whether the connection closes after this response (adds
    /// `Connection: close`). Use `!head.keep_alive()` of the request, or
    /// true after an error.
    pub fn close(mut self, close: bool) -> Response<'a> {
        self.close = close;
        self
    }

    /// Whether this answers a `HEAD` request: the same head as to `GET`,
    /// no body (RFC 9110 section 9.3.2).
    pub fn head_request(mut self, head_request: bool) -> Response<'a> {
        self.head_request = head_request;
        self
    }

    /// Whether the status allows no body, and no framing fields either
    /// (RFC 9110 sections 8.6, 15.3.5, 15.4.5).
    fn bodiless(&self) -> bool {
        (100..200).contains(&self.status) || self.status == 204 || self.status == 304
    }

    fn write_status_line(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let reason = self.reason.unwrap_or(reason_phrase(self.status));
        if !(100..=999).contains(&self.status)
            || reason
                .bytes()
                .any(|b| !(b == b'\t' || b == b' ' || (b'!'..=b'~').contains(&b) || b >= 0x80))
        {
            return Err(Error::InvalidArgument);
        }
        out.extend_from_slice(b"HTTP/1.1 ");
        write_decimal(out, u64::from(self.status));
        out.push(b' ');
        out.extend_from_slice(reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    fn write_head(&self, out: &mut Vec<u8>, framing: Option<Framing>) -> Result<(), Error> {
        let start = out.len();
        let result = (|| {
            self.write_status_line(out)?;
            write_headers(out, self.headers)?;
            if self.close {
                out.extend_from_slice(b"Connection: close\r\n");
            }
            match framing {
                _ if self.bodiless() => {}
                Some(Framing::Length(n)) => {
                    out.extend_from_slice(b"Content-Length: ");
                    write_decimal(out, n);
                    out.extend_from_slice(b"\r\n");
                }
                Some(Framing::Chunked) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
                Some(Framing::UntilClose) | None => {}
            }
            out.extend_from_slice(b"\r\n");
            Ok(())
        })();
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    /// Writes the head with `Content-Length` and then `body` (not to
    /// `HEAD`, and not for 1xx, 204 and 304, which have neither).
    pub fn write(&self, out: &mut Vec<u8>, body: &[u8]) -> Result<(), Error> {
        self.write_head(out, Some(Framing::Length(body.len() as u64)))?;
        if !self.head_request && !self.bodiless() {
            out.extend_from_slice(body);
        }
        Ok(())
    }

    /// Writes the head with `Content-Length: length`, for a body the
    /// caller writes itself (such as with a vectored write) when
    /// [`Response::has_body`].
    pub fn write_sized_head(&self, out: &mut Vec<u8>, length: u64) -> Result<(), Error> {
        self.write_head(out, Some(Framing::Length(length)))
    }

    /// Writes the head with `Transfer-Encoding: chunked`, and returns the
    /// encoder for the body (which writes nothing for a `HEAD` request or
    /// a bodiless status).
    pub fn write_chunked(&self, out: &mut Vec<u8>) -> Result<ChunkedEncoder, Error> {
        self.write_head(out, Some(Framing::Chunked))?;
        Ok(ChunkedEncoder {
            silent: !self.has_body(),
            finished: false,
        })
    }

    /// Writes the head of a body that ends when the connection does (for
    /// an HTTP/1.0 client, which knows no chunked coding): always with
    /// `Connection: close`.
    pub fn write_until_close(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        Response { close: true, ..*self }.write_head(out, Some(Framing::UntilClose))
    }

    /// Whether body bytes follow the head: false for a `HEAD` request and
    /// for 1xx, 204 and 304.
    pub fn has_body(&self) -> bool {
        !self.head_request && !self.bodiless()
    }
}

/// Writes a request head (for a client or a load generator), with the
/// framing of its body: `Framing::Length(n)` (no field for 0) or
/// `Framing::Chunked` (then use a [`ChunkedEncoder`] from
/// [`ChunkedEncoder::new`]).
///
/// ```
/// use tether_http1::{write_request, Framing};
///
/// let mut out = Vec::new();
/// write_request(&mut out, "POST", "/topics/news", "example.com", &[], Framing::Length(5))?;
/// out.extend_from_slice(b"hello");
/// assert_eq!(out, b"POST /topics/news HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello");
/// # Ok::<(), tether_http1::Error>(())
/// ```
pub fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    target: &str,
    host: &str,
    headers: &[(&str, &str)],
    framing: Framing,
) -> Result<(), Error> {
    let target_ok = !target.is_empty() && target.bytes().all(|b| b.is_ascii_graphic());
    if !is_token(method.as_bytes()) || !target_ok || framing == Framing::UntilClose {
        return Err(Error::InvalidArgument);
    }
    if host.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(Error::InvalidHeader);
    }
    let start = out.len();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Err(e) = write_headers(out, headers) {
        out.truncate(start);
        return Err(e);
    }
    match framing {
        Framing::Length(0) | Framing::UntilClose => {}
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            write_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// Encodes a body in the chunked transfer coding (RFC 9112 section 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedEncoder {
    silent: bool,
    finished: bool,
}

impl ChunkedEncoder {
    /// An encoder for a body whose head the caller wrote (such as with
    /// [`write_request`]).
    pub fn new() -> ChunkedEncoder {
        ChunkedEncoder {
            silent: false,
            finished: false,
        }
    }

    /// Writes `data` as one chunk. An empty `data` writes nothing (a chunk
    /// of size 0 would end the body).
    pub fn chunk(&mut self, out: &mut Vec<u8>, data: &[u8]) {
        if data.is_empty() || self.silent || self.finished {
            return;
        }
        self.chunk_header(out, data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }

    /// Writes only the size line of a chunk of `len` bytes, for a caller
    /// that writes the data itself (a vectored write) and then
    /// [`ChunkedEncoder::chunk_end`].
    pub fn chunk_header(&mut self, out: &mut Vec<u8>, len: usize) {
        if len == 0 || self.silent || self.finished {
            return;
        }
        let mut digits = [0u8; 16];
        let mut i = digits.len();
        let mut n = len as u64;
        while n != 0 {
            i = i.saturating_sub(1);
            if let Some(d) = digits.get_mut(i) {
                *d = b"0123456789abcdef"
                    .get(usize::try_from(n % 16).unwrap_or(0))
                    .copied()
                    .unwrap_or(b'0');
            }
            n /= 16;
        }
        out.extend_from_slice(digits.get(i..).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
    }

    /// The CRLF after a chunk's data written by the caller.
    pub fn chunk_end(&mut self, out: &mut Vec<u8>) {
        if !self.silent && !self.finished {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Ends the body: the last chunk and an empty trailer section. Only
    /// the first call writes anything.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.silent && !self.finished {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        self.finished = true;
    }
}

impl Default for ChunkedEncoder {
    fn default() -> ChunkedEncoder {
        ChunkedEncoder::new()
    }
}
