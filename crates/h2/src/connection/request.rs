//! Request, response and trailer validation (RFC 9113 §8.2 and §8.3, RFC
//! 8441 §4).

use crate::hpack::Field;

/// A request's control data and fields, checked against RFC 9113 §8.3.1.
///
/// Which pseudo-headers are present depends on the form of the request:
/// - an ordinary request has `scheme` and `path` (and usually
///   `authority`), `protocol` is `None`;
/// - a CONNECT request (§8.5) has `authority` only;
/// - an extended CONNECT (RFC 8441 §4) has `protocol` (such as
///   `websocket`), `scheme`, `path` and `authority`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `:method`.
    pub method: String,
    /// `:scheme`, absent in a plain CONNECT.
    pub scheme: Option<String>,
    /// `:authority`.
    pub authority: Option<String>,
    /// `:path`, absent in a plain CONNECT.
    pub path: Option<String>,
    /// `:protocol` of an extended CONNECT.
    pub protocol: Option<String>,
    /// The regular fields, in the order received; names are lowercase and
    /// none is connection-specific.
    pub fields: Vec<Field>,
}

impl Request {
    /// The value of the first field named `name` (lowercase), if any.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|f| f.name == name.as_bytes())
            .map(|f| &f.value[..])
    }

    /// Whether this is an extended CONNECT (RFC 8441) for `protocol`,
    /// compared without regard to ASCII case.
    pub fn is_extended_connect(&self, protocol: &str) -> bool {
        self.method == "CONNECT"
            && self
                .protocol
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(protocol))
    }
}

/// Why a request or trailer section is malformed (then a stream error of
/// type PROTOCOL_ERROR, §8.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Malformed {
    Name,
    Value,
    ConnectionSpecific,
    PseudoAfterRegular,
    UnknownPseudo,
    DuplicatePseudo,
    MissingPseudo,
    ForbiddenPseudo,
    PseudoInTrailers,
    Path,
    Status,
    ContentLength,
    Host,
}

/// §8.2.1: no empty name, no octet 0x00-0x20, 0x41-0x5a (uppercase) or
/// 0x7f-0xff, and no colon (pseudo-header names are checked by name).
fn name_ok(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b > 0x20 && b < 0x7f && !b.is_ascii_uppercase() && b != b':')
}

/// §8.2.1: no NUL, CR or LF, and no whitespace at either end.
fn value_ok(value: &[u8]) -> bool {
    let ws = |b: &u8| *b == b' ' || *b == b'\t';
    !value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
        && !value.first().is_some_and(ws)
        && !value.last().is_some_and(ws)
}

/// §8.2.2: fields that only make sense on one HTTP/1.1 connection; `te`
/// is allowed with the value `trailers` only.
fn connection_specific(field: &Field) -> bool {
    match &field.name[..] {
        b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade" => true,
        b"te" => !field.value.eq_ignore_ascii_case(b"trailers"),
        _ => false,
    }
}

fn check_regular(field: &Field) -> Result<(), Malformed> {
    if !name_ok(&field.name) {
        return Err(Malformed::Name);
    }
    if !value_ok(&field.value) {
        return Err(Malformed::Value);
    }
    if connection_specific(field) {
        return Err(Malformed::ConnectionSpecific);
    }
    Ok(())
}

