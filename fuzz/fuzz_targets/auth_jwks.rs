//! Arbitrary bytes as an identity provider's key set, as the OpenID
//! configuration that points at it, and as a `Cache-Control` value:
//! each is read or refused, never a panic, and a set never holds more
//! keys than its bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_auth::{JwkSet, MAX_KEYS};

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = JwkSet::parse(data) {
        assert!(!set.keys().keys().is_empty() && set.keys().keys().len() <= MAX_KEYS);
        for skipped in set.skipped() {
            assert!(!skipped.reason.is_empty());
        }
    }
    let _ = tether_auth::jwks_uri(data, "https://id.example.com");
    let _ = tether_auth::cache_max_age(&String::from_utf8_lossy(data));
});
