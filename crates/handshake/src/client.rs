//! Client role: write the upgrade request and validate the 101 response.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use base64::Engine as _;
use httparse::{Header, Status};

use crate::accept::accept_key;
use crate::error::Error;
use crate::extension::{self, Extension};
use crate::http::{
    check_extra_headers, is_field_value, is_token, lists_token, single, utf8, values, write_header,
};
use crate::server::DEFAULT_MAX_HEADERS;

/// Headers the request writes itself, so extra ones cannot repeat them.
const REQUEST_HEADERS: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Origin",
    "Content-Length",
    "Transfer-Encoding",
];

/// What a client puts in its upgrade request. Borrowed, built with chained
/// setters, written by [`write`](Self::write).
///
/// The caller supplies the 16 random bytes of the key (RFC 6455 section
/// 4.1 wants them freshly random for each connection), so this crate needs
/// no random number generator.
///
/// ```
/// use tether_handshake::ClientRequest;
///
/// let mut out = Vec::new();
/// let handshake = ClientRequest::new("example.com:8080", "/chat?room=1", *b"the sample nonce")
///     .protocols(&["chat.v2", "chat.v1"])
///     .extensions("permessage-deflate; client_max_window_bits")
///     .origin("https://example.com")
///     .headers(&[("Authorization", "Bearer abc")])
///     .write(&mut out)?;
/// assert!(out.starts_with(b"GET /chat?room=1 HTTP/1.1\r\nHost: example.com:8080\r\n"));
/// assert_eq!(handshake.expected_accept(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// # Ok::<(), tether_handshake::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest<'a> {
    host: &'a str,
    target: &'a str,
    nonce: [u8; 16],
    protocols: &'a [&'a str],
    extensions: Option<&'a str>,
    origin: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
}

impl<'a> ClientRequest<'a> {
    /// A request for `target` (path and query, starting with `/`) on
    /// `host` (with the port when it is not the scheme's default), keyed
    /// with `nonce`.
    pub fn new(host: &'a str, target: &'a str, nonce: [u8; 16]) -> Self {
        Self {
            host,
            target,
            nonce,
            protocols: &[],
            extensions: None,
            origin: None,
            headers: &[],
        }
    }

