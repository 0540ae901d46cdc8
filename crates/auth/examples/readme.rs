//! The example of the crate's README: a token issued with jsonwebtoken,
//! verified, and its `tether` claim turned into rights.
//!
//! ```text
//! cargo run -p tether-auth --example readme
//! ```
// An example fails by panicking, as a test does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tether_auth::{Keys, Private, Validation, bearer_token, verify};

fn main() -> Result<(), tether_auth::Error> {
    let secret = b"0123456789abcdef0123456789abcdef";
    let keys = Keys::from_secret(secret)?;
    let validation = Validation::new().audience(["tether"]).leeway(30);
    let private = Private::new(["user.*"])?;

    // The issuer's side, here with jsonwebtoken.
    let claims = serde_json::json!({
        "sub": "alice",
        "aud": "tether",
        "exp": 1_000_600,
        "tether": { "sub": ["user.{sub}.*"], "pub": ["room.7"] },
    });
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();

    // The server's side.
    let header = format!("Bearer {token}");
    let token = bearer_token(&header).expect("a bearer token");
    let who = verify(token, &keys, &validation, 1_000_000)?;
    assert_eq!(who.subject.as_deref(), Some("alice"));
    assert!(private.may_subscribe(Some(&who.rights), "user.alice.inbox"));
    assert!(!private.may_subscribe(Some(&who.rights), "user.bob.inbox"));
    assert!(private.may_subscribe(None, "news"));
    assert!(who.rights.may_publish("room.7"));
    println!("alice may read user.alice.*, not user.bob.*, and publish to room.7");
    Ok(())
}
