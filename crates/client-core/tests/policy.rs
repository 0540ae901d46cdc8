//! The redirect and EventSource rules, case by case (the cases of both
//! clients' suites, merged).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use tether_backoff::Backoff;
use tether_client_core::Error;
use tether_client_core::event_source::{Head, Reconnection, is_event_stream, last_event_id};
use tether_client_core::redirect::{Redirects, is_credential, is_redirect};
use tether_client_core::url::{Scheme, Url};

const HTTP: &[Scheme] = &[Scheme::Http, Scheme::Https];

#[test]
fn redirect_statuses() {
    for status in [301, 302, 303, 307, 308] {
        assert!(is_redirect(status), "{status}");
    }
    for status in [200, 204, 300, 304, 305, 306, 309, 400] {
        assert!(!is_redirect(status), "{status}");
    }
}

#[test]
fn redirects_resolve_and_refuse() {
    let start = Url::parse("https://a.example/events").unwrap();
    // (Location, outcome): Ok(next URL) or Err(the error's text, in part).
    let cases: &[(Option<&str>, Result<&str, &str>)] = &[
        (Some("/b"), Ok("https://a.example/b")),
        (Some("c?x=1"), Ok("https://a.example/c?x=1")),
        (Some("https://b.example:8443/e"), Ok("https://b.example:8443/e")),
        (Some("//c.example/e"), Ok("https://c.example/e")),
        (None, Err("without a Location")),
        (Some("http://a.example/events"), Err("from https to http")),
        (Some("ws://a.example/"), Err("cannot use its scheme")),
        (Some("https://user@a.example/"), Err("credentials")),
        (Some("https://h:0/"), Err("from 1 to 65535")),
    ];
    for (location, want) in cases {
        let mut chain = Redirects::new(&start, 20);
        let got = chain.follow(&start, 302, *location, HTTP);
        match (got, want) {
            (Ok(url), Ok(want)) => assert_eq!(url.to_string(), *want, "{location:?}"),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{location:?}: {e}"),
            (got, want) => panic!("{location:?}: {got:?}, expected {want:?}"),
        }
    }
    // http to https is fine.
    let plain = Url::parse("http://a.example/").unwrap();
    let next = Redirects::new(&plain, 1).follow(&plain, 301, Some("https://a.example/"), HTTP);
    assert_eq!(next.unwrap().scheme(), Scheme::Https);
}

#[test]
fn redirects_stop_at_the_limit() {
    let start = Url::parse("http://h/loop").unwrap();
    let mut chain = Redirects::new(&start, 3);
    for _ in 0..3 {
        chain.follow(&start, 307, Some("/loop"), HTTP).unwrap();
    }
    assert_eq!(
        chain.follow(&start, 307, Some("/loop"), HTTP),
        Err(Error::TooManyRedirects { limit: 3 })
    );
    let mut none = Redirects::new(&start, 0);
    assert!(matches!(
        none.follow(&start, 301, Some("/x"), HTTP),
        Err(Error::TooManyRedirects { limit: 0 })
    ));
}

#[test]
fn credentials_stay_behind_once_the_chain_leaves_the_origin() {
    for name in ["Authorization", "cookie", "PROXY-AUTHORIZATION"] {
        assert!(is_credential(name), "{name}");
    }
    assert!(!is_credential("X-Api-Version"));
    let start = Url::parse("http://a.example/").unwrap();
    let mut chain = Redirects::new(&start, 20);
    let same = chain.follow(&start, 302, Some("/same"), HTTP).unwrap();
    assert!(chain.sends("Authorization") && chain.sends("Cookie"));
    let other = chain.follow(&same, 302, Some("http://b.example/"), HTTP).unwrap();
    assert!(!chain.sends("Authorization"));
    assert!(!chain.sends("cookie"));
    assert!(!chain.sends("Proxy-Authorization"));
    assert!(chain.sends("X-Other"));
    // Back at the first origin, the chain has still been elsewhere.
    chain
        .follow(&other, 302, Some("http://a.example/back"), HTTP)
        .unwrap();
    assert!(!chain.sends("Authorization"));
    // Another port is another origin; so is another scheme.
    let mut chain = Redirects::new(&start, 20);
    chain
        .follow(&start, 302, Some("http://a.example:81/"), HTTP)
        .unwrap();
    assert!(!chain.sends("Cookie"));
    let mut chain = Redirects::new(&start, 20);
    chain
        .follow(&start, 302, Some("https://a.example/"), HTTP)
        .unwrap();
    assert!(!chain.sends("Cookie"));
}

