//! Tokens as an application's backend signs them for the hub.

use serde_json::Value;

/// `claims` signed with HS256 under `secret`.
pub(crate) fn sign(secret: &[u8], claims: &Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_secret(secret))
        .expect("HS256 signs any claims")
}
