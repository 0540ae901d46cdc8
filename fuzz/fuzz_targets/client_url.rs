//! The clients' shared policy on what a server sends: a redirect's
//! `Location` (and any URL) parsed and resolved, the redirect decision,
//! and the `Last-Event-ID` choice. Never panics; a URL it accepts prints
//! as text that parses back to the same URL; a redirect it follows leads
//! to an allowed scheme, never from https to http, and within the limit.
//!
//! Input: the first line is the URL the caller named, the second the
//! status (digits), the rest a `Location` each line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_client_core::event_source::last_event_id;
use tether_client_core::redirect::Redirects;
use tether_client_core::url::{Scheme, Url};

const LIMIT: u32 = 4;

fn round_trips(url: &Url) {
    let printed = url.to_string();
    let again = Url::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
    assert_eq!(again.to_string(), printed, "printing is stable");
    assert_eq!(&again, url);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    if let Some(id) = last_event_id(first) {
        assert!(!id.is_empty() && !id.chars().any(char::is_control));
    }
    let _ = Url::parse_websocket(first);
    let Ok(start) = Url::parse_event_stream(first) else {
        return;
    };
    round_trips(&start);
    let status = lines
        .next()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(302);
    let mut chain = Redirects::new(&start, LIMIT);
    let mut current = start;
    for location in lines {
        let location = (!location.is_empty()).then_some(location);
        match chain.follow(&current, status, location, &[Scheme::Http, Scheme::Https]) {
            Ok(next) => {
                round_trips(&next);
                assert!(matches!(next.scheme(), Scheme::Http | Scheme::Https));
                assert!(!(current.scheme().is_secure() && !next.scheme().is_secure()));
                assert!(chain.hops() <= LIMIT);
                if !next.same_origin(&current) {
                    assert!(!chain.sends("Authorization"));
                }
                current = next;
            }
            Err(_) => return,
        }
    }
});
