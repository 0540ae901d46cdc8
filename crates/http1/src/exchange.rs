//! What the request and the response decoders share: the head parse's
//! outcome and the head-then-body cycle of one connection.

use crate::body::BodyDecoder;
use crate::error::Error;
use crate::limits::Limits;
use crate::status::Status;
use crate::version::Version;

/// What httparse's answer on a head means. `buf` is the whole input (a
/// partial head already as long as the limit is too large); a refused
/// version is judged by `version_error`, on what was read so far; other
/// refusals are mapped by `other`.
pub(crate) fn head_status(
    parsed: httparse::Result<usize>,
    buf: &[u8],
    limits: &Limits,
    version_error: impl FnOnce() -> Option<Error>,
    other: impl FnOnce(httparse::Error) -> Error,
) -> Result<Status<usize>, Error> {
    let full = buf.len() >= limits.max_head;
    match parsed {
        Ok(httparse::Status::Complete(used)) => Ok(Status::Complete(used)),
        Ok(httparse::Status::Partial) if full => Err(Error::HeadTooLarge),
        Ok(httparse::Status::Partial) => Ok(Status::Partial),
        Err(httparse::Error::TooManyHeaders) => Err(Error::TooManyHeaders),
        Err(httparse::Error::Version) => match version_error() {
            Some(e) => Err(e),
            None if full => Err(Error::HeadTooLarge),
            None => Ok(Status::Partial),
        },
        Err(e) => Err(other(e)),
    }
}

/// What a refused version token means (RFC 9112 section 2.3): a
/// well-formed `HTTP/x.y` is one not spoken here (505), anything else is
/// malformed (400). httparse refuses at the first byte it dislikes, so
/// the token may not be `complete` yet: `None` while what follows could
/// still make it well-formed, so that the verdict does not depend on how
/// the bytes were split.
pub(crate) fn version_verdict(version: &[u8], complete: bool) -> Option<Error> {
    const PATTERN: &[u8; 8] = b"HTTP/0.0";
    let fits = version.len() <= PATTERN.len()
        && version.iter().zip(PATTERN).all(|(&b, &p)| match p {
            b'0' => b.is_ascii_digit(),
            _ => b == p,
        });
    match (fits, complete) {
        (true, true) if version.len() == PATTERN.len() => Some(Error::UnsupportedVersion),
        (true, false) => None,
        _ => Some(Error::Malformed("invalid HTTP version")),
    }
}

/// `buf` from its start line on: without the empty lines a recipient
/// ignores before it (RFC 9112 section 2.2), as httparse does.
pub(crate) fn start_line(buf: &[u8]) -> &[u8] {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    buf.get(start..).unwrap_or_default()
}

/// HTTP/1.`minor` (httparse accepts only 0 and 1).
pub(crate) fn version(minor: u8) -> Version {
    if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    }
}

/// Where a decoder is: waiting for a head, inside a body, or stopped (after
/// an error, a connection that does not persist, or a protocol switch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exchange {
    Head,
    Body { body: BodyDecoder, keep_alive: bool },
    Closed,
}

impl Exchange {
    /// Parses a head with `parse` if one is due ([`Error::WrongState`]
    /// otherwise), then moves on to what `next` says follows a complete
    /// head; an error stops the decoder.
    pub(crate) fn head<T>(
        &mut self,
        parse: impl FnOnce() -> Result<Status<T>, Error>,
        next: impl FnOnce(&T) -> Exchange,
    ) -> Result<Status<T>, Error> {
        if *self != Exchange::Head {
            return Err(Error::WrongState);
        }
        let result = parse();
        *self = match &result {
            Ok(Status::Complete(head)) => next(head),
            Ok(Status::Partial) => Exchange::Head,
            Err(_) => Exchange::Closed,
        };
        result
    }

    /// Decodes body bytes from the start of `buf` into `sink`: how many it
    /// used and whether the body is complete, after which the next head is
    /// due (or the decoder stops, if the connection does not persist).
    pub(crate) fn body(&mut self, buf: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<(usize, bool), Error> {
        let Exchange::Body { body, keep_alive } = self else {
            return Err(Error::WrongState);
        };
        let keep_alive = *keep_alive;
        match body.decode_with(buf, sink) {
            Ok((used, true)) => {
                *self = if keep_alive {
                    Exchange::Head
                } else {
                    Exchange::Closed
                };
                Ok((used, true))
            }
            Ok(partial) => Ok(partial),
            Err(e) => {
                *self = Exchange::Closed;
                Err(e)
            }
        }
    }

    /// The connection has ended: whether the body in progress, if any, is
    /// complete. The decoder stops either way.
    pub(crate) fn finish(&mut self) -> Result<(), Error> {
        let result = match self {
            Exchange::Body { body, .. } => body.finish(),
            Exchange::Head | Exchange::Closed => Ok(()),
        };
        *self = Exchange::Closed;
        result
    }
}
