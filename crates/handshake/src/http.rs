//! Small HTTP/1.1 grammar helpers shared by both roles (RFC 9110 tokens,
//! lists and field values) and the bits of response writing they share.

use alloc::vec::Vec;
use httparse::Header;

use crate::Error;

/// `tchar` from RFC 9110 section 5.6.2.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if !is_ows(*first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !is_ows(*last) {
            break;
        }
        s = rest;
    }
    s
}

/// The non-empty elements of a comma-separated header list, trimmed.
/// RFC 9110 section 5.6.1 asks recipients to skip empty elements.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

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

pub(crate) fn write_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn tokens() {
        for ok in ["a", "permessage-deflate", "x_y.z~!#$%&'*+^`|", "13"] {
            assert!(is_token(ok.as_bytes()), "{ok:?}");
        }
        for bad in ["", "a b", "a,b", "a;b", "a=b", "\"a\"", "a/b", "é", "a\tb", "(x)"] {
            assert!(!is_token(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn list_elements_trim_and_skip_empty() {
        let got: Vec<&[u8]> = list_elements(b" a ,\tb,, ,c\t").collect();
        assert_eq!(got, [&b"a"[..], b"b", b"c"]);
        assert_eq!(list_elements(b"").count(), 0);
        assert_eq!(list_elements(b" , ,").count(), 0);
    }

    #[test]
    fn trim() {
        assert_eq!(trim_ows(b" \t x y \t"), b"x y");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
    }

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

    #[test]
    fn decimal() {
        for n in [0usize, 7, 10, 426, 65535, usize::MAX] {
            let mut out = vec![];
            write_decimal(&mut out, n);
            assert_eq!(out, alloc::format!("{n}").into_bytes());
        }
    }
}
