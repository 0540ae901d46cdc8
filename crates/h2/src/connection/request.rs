//! Request, response and trailer validation (RFC 9113 §8.2 and §8.3, RFC
//! 8441 §4). HTTP/3 has the same rules (RFC 9114 §4.2, §4.3 and §4.4, RFC
//! 9220), so tether-h3 checks its sections with these functions too.

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

/// Why a request, response or trailer section is malformed: a stream
/// error, PROTOCOL_ERROR in HTTP/2 (RFC 9113 §8.1.1), H3_MESSAGE_ERROR in
/// HTTP/3 (RFC 9114 §4.1.2); the connection goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// A field name that is empty, or has an uppercase letter, a control
    /// character, a space, a colon or a non-ASCII octet.
    Name,
    /// A value with NUL, CR or LF, or whitespace at either end.
    Value,
    /// A connection-specific field (`connection`, `keep-alive`,
    /// `proxy-connection`, `transfer-encoding`, `upgrade`, or `te` with
    /// another value than `trailers`).
    ConnectionSpecific,
    /// A pseudo-header after a regular field.
    PseudoAfterRegular,
    /// A pseudo-header no request has (`:status` among them).
    UnknownPseudo,
    /// A pseudo-header given twice.
    DuplicatePseudo,
    /// A pseudo-header the request's form needs is missing.
    MissingPseudo,
    /// A pseudo-header the request's form forbids (`:scheme` or `:path`
    /// in a plain CONNECT, `:protocol` outside CONNECT).
    ForbiddenPseudo,
    /// `:protocol` while SETTINGS_ENABLE_CONNECT_PROTOCOL was not sent
    /// (RFC 8441 §3, RFC 9220 §3).
    ConnectProtocolDisabled,
    /// A pseudo-header in trailers.
    PseudoInTrailers,
    /// A response's `:status` that is not three digits from 100 to 599.
    Status,
    /// An empty `:scheme` or `:path`, or an http(s) path that is not an
    /// origin form (or `*` for OPTIONS).
    Path,
    /// `content-length` fields that are not one decimal number.
    ContentLength,
    /// A `host` field naming another authority than `:authority`.
    Host,
}

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

