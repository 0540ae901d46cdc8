//! The HS256 example of RFC 7515, Appendix A.1: a token signed by someone
//! else, with header and payload JSON that no encoder here would write
//! (CRLFs and spaces between members), verified with its JWK.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tether_auth::{Error, Keys, Validation, verify};

/// The JWS of A.1, as printed.
const TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
    .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
    .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The `k` of its JWK (A.1.1), 64 bytes.
const K: &str = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
/// Its `exp`: 2011-03-22T18:43:00Z.
const EXP: u64 = 1_300_819_380;

fn jwks() -> Keys {
    Keys::from_jwks(format!(r#"{{"keys":[{{"kty":"oct","k":"{K}"}}]}}"#).as_bytes()).unwrap()
}

#[test]
fn verifies_with_its_jwk_until_exp() {
    let keys = jwks();
    let at = |now, leeway| verify(TOKEN, &keys, &Validation::new().leeway(leeway), now);
    let who = at(EXP - 3600, 30).unwrap();
    assert_eq!(who.subject, None);
    assert_eq!(who.expires_at, Some(EXP));
    assert!(!who.rights.may_publish("anything"), "no tether claim, no rights");
    assert!(at(EXP - 1, 0).is_ok());
    assert_eq!(at(EXP, 0), Err(Error::Expired));
    assert!(at(EXP + 29, 30).is_ok());
    assert_eq!(at(EXP + 30, 30), Err(Error::Expired));
    assert_eq!(at(EXP + 3600, 30), Err(Error::Expired));
}

#[test]
fn its_issuer_is_joe() {
    let keys = jwks();
    let with = |iss: &str| verify(TOKEN, &keys, &Validation::new().issuer([iss]), EXP - 60);
    assert!(with("joe").is_ok());
    assert_eq!(with("jo"), Err(Error::Issuer));
}

#[test]
fn the_same_key_as_a_secret_file() {
    let secret = URL_SAFE_NO_PAD.decode(K).unwrap();
    assert_eq!(secret.len(), 64);
    let keys = Keys::from_secret(&secret).unwrap();
    assert!(verify(TOKEN, &keys, &Validation::new(), EXP - 60).is_ok());
}

#[test]
fn every_changed_character_is_refused() {
    let keys = jwks();
    // Each position of the token, changed to another base64url character:
    // never accepted, whatever part it falls in.
    for i in 0..TOKEN.len() {
        if TOKEN.as_bytes()[i] == b'.' {
            continue;
        }
        let mut bytes = TOKEN.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let token = String::from_utf8(bytes).unwrap();
        assert!(
            verify(&token, &keys, &Validation::new(), EXP - 60).is_err(),
            "changed at {i}: {token}"
        );
    }
}
