//! The HTTP content coding of a compressed response, chosen from a
//! request's `Accept-Encoding` (RFC 9110 section 12.5.3): gzip or
//! deflate, each a deflate stream in its wrapper.

/// An `Accept-Encoding` longer than this is not read: the response goes
/// uncompressed (identity is always acceptable unless refused, and a
/// field this long is no browser's).
pub const MAX_ACCEPT_ENCODING_LEN: usize = 1024;

/// At most this many list elements are read; the rest are ignored.
const MAX_ELEMENTS: usize = 32;

/// A content coding the server can write: both are the same deflate data
/// in a different wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCoding {
    /// `gzip` (RFC 1952): a 10-byte header, then deflate, then CRC-32 and
    /// the length.
    Gzip,
    /// `deflate`, which in HTTP is the zlib format (RFC 1950; RFC 9110
    /// section 8.4.1.2), not raw deflate: a 2-byte header, then deflate,
    /// then Adler-32.
    Deflate,
}

impl ContentCoding {
    /// The coding's name, as `Content-Encoding` carries it.
    pub fn name(self) -> &'static str {
        match self {
            ContentCoding::Gzip => "gzip",
            ContentCoding::Deflate => "deflate",
        }
    }
}

/// The coding to answer a request with, from its `Accept-Encoding` field
/// (its bytes, all of its lines joined with commas), or `None` for
/// identity (no compression).
///
/// Read strictly and bounded: each element is a coding name (a token,
/// matched without regard to case; `x-gzip` counts as `gzip`) with an
/// optional `q` weight (`0` to `1`, at most three decimals); an element
/// that does not parse is ignored, as is everything past
/// [`MAX_ACCEPT_ENCODING_LEN`] bytes (then nothing is compressed). A
/// coding's weight is its own element's (the first, if named twice), or
/// else `*`'s, or else 0; `q=0` refuses it. The one with the higher
/// weight is chosen, gzip on a tie, unless `identity` is named with a
/// weight higher still.
///
/// ```
/// use tether_deflate::{ContentCoding, choose_coding};
///
/// // What Chromium and Firefox send.
/// assert_eq!(choose_coding(b"gzip, deflate, br, zstd"), Some(ContentCoding::Gzip));
/// assert_eq!(choose_coding(b"deflate;q=1, gzip;q=0.5"), Some(ContentCoding::Deflate));
/// assert_eq!(choose_coding(b"gzip;q=0, *"), Some(ContentCoding::Deflate));
/// assert_eq!(choose_coding(b"br"), None);
/// assert_eq!(choose_coding(b"identity, gzip;q=0.5"), None);
/// assert_eq!(choose_coding(b"gzip;q=2"), None); // not a weight: ignored
/// ```
pub fn choose_coding(accept_encoding: &[u8]) -> Option<ContentCoding> {
    if accept_encoding.len() > MAX_ACCEPT_ENCODING_LEN {
        return None;
    }
    let mut gzip = None;
    let mut deflate = None;
    let mut identity = None;
    let mut any = None;
    for element in accept_encoding.split(|&b| b == b',').take(MAX_ELEMENTS) {
        let Some((name, q)) = parse_element(element) else {
            continue;
        };
        let slot = if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
            &mut gzip
        } else if name.eq_ignore_ascii_case(b"deflate") {
            &mut deflate
        } else if name.eq_ignore_ascii_case(b"identity") {
            &mut identity
        } else if name == b"*" {
            &mut any
        } else {
            continue;
        };
        slot.get_or_insert(q);
    }
    let gzip = gzip.or(any).unwrap_or(0);
    let deflate = deflate.or(any).unwrap_or(0);
    let (coding, q) = if deflate > gzip {
        (ContentCoding::Deflate, deflate)
    } else {
        (ContentCoding::Gzip, gzip)
    };
    (q > 0 && q >= identity.unwrap_or(0)).then_some(coding)
}

/// One list element: `name *( OWS ";" OWS param )`, the name and its
/// weight in thousandths (1000 when not given).
fn parse_element(element: &[u8]) -> Option<(&[u8], u16)> {
    let mut parts = element.split(|&b| b == b';');
    let name = trim(parts.next()?);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        let (key, value) = split_once(trim(param), b'=')?;
        if !key.eq_ignore_ascii_case(b"q") {
            // RFC 9110 gives codings no other parameter.
            return None;
        }
        q = parse_qvalue(value)?;
    }
    Some((name, q))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in
/// thousandths.
fn parse_qvalue(value: &[u8]) -> Option<u16> {
    let (whole, fraction) = match split_once(value, b'.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (value, &b""[..]),
    };
    if fraction.len() > 3 || !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        let digit = fraction.get(i).map_or(0, |d| u16::from(d - b'0'));
        thousandths = thousandths * 10 + digit;
    }
    match whole {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn split_once(bytes: &[u8], at: u8) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&b| b == at)?;
    Some((bytes.get(..i)?, bytes.get(i + 1..)?))
}

