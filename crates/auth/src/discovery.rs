//! OpenID Connect discovery (OpenID Connect Discovery 1.0, section 4):
//! where an issuer publishes its keys.

use serde_json::Value;

use crate::error::Error;
use crate::jwks::MAX_JWKS_LEN;

/// The path of an issuer's configuration, after the issuer's URL.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The URL of the configuration of `issuer` (its own URL less one
/// trailing `/`, then [`DISCOVERY_PATH`]).
///
/// ```
/// assert_eq!(
///     tether_auth::discovery_url("https://id.example.com/realms/a/"),
///     "https://id.example.com/realms/a/.well-known/openid-configuration"
/// );
/// ```
pub fn discovery_url(issuer: &str) -> String {
    format!("{}{DISCOVERY_PATH}", issuer.strip_suffix('/').unwrap_or(issuer))
}

/// The `jwks_uri` of an issuer's configuration `document`, once its
/// `issuer` is checked to be exactly `issuer` (section 4.3: a
/// configuration that names another issuer must not be used).
///
/// Sans-IO: the caller fetches the document.
///
/// # Errors
///
/// [`Error::InvalidKey`] for a document larger than
/// [`MAX_JWKS_LEN`](crate::MAX_JWKS_LEN), not a JSON object, without a
/// string `issuer` equal to `issuer`, or without a string `jwks_uri`.
///
/// ```
/// let doc = br#"{"issuer":"https://id.example.com","jwks_uri":"https://id.example.com/keys"}"#;
/// assert_eq!(tether_auth::jwks_uri(doc, "https://id.example.com")?, "https://id.example.com/keys");
/// assert!(tether_auth::jwks_uri(doc, "https://id.example.com/").is_err());
/// # Ok::<(), tether_auth::Error>(())
/// ```
pub fn jwks_uri(document: &[u8], issuer: &str) -> Result<String, Error> {
    let bad = |why: String| Error::InvalidKey(format!("OpenID configuration: {why}"));
    if document.len() > MAX_JWKS_LEN {
        return Err(bad(format!("larger than {MAX_JWKS_LEN} bytes")));
    }
    let doc: Value = serde_json::from_slice(document).map_err(|e| bad(e.to_string()))?;
    let field = |name: &str| doc.get(name).and_then(Value::as_str);
    match field("issuer") {
        Some(named) if named == issuer => {}
        Some(named) => {
            return Err(bad(format!("its issuer is {named:?}, not {issuer:?}")));
        }
        None => return Err(bad("no \"issuer\" string".into())),
    }
    field("jwks_uri")
        .map(str::to_owned)
        .ok_or_else(|| bad("no \"jwks_uri\" string".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_must_match_exactly() {
        // The example of OpenID Connect Discovery 1.0, section 4.2 (abridged).
        let doc = br#"{
   "issuer": "https://server.example.com",
   "authorization_endpoint": "https://server.example.com/connect/authorize",
   "jwks_uri": "https://server.example.com/jwks.json",
   "id_token_signing_alg_values_supported": ["RS256", "ES256"]
  }"#;
        assert_eq!(
            jwks_uri(doc, "https://server.example.com").unwrap(),
            "https://server.example.com/jwks.json"
        );
        for other in [
            "https://server.example.com/",
            "https://SERVER.example.com",
            "https://evil.example",
        ] {
            let err = jwks_uri(doc, other).unwrap_err().to_string();
            assert!(err.contains("its issuer is"), "{other}: {err}");
        }
        for bad in [
            &br#"{"issuer":"https://a","jwks_uri":7}"#[..],
            br#"{"jwks_uri":"https://a/k"}"#,
            br#"{"issuer":["https://a"],"jwks_uri":"https://a/k"}"#,
            b"[]",
            b"",
        ] {
            assert!(jwks_uri(bad, "https://a").is_err());
        }
        let mut huge = br#"{"issuer":"https://a","jwks_uri":"https://a/k"}"#.to_vec();
        huge.resize(MAX_JWKS_LEN + 1, b' ');
        assert!(jwks_uri(&huge, "https://a").is_err());
        assert_eq!(
            discovery_url("https://a"),
            "https://a/.well-known/openid-configuration"
        );
    }
}
