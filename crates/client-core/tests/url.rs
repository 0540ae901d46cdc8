//! The URL rules, case by case: the cases of both clients' old suites
//! (tether-client's url.rs and tether-tokio's own parser), merged, and
//! the round trip as a property.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use tether_client_core::Error;
use tether_client_core::url::{Scheme, Url};

fn parts(url: &str) -> (Scheme, String, u16, String) {
    let u = Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    (u.scheme(), u.host().to_owned(), u.port(), u.target().to_owned())
}

#[test]
fn parses_the_usual_forms() {
    let cases: &[(&str, Scheme, &str, u16, &str)] = &[
        (
            "ws://host:9001/path?query",
            Scheme::Ws,
            "host",
            9001,
            "/path?query",
        ),
        ("ws://host", Scheme::Ws, "host", 80, "/"),
        ("ws://host/", Scheme::Ws, "host", 80, "/"),
        ("ws://host?x=1", Scheme::Ws, "host", 80, "/?x=1"),
        ("ws://host:/a", Scheme::Ws, "host", 80, "/a"),
        (
            "WS://HoSt.Example:8080/A/b",
            Scheme::Ws,
            "host.example",
            8080,
            "/A/b",
        ),
        ("wss://secure.example/x", Scheme::Wss, "secure.example", 443, "/x"),
        (
            "http://127.0.0.1:3000/clock",
            Scheme::Http,
            "127.0.0.1",
            3000,
            "/clock",
        ),
        ("https://h/", Scheme::Https, "h", 443, "/"),
        ("ws://[::1]:9001/", Scheme::Ws, "[::1]", 9001, "/"),
        ("ws://[FE80::1]/", Scheme::Ws, "[fe80::1]", 80, "/"),
        ("  ws://h/trimmed \n", Scheme::Ws, "h", 80, "/trimmed"),
        ("ws://h/a b/é", Scheme::Ws, "h", 80, "/a%20b/%C3%A9"),
        (
            "ws://h/already%20encoded",
            Scheme::Ws,
            "h",
            80,
            "/already%20encoded",
        ),
        ("http://h/p?q=1#frag", Scheme::Http, "h", 80, "/p?q=1"),
        // tether-tokio's cases.
        (
            "wss://example.com/chat?room=1",
            Scheme::Wss,
            "example.com",
            443,
            "/chat?room=1",
        ),
        (
            "https://[::1]:8443/events",
            Scheme::Https,
            "[::1]",
            8443,
            "/events",
        ),
        ("http://h?x", Scheme::Http, "h", 80, "/?x"),
        // A CR or LF in the path cannot reach the request line.
        (
            "http://h/a\r\nX-Injected: 1",
            Scheme::Http,
            "h",
            80,
            "/a%0D%0AX-Injected:%201",
        ),
    ];
    for &(url, scheme, host, port, target) in cases {
        assert_eq!(
            parts(url),
            (scheme, host.to_owned(), port, target.to_owned()),
            "{url}"
        );
    }
}

