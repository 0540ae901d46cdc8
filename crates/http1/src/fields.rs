//! The header fields that decide framing and connection handling, read the
//! same way for requests and responses.

use httparse::Header;

use crate::syntax::{list_elements, trim_ows};

use crate::body::Framing;
use crate::error::Error;
use crate::version::Version;

/// The elements of every field line named `name`, as one comma-separated
/// list (RFC 9110 section 5.3), trimmed of whitespace; empty elements are
/// skipped, as section 5.6.1 asks of a recipient.
pub(crate) fn list<'b>(headers: &[Header<'b>], name: &'static str) -> impl Iterator<Item = &'b [u8]> {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| list_elements(h.value))
}

/// The value of the first field line named `name` (case-insensitive).
pub(crate) fn first<'b>(headers: &[Header<'b>], name: &str) -> Option<&'b [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

pub(crate) fn has(headers: &[Header<'_>], name: &str) -> bool {
    headers.iter().any(|h| h.name.eq_ignore_ascii_case(name))
}

/// What `Connection`, `Transfer-Encoding` and `Content-Length` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framed {
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
}

/// The `Connection` options: (close, keep-alive).
fn connection(headers: &[Header<'_>]) -> (bool, bool) {
    let mut close = false;
    let mut keep_alive = false;
    for option in list(headers, "connection") {
        close |= option.eq_ignore_ascii_case(b"close");
        keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
    }
    (close, keep_alive)
}

/// Keep-alive by RFC 9112 section 9.3: `close` ends it; otherwise 1.1
/// persists and 1.0 only with `keep-alive`.
pub(crate) fn keep_alive(version: Version, headers: &[Header<'_>]) -> bool {
    let (close, keep_alive) = connection(headers);
    !close && (version == Version::Http11 || keep_alive)
}

/// The value of `Content-Length`: one decimal number, or a list of
/// identical ones (RFC 9110 section 8.6).
pub(crate) fn content_length(headers: &[Header<'_>]) -> Result<Option<u64>, Error> {
    let mut length = None;
    let mut seen = false;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        seen = true;
        for element in h.value.split(|&b| b == b',').map(trim_ows) {
            let value = decimal(element).ok_or(Error::BadContentLength)?;
            if length.is_some_and(|l| l != value) {
                return Err(Error::BadContentLength);
            }
            length = Some(value);
        }
    }
    if seen && length.is_none() {
        return Err(Error::BadContentLength);
    }
    Ok(length)
}

fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        if d.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        } else {
            None
        }
    })
}

/// How `Transfer-Encoding` frames the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// No `Transfer-Encoding` field.
    None,
    /// Chunked is the final coding and the only one.
    Chunked,
    /// Chunked is final, other codings come before it.
    OtherThenChunked,
    /// Chunked is not the final coding (or not there at all).
    NotChunkedLast,
    /// Chunked more than once, or an empty field.
    Invalid,
}

pub(crate) fn transfer_coding(headers: &[Header<'_>]) -> Coding {
    if !has(headers, "transfer-encoding") {
        return Coding::None;
    }
    let mut chunked = 0usize;
    let mut others = 0usize;
    let mut last_is_chunked = false;
    for coding in list(headers, "transfer-encoding") {
        last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if last_is_chunked {
            chunked = chunked.saturating_add(1);
        } else {
            others = others.saturating_add(1);
        }
    }
    match (chunked, others, last_is_chunked) {
        (0, 0, _) => Coding::Invalid,
        (2.., _, _) => Coding::Invalid,
        (_, _, false) => Coding::NotChunkedLast,
        (_, 0, true) => Coding::Chunked,
        (_, _, true) => Coding::OtherThenChunked,
    }
}

/// Framing and keep-alive of a request, by RFC 9112 section 6.3 as a
/// server must apply it.
pub(crate) fn request_framing(version: Version, headers: &[Header<'_>]) -> Result<Framed, Error> {
    let coding = transfer_coding(headers);
    let length = content_length(headers);
    let framing = match coding {
        Coding::None => Framing::Length(length?.unwrap_or(0)),
        _ if has(headers, "content-length") => return Err(Error::ContentLengthWithTransferEncoding),
        // Section 6.1: an HTTP/1.0 recipient cannot know chunked; treat the
        // framing as faulty rather than guess.
        _ if version == Version::Http10 => return Err(Error::BadTransferEncoding),
        Coding::Chunked => Framing::Chunked,
        Coding::OtherThenChunked => return Err(Error::UnsupportedTransferCoding),
        Coding::NotChunkedLast | Coding::Invalid => return Err(Error::BadTransferEncoding),
    };
    Ok(Framed {
        framing,
        keep_alive: keep_alive(version, headers),
    })
}

/// Framing and keep-alive of a response to a request with `method`, by
/// RFC 9112 section 6.3 as a client applies it.
pub(crate) fn response_framing(
    version: Version,
    status: u16,
    method: &str,
    headers: &[Header<'_>],
) -> Result<Framed, Error> {
    let keep_alive = keep_alive(version, headers);
    // Items 1 and 2: no body whatever the fields say.
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
        || (method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&status))
    {
        return Ok(Framed {
            framing: Framing::Length(0),
            keep_alive,
        });
    }
    let framing = match transfer_coding(headers) {
        Coding::None => match content_length(headers)? {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        },
        _ if version == Version::Http10 => return Err(Error::BadTransferEncoding),
        Coding::Chunked | Coding::OtherThenChunked => Framing::Chunked,
        Coding::NotChunkedLast => Framing::UntilClose,
        Coding::Invalid => return Err(Error::BadTransferEncoding),
    };
    // Transfer-Encoding overrides Content-Length (item 3), but such a
    // response may be an attempt at response splitting: do not reuse the
    // connection. Nor one whose body ends with it.
    let suspicious = framing == Framing::Chunked && has(headers, "content-length");
    Ok(Framed {
        framing,
        keep_alive: keep_alive && !suspicious && framing != Framing::UntilClose,
    })
}