/// Without the optional whitespace (spaces and tabs) around it.
fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// RFC 9110 section 5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContentCoding::{Deflate, Gzip};
    use proptest::prelude::*;

    #[test]
    fn what_browsers_and_tools_send() {
        for (field, coding) in [
            // Chromium, Firefox, Safari.
            (&b"gzip, deflate, br, zstd"[..], Some(Gzip)),
            (b"gzip, deflate, br", Some(Gzip)),
            (b"gzip, deflate", Some(Gzip)),
            // curl --compressed.
            (b"deflate, gzip, br, zstd", Some(Gzip)),
            (b"deflate", Some(Deflate)),
            (b"x-gzip", Some(Gzip)),
            (b"GZIP", Some(Gzip)),
            (b"", None),
            (b"identity", None),
            (b"br, zstd", None),
        ] {
            assert_eq!(choose_coding(field), coding, "{}", String::from_utf8_lossy(field));
        }
    }

    #[test]
    fn weights_and_refusals() {
        for (field, coding) in [
            (&b"gzip;q=0.5, deflate;q=0.6"[..], Some(Deflate)),
            (b"gzip;q=0.5, deflate;q=0.5", Some(Gzip)),
            (b"gzip ; q=0.001", Some(Gzip)),
            (b"gzip;Q=1.000", Some(Gzip)),
            (b"gzip;q=0", None),
            (b"gzip;q=0.000, deflate;q=0", None),
            (b"*", Some(Gzip)),
            (b"*;q=0", None),
            (b"*;q=0.3, gzip;q=0", Some(Deflate)),
            (b"gzip;q=0, *;q=0.2", Some(Deflate)),
            (b"identity;q=1, gzip;q=0.9", None),
            (b"identity;q=0.5, gzip", Some(Gzip)),
            (b"identity;q=0, *;q=0", None),
            // Named twice: the first counts.
            (b"gzip;q=0, gzip", None),
        ] {
            assert_eq!(choose_coding(field), coding, "{}", String::from_utf8_lossy(field));
        }
    }

    #[test]
    fn garbage_is_ignored() {
        for (field, coding) in [
            (&b"gzip;q=2"[..], None),
            (b"gzip;q=1.5", None),
            (b"gzip;q=0.1234", None),
            (b"gzip;q=", None),
            (b"gzip;q=.5", None),
            (b"gzip;q=-0", None),
            (b"gzip;q=0.5;level=9", None),
            (b"gz ip", None),
            (b"gzip\0", None),
            (b"\xffgzip", None),
            (b"gzip;q=2, deflate", Some(Deflate)),
            (b",,, ,gzip,,", Some(Gzip)),
            (b";q=1, gzip", Some(Gzip)),
            (b"\"gzip\"", None),
        ] {
            assert_eq!(choose_coding(field), coding, "{}", String::from_utf8_lossy(field));
        }
    }

    #[test]
    fn a_huge_field_is_not_read() {
        let mut field = b"gzip".to_vec();
        field.extend(std::iter::repeat_n(b' ', MAX_ACCEPT_ENCODING_LEN));
        assert_eq!(choose_coding(&field), None);
        // Only the first elements count.
        let mut many = b"x,".repeat(MAX_ELEMENTS);
        many.extend_from_slice(b"gzip");
        assert_eq!(choose_coding(&many), None);
        assert_eq!(choose_coding(b"x,x,gzip"), Some(Gzip));
    }

    proptest! {
        #[test]
        fn never_panics(field in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = choose_coding(&field);
        }

        #[test]
        fn well_formed_weights_decide(gzip in 0u16..=1000, deflate in 0u16..=1000) {
            let field = format!("gzip;q={}.{:03}, deflate;q={}.{:03}",
                gzip / 1000, gzip % 1000, deflate / 1000, deflate % 1000);
            let expected = if gzip == 0 && deflate == 0 {
                None
            } else if deflate > gzip {
                Some(Deflate)
            } else {
                Some(Gzip)
            };
            prop_assert_eq!(choose_coding(field.as_bytes()), expected);
        }

        #[test]
        fn tokens_and_separators(parts in proptest::collection::vec("[a-zA-Z*;=0-9., \t-]{0,12}", 0..12)) {
            let field = parts.join(",");
            let chosen = choose_coding(field.as_bytes());
            // Compression only where a coding or `*` is named.
            let lower = field.to_ascii_lowercase();
            if chosen.is_some() {
                prop_assert!(lower.contains("gzip") || lower.contains("deflate") || lower.contains('*'));
            }
        }
    }
}
