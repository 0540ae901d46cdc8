//! Request and trailer field sections checked as RFC 9114 §4.2 and §4.3.1
//! ask (the same rules as HTTP/2's, RFC 9113 §8.2 and §8.3), with the
//! extended CONNECT of RFC 9220.
//!
//! A malformed request is a stream error of type H3_MESSAGE_ERROR (RFC
//! 9114 §4.1.2): the request stream is reset, the connection goes on.
//! The result is tether-h2's [`Request`], so that both versions hand the
//! server the same type.

use tether_h2::connection::Request;
use tether_h2::hpack::Field;

/// Why a request or trailer section is malformed.
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
    /// (RFC 9220 §3).
    ConnectProtocolDisabled,
    /// A pseudo-header in trailers.
    PseudoInTrailers,
    /// An empty `:scheme` or `:path`, or an http(s) path that is not an
    /// origin form (or `*` for OPTIONS).
    Path,
    /// `content-length` fields that are not one decimal number.
    ContentLength,
    /// A `host` field naming another authority than `:authority`.
    Host,
}

/// RFC 9114 §4.2: no empty name, no octet 0x00-0x20, uppercase, 0x7f-0xff
/// or colon (pseudo-header names are checked by name).
fn name_ok(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b > 0x20 && b < 0x7f && !b.is_ascii_uppercase() && b != b':')
}

/// RFC 9114 §4.2 (RFC 9110 §5.5): no NUL, CR or LF, no whitespace at
/// either end.
fn value_ok(value: &[u8]) -> bool {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    !value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
        && !value.first().is_some_and(blank)
        && !value.last().is_some_and(blank)
}

/// RFC 9114 §4.2: fields that belong to one HTTP/1.1 connection.
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
/// use tether_h3::head::{Malformed, parse_request};
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
        // RFC 9114 §4.4: :authority only.
        if authority.is_none() {
            return Err(Malformed::MissingPseudo);
        }
        if scheme.is_some() || path.is_some() {
            return Err(Malformed::ForbiddenPseudo);
        }
    } else {
        // RFC 9220 §3: :protocol with CONNECT only, which then carries
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
        let web = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
        if web && !path.starts_with('/') && !(method == "OPTIONS" && path == "*") {
            return Err(Malformed::Path);
        }
    }
    // RFC 9114 §4.3.1: a Host field must name the same authority.
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

/// The request's `content-length`, if it has one: every such field must
/// hold the same decimal number.
pub fn content_length(fields: &[Field]) -> Result<Option<u64>, Malformed> {
    let mut length = None;
    for field in fields.iter().filter(|f| f.name == b"content-length") {
        let digits = &field.value[..];
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

/// Checks a trailer section: regular fields only (RFC 9114 §4.3).
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

    fn req(list: &[(&str, &str)], connect: bool) -> Result<Request, Malformed> {
        parse_request(list.iter().map(|(n, v)| Field::new(*n, *v)).collect(), connect)
    }

    const GET: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "a.example"),
        (":path", "/"),
    ];

    #[test]
    fn each_rule_has_its_reason() {
        assert!(req(&GET, false).is_ok());
        let with = |extra: (&'static str, &'static str)| {
            let mut list = GET.to_vec();
            list.push(extra);
            req(&list, false)
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
        assert_eq!(req(&late, false), Err(Malformed::PseudoAfterRegular));
        let mut dup = GET.to_vec();
        dup.push((":path", "/x"));
        assert_eq!(req(&dup, false), Err(Malformed::DuplicatePseudo));
        assert_eq!(req(&[(":status", "200")], false), Err(Malformed::UnknownPseudo));
        assert_eq!(req(&GET[1..], false), Err(Malformed::MissingPseudo));
        assert_eq!(req(&GET[..3], false), Err(Malformed::MissingPseudo));
        let relative = [(":method", "GET"), (":scheme", "https"), (":path", "x")];
        assert_eq!(req(&relative, false), Err(Malformed::Path));
        let star = [(":method", "OPTIONS"), (":scheme", "https"), (":path", "*")];
        assert!(req(&star, false).is_ok());
    }

    #[test]
    fn connect_and_extended_connect() {
        let plain = [(":method", "CONNECT"), (":authority", "a.example:443")];
        assert!(req(&plain, false).is_ok());
        let with_path = [(":method", "CONNECT"), (":authority", "a"), (":path", "/")];
        assert_eq!(req(&with_path, false), Err(Malformed::ForbiddenPseudo));
        assert_eq!(req(&plain[..1], false), Err(Malformed::MissingPseudo));
        let mut ws = GET.to_vec();
        ws[0] = (":method", "CONNECT");
        ws.push((":protocol", "websocket"));
        // Pseudo-headers all before regular fields: :protocol is last of them.
        assert_eq!(req(&ws, false), Err(Malformed::ConnectProtocolDisabled));
        assert_eq!(req(&ws, true).unwrap().protocol.as_deref(), Some("websocket"));
        let mut get_protocol = GET.to_vec();
        get_protocol.push((":protocol", "websocket"));
        assert_eq!(req(&get_protocol, true), Err(Malformed::ForbiddenPseudo));
    }

    #[test]
    fn content_length_and_trailers() {
        let cl = |v: &[&str]| {
            content_length(
                &v.iter()
                    .map(|v| Field::new("content-length", *v))
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(cl(&[]), Ok(None));
        assert_eq!(cl(&["12", "12"]), Ok(Some(12)));
        assert_eq!(cl(&["12", "13"]), Err(Malformed::ContentLength));
        assert_eq!(cl(&["-1"]), Err(Malformed::ContentLength));
        assert_eq!(cl(&["99999999999999999999"]), Err(Malformed::ContentLength));
        assert!(check_trailers(&[Field::new("x-sum", "1")]).is_ok());
        assert_eq!(
            check_trailers(&[Field::new(":path", "/")]),
            Err(Malformed::PseudoInTrailers)
        );
    }
}