/// Checks a decoded request field section and splits off its
/// pseudo-headers.
pub(crate) fn parse_request(fields: Vec<Field>) -> Result<Request, Malformed> {
    let mut method = None;
    let mut scheme = None;
    let mut authority = None;
    let mut path = None;
    let mut protocol = None;
    let mut regular = Vec::with_capacity(fields.len());
    for field in fields {
        if field.name.first() == Some(&b':') {
            if !regular.is_empty() {
                return Err(Malformed::PseudoAfterRegular);
            }
            let slot = match &field.name[..] {
                b":method" => &mut method,
                b":scheme" => &mut scheme,
                b":authority" => &mut authority,
                b":path" => &mut path,
                b":protocol" => &mut protocol,
                _ => return Err(Malformed::UnknownPseudo),
            };
            if slot.is_some() {
                return Err(Malformed::DuplicatePseudo);
            }
            if !value_ok(&field.value) {
                return Err(Malformed::Value);
            }
            *slot = Some(String::from_utf8(field.value).map_err(|_| Malformed::Value)?);
        } else {
            check_regular(&field)?;
            regular.push(field);
        }
    }
    let method = method.ok_or(Malformed::MissingPseudo)?;
    if method.is_empty() {
        return Err(Malformed::Value);
    }
    let connect = method == "CONNECT";
    if connect && protocol.is_none() {
        // §8.5: :authority only.
        if authority.is_none() {
            return Err(Malformed::MissingPseudo);
        }
        if scheme.is_some() || path.is_some() {
            return Err(Malformed::ForbiddenPseudo);
        }
    } else {
        // RFC 8441 §4: :protocol only with CONNECT, which then needs
        // :scheme, :path and :authority.
        if protocol.is_some() && (!connect || authority.is_none()) {
            return Err(Malformed::ForbiddenPseudo);
        }
        let (Some(scheme), Some(path)) = (&scheme, &path) else {
            return Err(Malformed::MissingPseudo);
        };
        if scheme.is_empty() || path.is_empty() {
            return Err(Malformed::Path);
        }
        // §8.3.1: for http and https, an origin form or (OPTIONS only) "*".
        let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
        if web && !path.starts_with('/') && !(method == "OPTIONS" && path == "*") {
            return Err(Malformed::Path);
        }
    }
    // §8.3.1: a Host field that names another entity than :authority.
    if let (Some(authority), Some(host)) = (&authority, regular.iter().find(|f| f.name == b"host"))
        && !host.value.eq_ignore_ascii_case(authority.as_bytes())
    {
        return Err(Malformed::Host);
    }
    Ok(Request {
        method,
        scheme,
        authority,
        path,
        protocol,
        fields: regular,
    })
}

/// Checks a decoded response field section (§8.3.2): `:status` first and
/// alone among pseudo-headers, three digits from 100 to 599; returns it
/// with the regular fields.
pub(crate) fn parse_response(fields: Vec<Field>) -> Result<(u16, Vec<Field>), Malformed> {
    let mut status = None;
    let mut regular = Vec::with_capacity(fields.len());
    for field in fields {
        if field.name.first() == Some(&b':') {
            if !regular.is_empty() {
                return Err(Malformed::PseudoAfterRegular);
            }
            if field.name != b":status" {
                return Err(Malformed::UnknownPseudo);
            }
            if status.is_some() {
                return Err(Malformed::DuplicatePseudo);
            }
            let v = &field.value[..];
            if v.len() != 3 || !v.iter().all(u8::is_ascii_digit) {
                return Err(Malformed::Status);
            }
            let n = v.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
            if !(100..=599).contains(&n) {
                return Err(Malformed::Status);
            }
            status = Some(n);
        } else {
            check_regular(&field)?;
            regular.push(field);
        }
    }
    Ok((status.ok_or(Malformed::MissingPseudo)?, regular))
}

/// The request's `content-length`, if it has one: every such field must
/// hold the same decimal number (§8.1.1 and RFC 9110 §8.6).
pub(crate) fn content_length(fields: &[Field]) -> Result<Option<u64>, Malformed> {
    let mut length = None;
    for f in fields.iter().filter(|f| f.name == b"content-length") {
        let digits = &f.value[..];
        if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Malformed::ContentLength);
        }
        // At most 19 digits: fits in a u64.
        let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if length.is_some_and(|l| l != n) {
            return Err(Malformed::ContentLength);
        }
        length = Some(n);
    }
    Ok(length)
}

