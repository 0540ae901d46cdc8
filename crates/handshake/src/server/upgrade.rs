//! A request that passed every RFC 6455 check, and its acceptance: the
//! subprotocol, the extensions, and the 101 response.

use alloc::vec::Vec;

use base64::Engine as _;

use super::RequestHead;
use super::cookies::Cookies;
use crate::accept::accept_key;
use crate::error::Error;
use crate::extension::{self, Extension, ExtensionNegotiator, NegotiatedExtension};
use crate::http::{
    check_extra_headers, is_token, list_elements, lists_token, single, utf8, values, write_header,
};

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
    ///    (400); see [`parse_extensions`](crate::extension::parse_extensions).
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
    ///
    /// [`ServerConfig::accept`]: crate::server::config::ServerConfig::accept
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
