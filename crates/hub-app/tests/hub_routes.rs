//! No request crashes the hub: arbitrary methods, paths, queries, headers
//! and bodies sent through the real HTTP/1.1 request path get well-formed
//! responses or a clean close, never a panic, and the server keeps serving.
//! The fuzz target `hub_routes` drives the same harness with raw bytes.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

#[path = "routes/harness.rs"]
mod harness;

use proptest::prelude::*;

use harness::{TOKEN, harness};

fn method() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
            "get", "PRI", "M-SEARCH", "", "G\u{e9}T",
        ])
        .prop_map(|m| m.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ]
}

/// Topic names: valid ones, the dot segments, empty, percent-encoded,
/// too long, and arbitrary text.
fn topic() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "a", "news", ".", "..", "", "%2e%2e", "%2F", "a%2Fb", "%00", "%ZZ", "%", "a b", "\u{e9}",
            "a?b", "a#b", "*",
        ])
        .prop_map(str::to_owned),
        1 => (1usize..400).prop_map(|n| "t".repeat(n)),
        2 => "[a-z0-9._~%-]{0,24}",
        1 => any::<String>(),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let topic_path = (
        topic(),
        prop::sample::select(vec!["", "/events", "/ws", "/poll", "/", "/poll/x", "//events"]),
    )
        .prop_map(|(topic, tail)| format!("/topics/{topic}{tail}"));
    prop_oneof![
        6 => topic_path,
        1 => prop::sample::select(vec![
            "/tickets", "/metrics", "/healthz", "/", "/topics", "/topics/", "*", "", "//topics/a",
            "http://hub/topics/a/poll", "/topics/a/../b",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Values for query parameters, the numeric ones included: what does not
/// parse, what overflows, and the floats that are not numbers.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "1e20", "NaN", "inf", "-inf", "-1", "0", "0.01", "1", "18446744073709551616",
            "99999999999999999999999999", "1e-300", "", "garbage", "0-0", "1-1",
            "18446744073709551615-18446744073709551615", "18446744073709551616-0", "00-1",
            "%00", "%FF", "true", "1", "news",
        ])
        .prop_map(str::to_owned),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|n| n.to_string()),
        1 => "[ -~]{0,32}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "timeout",
        "since",
        "lastEventId",
        "event",
        "id",
        "ticket",
        "topic",
        "publish",
        "envelope",
        "",
        "x",
    ]);
    prop::collection::vec((name, query_value()), 0..4).prop_map(|pairs| {
        if pairs.is_empty() {
            return String::new();
        }
        let joined: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        format!("?{}", joined.join("&"))
    })
}

