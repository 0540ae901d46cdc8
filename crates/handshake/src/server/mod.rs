//! Server role: validate an upgrade request, run the policy and the
//! negotiators, and write the 101 response or the rejection.
//!
//! Reading the request head is here; beside it, `upgrade.rs` validates
//! the upgrade and writes the 101 response, `cookies.rs` reads cookies,
//! `config.rs` holds the server's settings and policy, and `rejection.rs`
//! answers a refused handshake.

mod config;
mod cookies;
mod rejection;
mod upgrade;

use alloc::vec;
use alloc::vec::Vec;

use httparse::{Header, Status};

pub use config::{Policy, ServerConfig};
pub use cookies::Cookies;
pub use rejection::Rejection;
pub use upgrade::{Accepted, UpgradeRequest};

use crate::error::Error;

/// How many header lines [`parse_request`] and
/// [`ClientHandshake`](crate::client::ClientHandshake) accept by default. Browsers
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