/// Checks a trailer section (§8.1): regular fields only.
pub(crate) fn check_trailers(fields: &[Field]) -> Result<(), Malformed> {
    for field in fields {
        if field.name.first() == Some(&b':') {
            return Err(Malformed::PseudoInTrailers);
        }
        check_regular(field)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(list: &[(&str, &str)]) -> Result<Request, Malformed> {
        parse_request(list.iter().map(|(n, v)| Field::new(*n, *v)).collect())
    }

    const GET: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/"),
        (":authority", "a.example"),
    ];

    #[test]
    fn a_get_parses() {
        let r = req(&[&GET[..], &[("accept", "*/*")]].concat()).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path.as_deref(), Some("/"));
        assert_eq!(r.field("accept"), Some(&b"*/*"[..]));
        assert!(!r.is_extended_connect("websocket"));
    }

    #[test]
    fn names_and_values() {
        for bad in ["Accept", "a b", "a\u{7f}", ""] {
            assert_eq!(
                req(&[&GET[..], &[(bad, "x")]].concat()),
                Err(Malformed::Name),
                "{bad:?}"
            );
        }
        for bad in ["a\0b", "a\rb", "a\nb", " a", "a\t"] {
            assert_eq!(
                req(&[&GET[..], &[("x", bad)]].concat()),
                Err(Malformed::Value),
                "{bad:?}"
            );
        }
        assert!(req(&[&GET[..], &[("x", "a b"), ("te", "trailers")]].concat()).is_ok());
        // A token: compared without regard to case.
        assert!(req(&[&GET[..], &[("te", "Trailers")]].concat()).is_ok());
        assert_eq!(
            req(&[&GET[..], &[("te", "gzip")]].concat()),
            Err(Malformed::ConnectionSpecific)
        );
    }

    #[test]
    fn options_star_only() {
        let mut l = GET;
        l[2] = (":path", "*");
        assert_eq!(req(&l), Err(Malformed::Path));
        l[0] = (":method", "OPTIONS");
        assert!(req(&l).is_ok());
        l[2] = (":path", "");
        assert_eq!(req(&l), Err(Malformed::Path));
    }

    #[test]
    fn content_length_values() {
        let cl = |vals: &[&str]| {
            content_length(
                &vals
                    .iter()
                    .map(|v| Field::new("content-length", *v))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(cl(&[]), Ok(None));
        assert_eq!(cl(&["0"]), Ok(Some(0)));
        assert_eq!(cl(&["42", "42"]), Ok(Some(42)));
        assert_eq!(cl(&["9999999999999999999"]), Ok(Some(9_999_999_999_999_999_999)));
        for bad in [
            &["42", "43"][..],
            &[""],
            &["-1"],
            &["1 2"],
            &["+1"],
            &["99999999999999999999"],
        ] {
            assert_eq!(cl(bad), Err(Malformed::ContentLength), "{bad:?}");
        }
    }

    #[test]
    fn responses() {
        let resp =
            |list: &[(&str, &str)]| parse_response(list.iter().map(|(n, v)| Field::new(*n, *v)).collect());
        assert_eq!(
            resp(&[(":status", "200"), ("content-type", "text/plain")]),
            Ok((200, vec![Field::new("content-type", "text/plain")]))
        );
        assert_eq!(resp(&[(":status", "103")]), Ok((103, vec![])));
        for bad in ["20", "2000", "099", "600", "2x0", ""] {
            assert_eq!(resp(&[(":status", bad)]), Err(Malformed::Status), "{bad:?}");
        }
        assert_eq!(resp(&[("a", "b")]), Err(Malformed::MissingPseudo));
        assert_eq!(
            resp(&[(":status", "200"), (":status", "200")]),
            Err(Malformed::DuplicatePseudo)
        );
        assert_eq!(
            resp(&[(":status", "200"), (":path", "/")]),
            Err(Malformed::UnknownPseudo)
        );
        assert_eq!(
            resp(&[("a", "b"), (":status", "200")]),
            Err(Malformed::PseudoAfterRegular)
        );
        assert_eq!(
            resp(&[(":status", "200"), ("connection", "close")]),
            Err(Malformed::ConnectionSpecific)
        );
    }

    #[test]
    fn trailers_have_no_pseudo_headers() {
        assert!(check_trailers(&[Field::new("grpc-status", "0")]).is_ok());
        assert_eq!(
            check_trailers(&[Field::new(":path", "/")]),
            Err(Malformed::PseudoInTrailers)
        );
        assert_eq!(check_trailers(&[Field::new("Upper", "0")]), Err(Malformed::Name));
    }
}