/// Hostile header values, non-UTF-8 bytes among them.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "", "0", "-1", "5", "1e20", "18446744073709551616", "chunked", "gzip, chunked",
            "100-continue", "websocket", "Upgrade", "13", "8", "dGhlIHNhbXBsZSBub25jZQ==",
            "permessage-deflate; client_max_window_bits=8", "http://evil", "null", "hub",
            "0-0", "1-1", "18446744073709551615-18446744073709551615", "garbage",
        ])
        .prop_map(|v| v.as_bytes().to_vec()),
        1 => Just(format!("Bearer {TOKEN}").into_bytes()),
        1 => prop::sample::select(vec!["Bearer", "Bearer ", "Basic x", "bearer x"])
            .prop_map(|v| v.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let name = prop::sample::select(vec![
        "Host",
        "Last-Event-ID",
        "Origin",
        "Authorization",
        "Content-Length",
        "Transfer-Encoding",
        "Expect",
        "Tether-Publish-Id",
        "Tether-Event",
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
        "Accept",
        "Content-Type",
        "X-Other",
        "",
    ]);
    (name.prop_map(str::to_owned), header_value())
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "", "hello", "{\"event\":\"x\",\"data\":\"y\"}", "0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n",
            "ffffffffffffffffff\r\n", "GET /healthz HTTP/1.1\r\n\r\n",
        ])
        .prop_map(|b| b.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// One request.
fn one_request() -> impl Strategy<Value = Vec<u8>> {
    (
        method(),
        path(),
        query(),
        prop::collection::vec(header(), 0..6),
        any::<bool>(),
        body(),
        any::<bool>(),
    )
        .prop_map(|(method, path, query, headers, length, body, http11)| {
            let mut out = method;
            out.extend_from_slice(format!(" {path}{query} ").as_bytes());
            out.extend_from_slice(if http11 { b"HTTP/1.1\r\n" } else { b"HTTP/1.0\r\n" });
            for (name, value) in headers {
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(&value);
                out.extend_from_slice(b"\r\n");
            }
            // A Content-Length that matches the body, unless the headers
            // already set their own.
            if length {
                out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&body);
            out
        })
}

/// One request, and sometimes a second one pipelined behind it.
fn request() -> impl Strategy<Value = Vec<u8>> {
    (one_request(), prop::option::weighted(0.2, one_request())).prop_map(|(mut first, second)| {
        if let Some(second) = second {
            first.extend_from_slice(&second);
        }
        first
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_request_crashes_the_hub(input in request()) {
        let result = harness().exchange(&input);
        prop_assert!(result.is_ok(), "{}", result.err().unwrap_or_default());
    }
}

fn exchange(request: &str) {
    if let Err(e) = harness().exchange(request.as_bytes()) {
        panic!("{e}");
    }
}

/// `Duration::from_secs_f64` panicked on a finite timeout past `u64::MAX`
/// seconds; the hub now waits its longest instead.
#[test]
fn a_poll_timeout_too_large_for_a_duration() {
    for timeout in ["1e20", "1e300", "18446744073709551616", "NaN", "inf", "-1", "-0"] {
        exchange(&format!(
            "GET /topics/a/poll?timeout={timeout}&since=garbage HTTP/1.1\r\nHost: hub\r\n\r\n"
        ));
        exchange(&format!(
            "GET /topics/a/poll?timeout={timeout} HTTP/1.1\r\nHost: hub\r\n\r\n"
        ));
    }
}

/// Requests the seeds of the fuzz target also cover, so that `cargo test`
/// checks them on every run.
#[test]
fn realistic_requests() {
    let body = "{\"event\":\"greeting\",\"data\":\"hi\"}";
    for request in [
        format!(
            "POST /topics/news HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {TOKEN}\r\n\
             Tether-Publish-Id: k1\r\nTether-Event: greeting\r\nContent-Length: 5\r\n\r\nhello"
        ),
        format!(
            "POST /topics/news HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        "GET /topics/news/events HTTP/1.1\r\nHost: hub\r\nLast-Event-ID: 0-0\r\n\r\n".to_owned(),
        "GET /topics/news/events?lastEventId=18446744073709551615-18446744073709551615 HTTP/1.1\r\n\r\n"
            .to_owned(),
        "GET /topics/news/ws HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            .to_owned(),
        format!(
            "POST /tickets?topic=news&publish=1 HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: 0\r\n\r\n"
        ),
        "GET /metrics HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\n\r\nGET /topics/a/poll?timeout=0 HTTP/1.1\r\n\r\n"
            .to_owned(),
        format!(
            "POST /topics/news HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\
             Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        ),
        "POST /topics/news HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\nx".to_owned(),
        "POST /topics/news HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            .to_owned(),
        format!(
            "POST /topics/news HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nExpect: 100-continue\r\n\
             Content-Length: 5\r\n\r\nhello"
        ),
        "GET /topics/%2e%2e/poll HTTP/1.1\r\n\r\nGET /topics//events HTTP/1.1\r\n\r\n".to_owned(),
    ] {
        exchange(&request);
    }
}

/// The checker itself: it must reject what is not well-formed, or the
/// properties above could never fail.
#[test]
fn the_checker_rejects_malformed_answers() {
    use harness::check_responses;
    let ok: [&[u8]; 5] = [
        b"",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00",
    ];
    for output in ok {
        assert_eq!(check_responses(output, false, &[]), Ok(()), "{output:?}");
    }
    let bad: [&[u8]; 6] = [
        b"garbage",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nextra",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ];
    for output in bad {
        assert!(check_responses(output, false, &[]).is_err(), "{output:?}");
    }
    // A response to HEAD has no body; one to GET has.
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(check_responses(head, false, &[true]), Ok(()));
    assert!(check_responses(head, false, &[false]).is_err());
    assert_eq!(
        harness::heads(b"HEAD / HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.1\r\n\r\n"),
        [true, false]
    );
}