/// Checks a decoded request section and splits off its pseudo-headers.
/// `connect_protocol` says whether this endpoint sent
/// SETTINGS_ENABLE_CONNECT_PROTOCOL = 1, without which `:protocol` is
/// malformed.
///
/// ```
/// use tether_h2::hpack::Field;
/// use tether_h2::connection::{Malformed, parse_request};
///
/// let get = vec![
///     Field::new(":method", "GET"),
///     Field::new(":scheme", "https"),
///     Field::new(":authority", "example.com"),
///     Field::new(":path", "/events"),
///     Field::new("accept", "text/event-stream"),
/// ];
/// let request = parse_request(get, false).unwrap();
/// assert_eq!(request.path.as_deref(), Some("/events"));
/// assert_eq!(request.field("accept"), Some(&b"text/event-stream"[..]));
///
/// let ws = vec![
///     Field::new(":method", "CONNECT"),
///     Field::new(":protocol", "websocket"),
///     Field::new(":scheme", "https"),
///     Field::new(":authority", "example.com"),
///     Field::new(":path", "/ws"),
/// ];
/// assert_eq!(parse_request(ws.clone(), false), Err(Malformed::ConnectProtocolDisabled));
/// assert!(parse_request(ws, true).unwrap().is_extended_connect("websocket"));
/// ```
pub fn parse_request(fields: Vec<Field>, connect_protocol: bool) -> Result<Request, Malformed> {
    let mut method = None;
    let mut scheme = None;
    let mut authority = None;
    let mut path = None;
    let mut protocol = None;
    let mut regular = Vec::with_capacity(fields.len());
    for field in fields {
        if field.name.first() != Some(&b':') {
            check_regular(&field)?;
            regular.push(field);
            continue;
        }
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
    }
    let method: String = method.ok_or(Malformed::MissingPseudo)?;
    if method.is_empty() {
        return Err(Malformed::Value);
    }
    let connect = method == "CONNECT";
    if protocol.is_some() && !connect_protocol {
        return Err(Malformed::ConnectProtocolDisabled);
    }
    if connect && protocol.is_none() {
        // RFC 9113 §8.5, RFC 9114 §4.4: :authority only.
        if authority.is_none() {
            return Err(Malformed::MissingPseudo);
        }
        if scheme.is_some() || path.is_some() {
            return Err(Malformed::ForbiddenPseudo);
        }
    } else {
        // RFC 8441 §4, RFC 9220 §3: :protocol with CONNECT only, which then carries
        // :scheme, :path and :authority like any request.
        if protocol.is_some() && (!connect || authority.is_none()) {
            return Err(Malformed::ForbiddenPseudo);
        }
        let (Some(scheme), Some(path)) = (&scheme, &path) else {
            return Err(Malformed::MissingPseudo);
        };
        if scheme.is_empty() || path.is_empty() {
            return Err(Malformed::Path);
        }
        // For http and https, an origin form or (OPTIONS only) "*".
        let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
        if web && !path.starts_with('/') && !(method == "OPTIONS" && path == "*") {
            return Err(Malformed::Path);
        }
    }
    // RFC 9113 §8.3.1, RFC 9114 §4.3.1: a Host field must name the same
    // authority.
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
pub fn content_length(fields: &[Field]) -> Result<Option<u64>, Malformed> {
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
pub fn check_trailers(fields: &[Field]) -> Result<(), Malformed> {
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
        parse_request(list.iter().map(|(n, v)| Field::new(*n, *v)).collect(), true)
    }

    fn req_with(list: &[(&str, &str)], connect_protocol: bool) -> Result<Request, Malformed> {
        parse_request(
            list.iter().map(|(n, v)| Field::new(*n, *v)).collect(),
            connect_protocol,
        )
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

    #[test]
    fn each_rule_has_its_reason() {
        assert!(req_with(&GET, false).is_ok());
        let with = |extra: (&'static str, &'static str)| {
            let mut list = GET.to_vec();
            list.push(extra);
            req_with(&list, false)
        };
        assert_eq!(with(("Accept", "x")), Err(Malformed::Name));
        assert_eq!(with(("accept", " x")), Err(Malformed::Value));
        assert_eq!(with(("connection", "close")), Err(Malformed::ConnectionSpecific));
        assert_eq!(with(("te", "gzip")), Err(Malformed::ConnectionSpecific));
        assert!(with(("te", "trailers")).is_ok());
        assert_eq!(with(("host", "b.example")), Err(Malformed::Host));
        assert!(with(("host", "A.example")).is_ok());
        let mut late = GET.to_vec();
        late.insert(0, ("accept", "x"));
        assert_eq!(req_with(&late, false), Err(Malformed::PseudoAfterRegular));
        let mut dup = GET.to_vec();
        dup.push((":path", "/x"));
        assert_eq!(req_with(&dup, false), Err(Malformed::DuplicatePseudo));
        assert_eq!(
            req_with(&[(":status", "200")], false),
            Err(Malformed::UnknownPseudo)
        );
        assert_eq!(req_with(&GET[1..], false), Err(Malformed::MissingPseudo));
        assert_eq!(req_with(&[GET[0], GET[1], GET[3]], false), Err(Malformed::MissingPseudo));
        let relative = [(":method", "GET"), (":scheme", "https"), (":path", "x")];
        assert_eq!(req_with(&relative, false), Err(Malformed::Path));
        let star = [(":method", "OPTIONS"), (":scheme", "https"), (":path", "*")];
        assert!(req_with(&star, false).is_ok());
    }

    #[test]
    fn connect_and_extended_connect() {
        let plain = [(":method", "CONNECT"), (":authority", "a.example:443")];
        assert!(req_with(&plain, false).is_ok());
        let with_path = [(":method", "CONNECT"), (":authority", "a"), (":path", "/")];
        assert_eq!(req_with(&with_path, false), Err(Malformed::ForbiddenPseudo));
        assert_eq!(req_with(&plain[..1], false), Err(Malformed::MissingPseudo));
        let mut ws = GET.to_vec();
        ws[0] = (":method", "CONNECT");
        ws.push((":protocol", "websocket"));
        // Pseudo-headers all before regular fields: :protocol is last of them.
        assert_eq!(req_with(&ws, false), Err(Malformed::ConnectProtocolDisabled));
        assert_eq!(
            req_with(&ws, true).unwrap().protocol.as_deref(),
            Some("websocket")
        );
        let mut get_protocol = GET.to_vec();
        get_protocol.push((":protocol", "websocket"));
        assert_eq!(req_with(&get_protocol, true), Err(Malformed::ForbiddenPseudo));
    }
}
