//! Small HTTP/1.1 helpers shared by both roles: header lookup, field
//! values and the bits of response writing they share. The grammar itself
//! (tokens, lists, whitespace, decimals) is tether-http1's.

use alloc::vec::Vec;
use httparse::Header;

use crate::error::Error;

pub(crate) use tether_http1::syntax::{is_tchar, is_token, list_elements, trim_ows, write_decimal};

/// Values of every header called `name` (case-insensitive), in order.
pub(crate) fn values<'a, 'h>(
    headers: &'h [Header<'a>],
    name: &'h str,
) -> impl Iterator<Item = &'a [u8]> + 'h {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// The value of a header that may appear at most once, trimmed.
pub(crate) fn single<'a>(headers: &[Header<'a>], name: &'static str) -> Result<Option<&'a [u8]>, Error> {
    let mut it = values(headers, name);
    let first = it.next();
    if it.next().is_some() {
        return Err(Error::DuplicateHeader(name));
    }
    Ok(first.map(trim_ows))
}

/// Whether any header called `name` lists `token` (ASCII case-insensitive).
pub(crate) fn lists_token(headers: &[Header<'_>], name: &str, token: &str) -> bool {
    values(headers, name)
        .flat_map(list_elements)
        .any(|e| e.eq_ignore_ascii_case(token.as_bytes()))
}

pub(crate) fn utf8<'a>(value: &'a [u8], name: &'static str) -> Result<&'a str, Error> {
    core::str::from_utf8(value).map_err(|_| Error::InvalidHeader(name))
}

/// A field value this crate is willing to write: no control characters but
/// HTAB, so nothing can end the line early or smuggle a header.
pub(crate) fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Checks caller-supplied extra headers before anything is written, so a
/// bad one leaves the output untouched.
pub(crate) fn check_extra_headers(extra: &[(&str, &str)], reserved: &[&str]) -> Result<(), Error> {
    for (name, value) in extra {
        if !is_token(name.as_bytes()) {
            return Err(Error::InvalidArgument("extra header name is not a token"));
        }
        if !is_field_value(value) {
            return Err(Error::InvalidArgument(
                "extra header value contains a control character",
            ));
        }
        if reserved.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            return Err(Error::InvalidArgument(
                "extra header would repeat one the handshake writes itself",
            ));
        }
    }
    Ok(())
}

pub(crate) fn write_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_is_case_insensitive_and_detects_duplicates() {
        let headers = [
            Header {
                name: "Connection",
                value: b"keep-alive",
            },
            Header {
                name: "CONNECTION",
                value: b"Upgrade",
            },
            Header {
                name: "x",
                value: b" v ",
            },
        ];
        assert!(lists_token(&headers, "connection", "upgrade"));
        assert!(!lists_token(&headers, "connection", "close"));
        assert_eq!(single(&headers, "X"), Ok(Some(&b"v"[..])));
        assert_eq!(single(&headers, "missing"), Ok(None));
        assert_eq!(
            single(&headers, "Connection"),
            Err(Error::DuplicateHeader("Connection"))
        );
    }

    #[test]
    fn field_values() {
        assert!(is_field_value("a b\tc é"));
        for bad in ["a\r", "a\nb", "\0", "\x7f", "\x1b"] {
            assert!(!is_field_value(bad), "{bad:?}");
        }
    }
}
