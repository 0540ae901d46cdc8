//! The pieces of the HTTP grammar (RFC 9110 section 5.6) that more than
//! the decoders need: tokens, optional whitespace, comma-separated lists,
//! and decimal numbers written without allocating. `tether-handshake`
//! reads and writes its upgrade headers with these.
//!
//! ```
//! use tether_http1::syntax::{is_token, list_elements, trim_ows, write_decimal};
//!
//! assert!(is_token(b"permessage-deflate"));
//! assert!(!is_token(b"a b"));
//! assert_eq!(trim_ows(b" \tUpgrade "), b"Upgrade");
//! let items: Vec<&[u8]> = list_elements(b"keep-alive, , Upgrade").collect();
//! assert_eq!(items, [&b"keep-alive"[..], b"Upgrade"]);
//! let mut out = Vec::new();
//! write_decimal(&mut out, 426);
//! assert_eq!(out, b"426");
//! ```

use alloc::vec::Vec;

/// Whether `b` is a `tchar` (RFC 9110 section 5.6.2): a byte allowed in a
/// token.
pub fn is_tchar(b: u8) -> bool {
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

/// Whether `s` is a token (RFC 9110 section 5.6.2): one or more `tchar`s,
/// as a method, a header name or a list element such as `chunked` is.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// `s` without the optional whitespace (spaces and tabs; RFC 9110 section
/// 5.6.3) at either end.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The elements of a comma-separated field value, trimmed, without the
/// empty ones (RFC 9110 section 5.6.1 asks a recipient to skip them).
pub fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Appends `n` in decimal.
pub fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i = i.saturating_sub(1);
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
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
    fn decimal() {
        for n in [0u64, 7, 10, 426, 65535, u64::MAX] {
            let mut out = vec![];
            write_decimal(&mut out, n);
            assert_eq!(out, alloc::format!("{n}").into_bytes());
        }
    }
}
