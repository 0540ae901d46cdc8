//! Tokens as an application's backend signs them for the hub.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// `claims` signed with HS256 under `secret`.
pub(crate) fn sign(secret: &[u8], claims: &Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_secret(secret))
        .expect("HS256 signs any claims")
}

/// Seconds since the Unix epoch, the unit of `exp`, `iat` and `nbf`.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs()
}

/// A token for `subject` good for `ttl` seconds from now, with these
/// subscribe and publish rights, signed under `secret`.
pub(crate) fn rights(secret: &[u8], subject: &str, subscribe: &[&str], publish: &[&str], ttl: u64) -> String {
    let claims = json!({
        "sub": subject,
        "exp": unix_now() + ttl,
        "tether": { "sub": subscribe, "pub": publish },
    });
    sign(secret, &claims)
}
