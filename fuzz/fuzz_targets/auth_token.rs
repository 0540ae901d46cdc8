//! Arbitrary bytes as a token, as the header values and WebSocket first
//! messages (`{"type":"auth","token":"..."}`) a token is taken out of, and
//! as the claims a ticket's holder is named by: extraction, verification
//! and claim parsing answer, never panic.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tether_auth::{Keys, Validation};

static KEYS: LazyLock<Keys> = LazyLock::new(|| {
    // An HMAC key, and a JWKS so that kid choice is reached too.
    let jwks = br#"{"keys":[
        {"kty":"oct","kid":"a","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"},
        {"kty":"oct","kid":"b","k":"ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA"},
        {"kty":"OKP","crv":"Ed25519","kid":"e","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    ]}"#;
    Keys::from_jwks(jwks).expect("the fuzz keys")
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let validation = Validation::new().audience(["tether"]).issuer(["fuzz"]);
    let now = 1_700_000_000;
    let _ = tether_auth::verify(&text, &KEYS, &validation, now);
    let _ = tether_auth::verify(&text, &KEYS, &validation, u64::MAX);
    if let Some(t) = tether_auth::bearer_token(&text) {
        assert!(tether_auth::is_token_syntax(t));
        let _ = tether_auth::verify(t, &KEYS, &validation, now);
    }
    if let Some(t) = tether_auth::cookie_token(&text, "auth") {
        assert!(tether_auth::is_token_syntax(t));
    }
    if let Some(t) = tether_auth::query_token(&text) {
        assert!(tether_auth::is_token_syntax(&t));
    }
    if let Some(t) = tether_auth::ws_auth_token(&text) {
        assert!(tether_auth::is_token_syntax(&t));
    }
    // The claims of a ticket's holder: the same strict reading as a
    // token's, and rights that only ever name topics.
    if let Ok(who) = tether_auth::identity_from_claims(&text, now) {
        assert!(who.expires_at.is_none_or(|exp| exp > now));
        for pattern in who
            .rights
            .subscribe_patterns()
            .iter()
            .chain(who.rights.publish_patterns())
        {
            assert!(tether_auth::TopicPattern::parse(&pattern.to_string()).is_ok());
        }
    }
    let _ = tether_auth::Keys::from_jwks(data);
    let _ = tether_auth::Keys::from_pem(data);
    let _ = tether_auth::TopicPattern::parse(&text);
});