#[test]
fn response_heads() {
    let policy = Reconnection::new();
    let cases: &[(u16, Option<&str>, Head)] = &[
        (200, Some("text/event-stream"), Head::Open),
        (200, Some("Text/Event-Stream; charset=utf-8"), Head::Open),
        (200, Some(" text/event-stream "), Head::Open),
        (
            200,
            Some("text/plain"),
            Head::Fail(Error::ContentType("text/plain".to_owned())),
        ),
        (
            200,
            Some("text/event-streamx"),
            Head::Fail(Error::ContentType("text/event-streamx".to_owned())),
        ),
        (200, None, Head::Fail(Error::ContentType(String::new()))),
        (204, None, Head::Stop),
        (204, Some("text/event-stream"), Head::Stop),
        (301, None, Head::Redirect),
        (308, None, Head::Redirect),
        (
            201,
            Some("text/event-stream"),
            Head::Fail(Error::Refused { status: 201 }),
        ),
        (304, None, Head::Fail(Error::Refused { status: 304 })),
        (404, None, Head::Fail(Error::Refused { status: 404 })),
        (500, None, Head::Fail(Error::Refused { status: 500 })),
        (503, None, Head::Fail(Error::Refused { status: 503 })),
    ];
    for (status, content_type, want) in cases {
        assert_eq!(
            &policy.head(*status, *content_type),
            want,
            "{status} {content_type:?}"
        );
    }
    // Told to retry "not now": 502 to 504 are failed attempts, the rest
    // as before.
    let retrying = Reconnection::new().retry_unavailable(true);
    for status in [502, 503, 504] {
        assert_eq!(
            retrying.head(status, None),
            Head::Retry(Error::Refused { status })
        );
        assert_eq!(policy.head(status, None), Head::Fail(Error::Refused { status }));
    }
    for status in [400, 404, 500, 501, 505] {
        assert_eq!(retrying.head(status, None), Head::Fail(Error::Refused { status }));
    }
    assert!(!is_event_stream(""));
}

#[test]
fn last_event_ids() {
    let cases: &[(&str, Option<&str>)] = &[
        ("", None),
        ("42", Some("42")),
        ("a b", Some("a b")),
        ("é-ü", Some("é-ü")),
        ("a\u{1}b", None),
        ("a\u{7f}", None),
        ("tab\there", None),
        ("a\u{85}b", None),
        (" 42", None),
        ("42 ", None),
    ];
    for (id, want) in cases {
        assert_eq!(last_event_id(id), *want, "{id:?}");
    }
}

fn exact() -> Reconnection {
    Reconnection::new().backoff(Backoff::new().jitter(0.0))
}

#[test]
fn waits_between_attempts() {
    let mut policy = exact();
    assert_eq!(policy.current_reconnection_time(), Duration::from_secs(3));
    policy.opened();
    policy.event();
    assert_eq!(policy.ended(), Duration::from_secs(3));
    // Streams that deliver nothing: the backoff grows on top.
    policy.retry(100);
    let waits: Vec<Duration> = (0..3).map(|_| policy.ended()).collect();
    assert_eq!(
        waits,
        [100 + 500, 100 + 1000, 100 + 2000].map(Duration::from_millis)
    );
    // An event starts it over.
    policy.event();
    assert_eq!(policy.ended(), Duration::from_millis(100));
    assert_eq!(policy.ended(), Duration::from_millis(600));
    policy.retry(0);
    policy.event();
    assert_eq!(policy.ended(), Duration::ZERO);
}

#[test]
fn retry_is_bounded() {
    let mut policy = exact();
    policy.retry(u64::MAX);
    assert_eq!(policy.current_reconnection_time(), Duration::from_secs(600));
    let mut policy = exact().max_reconnection_time(Duration::from_secs(5));
    policy.retry(60_000);
    assert_eq!(policy.current_reconnection_time(), Duration::from_secs(5));
    policy.retry(1_000);
    assert_eq!(policy.current_reconnection_time(), Duration::from_secs(1));
    let policy = exact()
        .max_reconnection_time(Duration::from_secs(5))
        .reconnection_time(Duration::from_secs(9));
    assert_eq!(policy.current_reconnection_time(), Duration::from_secs(5));
}

#[test]
fn failures_give_up_after_max_retries_in_a_row() {
    let mut policy = exact().max_retries(Some(2)).reconnection_time(Duration::ZERO);
    assert_eq!(policy.failed(), Some(Duration::from_millis(500)));
    assert_eq!(policy.failed(), Some(Duration::from_millis(1000)));
    assert_eq!(policy.failed(), None);
    // An open stream counts from zero again.
    let mut policy = exact().max_retries(Some(1));
    assert!(policy.failed().is_some());
    policy.opened();
    assert_eq!(policy.failures(), 0);
    assert!(policy.failed().is_some());
    assert!(policy.failed().is_none());
    // No limit by default.
    let mut policy = exact();
    for _ in 0..1000 {
        assert!(policy.failed().is_some());
    }
}