#[test]
fn host_header_names_the_port_only_when_not_default() {
    let cases = [
        ("ws://h/", "h"),
        ("ws://h:80/", "h"),
        ("ws://h:81/", "h:81"),
        ("wss://h:443/", "h"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("HTTP://Example.COM:80/", "example.com"),
    ];
    for (url, want) in cases {
        assert_eq!(Url::parse(url).unwrap().host_header(), want, "{url}");
    }
    assert_eq!(Url::parse("ws://[::1]:9/").unwrap().connect_host(), "::1");
    assert_eq!(Url::parse("ws://h:9/").unwrap().connect_host(), "h");
}

#[test]
fn refuses_what_it_cannot_use() {
    let cases = [
        ("", "no scheme"),
        ("example.com/chat", "no scheme"),
        ("ftp://h/", "unknown scheme"),
        ("ws:h/", "expected //"),
        ("ws:///path", "no host"),
        ("ws://:9001/", "no host"),
        ("ws://user:pw@h/", "credentials"),
        ("http://user@h/", "credentials"),
        ("ws://h:99999/", "from 1 to 65535"),
        ("ws://h:0/", "from 1 to 65535"),
        ("ws://h:12a/", "not a number"),
        ("ws://h:-1/", "not a number"),
        ("ws://[::1/", "unclosed"),
        ("ws://[nope]/", "invalid IPv6"),
        ("ws://[::1]x/", "junk after"),
        ("ws://h st/", "cannot have"),
        ("ws://h\tx/", "cannot have"),
    ];
    for (url, want) in cases {
        match Url::parse(url) {
            Err(Error::InvalidUrl { reason, .. }) => assert!(reason.contains(want), "{url}: {reason}"),
            other => panic!("{url}: expected an invalid URL error, got {other:?}"),
        }
    }
}

#[test]
fn each_kind_of_client_takes_its_schemes() {
    assert!(Url::parse_websocket("ws://h/").is_ok());
    assert!(Url::parse_websocket("wss://h/").is_ok());
    for url in ["http://h/", "https://h/"] {
        assert!(
            matches!(Url::parse_websocket(url), Err(Error::UnsupportedScheme { .. })),
            "{url}"
        );
    }
    match Url::parse_websocket("ws://h/p#top") {
        Err(Error::InvalidUrl { reason, .. }) => assert!(reason.contains("fragment"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(Url::parse_event_stream("http://h/").is_ok());
    assert!(Url::parse_event_stream("https://h/p#ignored").is_ok());
    for url in ["ws://h/", "wss://h/"] {
        assert!(
            matches!(Url::parse_event_stream(url), Err(Error::UnsupportedScheme { .. })),
            "{url}"
        );
    }
}

#[test]
fn keeps_the_fragment_apart() {
    let url = Url::parse("ws://h/p#top").unwrap();
    assert_eq!(url.fragment(), Some("top"));
    assert_eq!(url.target(), "/p");
    assert_eq!(url.to_string(), "ws://h/p#top");
}

#[test]
fn joins_references() {
    let base = Url::parse("http://h:8080/a/b/c?q#f").unwrap();
    let cases = [
        ("https://other/x", "https://other/x"),
        ("//other/x", "http://other/x"),
        ("/x?y", "http://h:8080/x?y"),
        ("?z", "http://h:8080/a/b/c?z"),
        ("d", "http://h:8080/a/b/d"),
        ("./d", "http://h:8080/a/b/d"),
        ("../d", "http://h:8080/a/d"),
        ("../../../../d", "http://h:8080/d"),
        (".", "http://h:8080/a/b/"),
        ("..", "http://h:8080/a/"),
        ("", "http://h:8080/a/b/c?q"),
        ("d#frag", "http://h:8080/a/b/d"),
    ];
    for (reference, want) in cases {
        assert_eq!(base.join(reference).unwrap().to_string(), want, "{reference}");
    }
}

#[test]
fn origins() {
    let a = Url::parse("http://h:80/a").unwrap();
    assert!(a.same_origin(&Url::parse("HTTP://H/b?c").unwrap()));
    assert!(!a.same_origin(&Url::parse("https://h/a").unwrap()));
    assert!(!a.same_origin(&Url::parse("http://h:81/a").unwrap()));
    assert!(!a.same_origin(&Url::parse("http://g/a").unwrap()));
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9][a-zA-Z0-9.-]{0,20}",
        Just("[::1]".to_owned()),
        Just("[fe80::1:2]".to_owned()),
        "(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\\.[0-9]{1,2}\\.[0-9]{1,2}\\.[0-9]{1,2}",
    ]
}

proptest! {
    /// A URL that parses prints as text that parses back to the same URL.
    #[test]
    fn parse_print_round_trip(
        scheme in prop_oneof![Just("ws"), Just("wss"), Just("http"), Just("https")],
        host in host(),
        port in proptest::option::of(1u16..),
        path in "(/[a-zA-Z0-9 %é._~-]{0,10}){0,4}",
        query in proptest::option::of("[a-z0-9=& ]{0,12}"),
    ) {
        let mut text = format!("{scheme}://{host}");
        if let Some(port) = port {
            text.push_str(&format!(":{port}"));
        }
        text.push_str(&path);
        if let Some(query) = &query {
            text.push('?');
            text.push_str(query);
        }
        let url = Url::parse(&text).unwrap();
        prop_assert_eq!(url.port(), port.unwrap_or(url.scheme().default_port()));
        let printed = url.to_string();
        let again = Url::parse(&printed).unwrap();
        prop_assert_eq!(&again, &url);
        prop_assert_eq!(again.to_string(), printed);
    }

    /// Whatever a reference is, joining it never panics, and what it gives
    /// round-trips.
    #[test]
    fn join_any_reference(reference in "[ -~]{0,40}") {
        let base = Url::parse("http://h:8080/a/b/c?q").unwrap();
        if let Ok(joined) = base.join(&reference) {
            let again = Url::parse(&joined.to_string()).unwrap();
            prop_assert_eq!(again, joined);
        }
    }
}