    /// Subprotocols to offer, most preferred first. Each must be a token
    /// and appear once (RFC 6455 section 4.1).
    pub fn protocols(mut self, protocols: &'a [&'a str]) -> Self {
        self.protocols = protocols;
        self
    }

    /// The `Sec-WebSocket-Extensions` value to offer, e.g. built with
    /// [`ExtensionParams::element`](crate::extension::ExtensionParams::element). It
    /// must parse per RFC 6455 section 9.1.
    pub fn extensions(mut self, offer: &'a str) -> Self {
        self.extensions = Some(offer);
        self
    }

    /// An `Origin` header, as browsers send.
    pub fn origin(mut self, origin: &'a str) -> Self {
        self.origin = Some(origin);
        self
    }

    /// Extra headers (e.g. `Authorization`, `Cookie`), written after the
    /// handshake's own; they may not repeat those.
    pub fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    /// Appends the request head to `out` and returns what is needed to
    /// check the response. Everything is checked before anything is
    /// written; a value that would make a malformed head is
    /// [`Error::InvalidArgument`].
    pub fn write(&self, out: &mut Vec<u8>) -> Result<ClientHandshake, Error> {
        if self.host.is_empty() || !self.host.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidArgument("host must be non-empty visible ASCII"));
        }
        if !self.target.starts_with('/') || !self.target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidArgument(
                "target must start with / and be visible ASCII",
            ));
        }
        for (i, p) in self.protocols.iter().enumerate() {
            if !is_token(p.as_bytes()) {
                return Err(Error::InvalidArgument("subprotocol is not a token"));
            }
            if self.protocols.iter().take(i).any(|q| q == p) {
                return Err(Error::InvalidArgument("subprotocol offered twice"));
            }
        }
        let offered_extensions = match self.extensions {
            None => Vec::new(),
            Some(offer) => {
                let parsed = extension::parse_extensions(offer)
                    .map_err(|_| Error::InvalidArgument("malformed extensions offer"))?;
                if parsed.is_empty() {
                    return Err(Error::InvalidArgument("empty extensions offer"));
                }
                parsed.iter().map(|e| e.name().to_string()).collect()
            }
        };
        if self.origin.is_some_and(|o| !is_field_value(o)) {
            return Err(Error::InvalidArgument("origin contains a control character"));
        }
        check_extra_headers(self.headers, REQUEST_HEADERS)?;

        let mut key = [0u8; 24];
        base64::engine::general_purpose::STANDARD
            .encode_slice(self.nonce, &mut key)
            .map_err(|_| Error::InvalidArgument("nonce"))?;

        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        write_header(out, "Host", self.host.as_bytes());
        write_header(out, "Upgrade", b"websocket");
        write_header(out, "Connection", b"Upgrade");
        write_header(out, "Sec-WebSocket-Key", &key);
        write_header(out, "Sec-WebSocket-Version", b"13");
        if let Some(o) = self.origin {
            write_header(out, "Origin", o.as_bytes());
        }
        if !self.protocols.is_empty() {
            out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
            for (i, p) in self.protocols.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(p.as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        if let Some(e) = self.extensions {
            write_header(out, "Sec-WebSocket-Extensions", e.as_bytes());
        }
        for (name, value) in self.headers {
            write_header(out, name, value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");

        Ok(ClientHandshake {
            accept: accept_key(&key),
            protocols: self.protocols.iter().map(|p| p.to_string()).collect(),
            extensions: offered_extensions,
            max_headers: DEFAULT_MAX_HEADERS,
        })
    }
}

/// What a client remembers between sending its request and reading the
/// response: the expected accept value and what it offered. Owns its data,
/// so it can live in the connection state while bytes arrive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHandshake {
    accept: [u8; 28],
    protocols: Vec<String>,
    extensions: Vec<String>,
    max_headers: usize,
}

impl ClientHandshake {
    /// The `Sec-WebSocket-Accept` value the server must send.
    pub fn expected_accept(&self) -> &str {
        // base64 output is ASCII.
        core::str::from_utf8(&self.accept).unwrap_or_default()
    }

    /// Changes the limit on response header lines (default
    /// [`DEFAULT_MAX_HEADERS`]); more is
    /// [`Error::Http`]`(TooManyHeaders)`.
    pub fn with_max_headers(mut self, max_headers: usize) -> Self {
        self.max_headers = max_headers;
        self
    }

    /// Parses and checks the server's response head (RFC 6455 section 4.1).
    ///
    /// Call it with everything received so far, from the start; until the
    /// head is complete it returns `Ok(Status::Partial)`. `Complete`
    /// carries the number of bytes the head used: the bytes after it are
    /// already WebSocket frames. In order, the checks are:
    ///
    /// 1. valid HTTP/1.1 head ([`Error::Http`], [`Error::HttpVersion`]);
    /// 2. status 101, else [`Error::UnexpectedStatus`];
    /// 3. `Upgrade` lists `websocket`, `Connection` lists `Upgrade`
    ///    ([`Error::NotUpgrade`]);
    /// 4. exactly one `Sec-WebSocket-Accept`, equal to the expected value
    ///    ([`Error::MissingHeader`], [`Error::DuplicateHeader`],
    ///    [`Error::AcceptMismatch`]);
    /// 5. at most one `Sec-WebSocket-Protocol`, a single token that the
    ///    client offered ([`Error::InvalidHeader`],
    ///    [`Error::UnexpectedProtocol`]);
    /// 6. `Sec-WebSocket-Extensions` parses, and names only extensions the
    ///    client offered ([`Error::InvalidHeader`],
    ///    [`Error::UnexpectedExtension`]). Whether their parameters are
    ///    acceptable is for the caller's extension code to decide.
    pub fn validate_response<'b>(&self, buf: &'b [u8]) -> Result<Status<(Response<'b>, usize)>, Error> {
        let mut headers = vec![httparse::EMPTY_HEADER; self.max_headers];
        let mut res = httparse::Response::new(&mut headers);
        let used = match res.parse(buf).map_err(Error::Http)? {
            Status::Complete(n) => n,
            Status::Partial => return Ok(Status::Partial),
        };
        let (Some(version), Some(code)) = (res.version, res.code) else {
            // httparse fills both before it reports Complete.
            return Ok(Status::Partial);
        };
        let count = res.headers.len();
        headers.truncate(count);
        if version < 1 {
            return Err(Error::HttpVersion);
        }
        if code != 101 {
            return Err(Error::UnexpectedStatus(code));
        }
        if !lists_token(&headers, "Upgrade", "websocket") || !lists_token(&headers, "Connection", "Upgrade") {
            return Err(Error::NotUpgrade);
        }
        match single(&headers, "Sec-WebSocket-Accept")? {
            None => return Err(Error::MissingHeader("Sec-WebSocket-Accept")),
            Some(a) if a == self.accept => {}
            Some(_) => return Err(Error::AcceptMismatch),
        }
        let protocol = match single(&headers, "Sec-WebSocket-Protocol")? {
            None => None,
            Some(p) if !is_token(p) => return Err(Error::InvalidHeader("Sec-WebSocket-Protocol")),
            Some(p) => {
                let p = utf8(p, "Sec-WebSocket-Protocol")?;
                if !self.protocols.iter().any(|o| o == p) {
                    return Err(Error::UnexpectedProtocol);
                }
                Some(p)
            }
        };
        let mut extensions = Vec::new();
        for value in values(&headers, "Sec-WebSocket-Extensions") {
            let value = utf8(value, "Sec-WebSocket-Extensions")?;
            extension::parse_extensions_into(value, &mut extensions)?;
        }
        if extensions
            .iter()
            .any(|e| !self.extensions.iter().any(|o| e.is(o)))
        {
            return Err(Error::UnexpectedExtension);
        }
        Ok(Status::Complete((
            Response {
                protocol,
                extensions,
                headers,
            },
            used,
        )))
    }
}

/// A validated 101 response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<'b> {
    protocol: Option<&'b str>,
    extensions: Vec<Extension<'b>>,
    headers: Vec<Header<'b>>,
}

impl<'b> Response<'b> {
    /// The subprotocol the server selected, if any (one the client
    /// offered).
    pub fn protocol(&self) -> Option<&'b str> {
        self.protocol
    }

    /// The extensions the server accepted, in the order they apply: hand
    /// them to the extension code that made the offer, which must fail the
    /// connection if their parameters are unacceptable.
    pub fn extensions(&self) -> &[Extension<'b>] {
        &self.extensions
    }

    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        values(&self.headers, name).next()
    }

    /// All header lines, in order.
    pub fn headers(&self) -> &[Header<'b>] {
        &self.headers
    }
}
