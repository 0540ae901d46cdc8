//! A refused handshake: its status, its reason, and the HTTP response
//! that answers it.

use alloc::borrow::Cow;
use alloc::string::ToString;
use alloc::vec::Vec;

use crate::error::Error;
use crate::http::{write_decimal, write_header};

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
///
/// [`Policy`]: crate::server::config::Policy
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: u16,
    reason: Cow<'static, str>,
    error: Option<Error>,
}

impl Rejection {
    /// A 403 refusal, for a [`Policy`].
    ///
    /// [`Policy`]: crate::server::config::Policy
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
