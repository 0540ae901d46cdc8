//! The small amount of HTTP/1.1 the server speaks itself: response heads,
//! canned responses, request targets and query strings.

use std::fmt::Write as _;

/// A complete response with a body (or just its head, for `HEAD`).
pub(crate) fn write_response(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
    head_only: bool,
    close: bool,
) {
    let mut head = String::with_capacity(128);
    let _ = write!(
        head,
        "HTTP/1.1 {status} {}\r\n",
        tether_http1::reason_phrase(status)
    );
    if !content_type.is_empty() {
        let _ = write!(head, "Content-Type: {content_type}\r\n");
    }
    let _ = write!(head, "Content-Length: {}\r\n", body.len());
    for (name, value) in headers.iter().filter(|(name, value)| is_safe_field(name, value)) {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    if !head_only {
        out.extend_from_slice(body);
    }
}

/// A short plain-text error response that closes the connection.
pub(crate) fn write_error(out: &mut Vec<u8>, status: u16, headers: &[(&str, &str)], head_only: bool) {
    let body = format!("{status} {}\n", tether_http1::reason_phrase(status));
    write_response(
        out,
        status,
        headers,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        head_only,
        true,
    );
}

/// Whether a header field from an application can be written as it is: a
/// name that is a token, a value without control characters (no CR or LF
/// to end the head early, no NUL). Others are left out, so that no
/// application can be made to split a response.
pub(crate) fn is_safe_field(name: &str, value: &str) -> bool {
    tether_http1::syntax::is_token(name.as_bytes())
        && value.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// The head of an event stream, with the application's own fields. No
/// length and no chunking: the stream ends when the connection does, so
/// the head of a stream says `close`. The same head answering `HEAD`
/// (`close` false) has no body to delimit and leaves the connection open
/// for the next request.
pub(crate) fn write_sse_head(out: &mut Vec<u8>, headers: &[(String, String)], close: bool) {
    out.extend_from_slice(
        b"HTTP/1.1 200 OK\r\n\
Content-Type: text/event-stream\r\n\
Cache-Control: no-cache\r\n\
X-Accel-Buffering: no\r\n",
    );
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    for (name, value) in headers.iter().filter(|(name, value)| is_safe_field(name, value)) {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The first value of `name` in an `application/x-www-form-urlencoded`
/// query, decoded. Malformed escapes are kept as they are.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

/// Every value of a query parameter, percent-decoded, in the order they
/// come (`?topic=a&topic=b`).
pub(crate) fn query_params<'a, 'n>(
    query: &'a str,
    name: &'n str,
) -> impl Iterator<Item = String> + use<'a, 'n> {
    query.split('&').filter_map(move |pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'+' => out.push(b' '),
            b'%' => match tail {
                [h, l, after @ ..] => match (hex(*h), hex(*l)) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        rest = after;
                    }
                    _ => out.push(b'%'),
                },
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(query_param("room=a%20b&x=1", "room").as_deref(), Some("a b"));
        assert_eq!(
            query_param("lastEventId=41&room=z", "lastEventId").as_deref(),
            Some("41")
        );
        assert_eq!(query_param("flag&room=q+r", "flag").as_deref(), Some(""));
        assert_eq!(query_param("room=q+r", "room").as_deref(), Some("q r"));
        assert_eq!(query_param("a=%zz%4", "a").as_deref(), Some("%zz%4"));
        assert_eq!(query_param("a=%C3%A9", "a").as_deref(), Some("é"));
        assert_eq!(query_param("a=1", "b"), None);
        let all: Vec<String> = query_params("topic=a&x=1&topic=b%2Ec&topic", "topic").collect();
        assert_eq!(all, ["a", "b.c", ""]);
    }

    #[test]
    fn responses_have_length_and_optional_close() {
        let mut out = Vec::new();
        write_response(&mut out, 200, &[("X-A", "b")], "text/plain", b"hi", false, true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nX-A: b\r\nConnection: close\r\n\r\nhi"
        );
        out.clear();
        write_response(&mut out, 200, &[], "text/plain", b"hi", true, false);
        assert!(out.ends_with(b"Content-Length: 2\r\n\r\n"));
    }

    #[test]
    fn fields_that_could_split_a_head_are_left_out() {
        assert!(is_safe_field("X-Ok", "a value\twith a tab"));
        assert!(!is_safe_field("X-Split", "a\r\nInjected: yes"));
        assert!(!is_safe_field("X-Nul", "a\0b"));
        assert!(!is_safe_field("Bad Name", "x"));
        assert!(!is_safe_field("", "x"));
        let mut out = Vec::new();
        write_response(
            &mut out,
            200,
            &[("X-Ok", "1"), ("X-Split", "a\r\nInjected: yes")],
            "text/plain",
            b"",
            false,
            true,
        );
        let head = String::from_utf8(out).unwrap();
        assert!(head.contains("X-Ok: 1\r\n"));
        assert!(!head.contains("Injected"));
        let mut out = Vec::new();
        write_sse_head(
            &mut out,
            &[("X-Ok".into(), "1".into()), ("X:".into(), "x".into())],
            true,
        );
        assert!(out.ends_with(b"Connection: close\r\nX-Ok: 1\r\n\r\n"));
        out.clear();
        write_sse_head(&mut out, &[], false);
        assert!(out.ends_with(b"X-Accel-Buffering: no\r\n\r\n"));
    }
}
