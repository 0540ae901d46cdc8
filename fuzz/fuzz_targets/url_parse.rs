//! The client's URL parser on arbitrary text: never panics; a URL it
//! accepts prints as text that parses back to the same URL; joining any
//! reference onto it never panics, and what it gives round-trips too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_client::Url;

fn round_trips(url: &Url) {
    let printed = url.to_string();
    let again = Url::parse(&printed).unwrap_or_else(|e| panic!("{printed:?} does not parse back: {e}"));
    assert_eq!(again.to_string(), printed, "printing is stable");
    assert_eq!(
        (again.scheme(), again.host(), again.port(), again.target()),
        (url.scheme(), url.host(), url.port(), url.target())
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line is a URL, the rest a reference to join onto it.
    let (base, reference) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(url) = Url::parse(base) else { return };
    round_trips(&url);
    if let Ok(joined) = url.join(reference) {
        round_trips(&joined);
    }
});
