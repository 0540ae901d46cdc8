//! A JSON Web Key Set published by an identity provider (RFC 7517
//! section 5), read leniently: one key that cannot be used is left out
//! with its reason, never a failure of the whole set.

use serde_json::Value;

use crate::error::Error;
use crate::keys::{Key, Keys, MAX_KEYS, Refusal, jwk_key};

/// Bytes a fetched key set may have, at most. Providers' sets are a few
/// KiB (a 4096-bit RSA key is under 1 KiB of JSON).
pub const MAX_JWKS_LEN: usize = 256 * 1024;

/// A key of a set that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skipped {
    /// Its position in the set's `keys`, from 0.
    pub index: usize,
    /// Its `kid`, if it has a string one.
    pub kid: Option<String>,
    /// Why it was left out.
    pub reason: String,
}

/// The keys of a JSON Web Key Set fetched from an identity provider, and
/// those of its keys that were left out.
///
/// Unlike [`Keys::from_jwks`] (a file the operator wrote, where a mistake
/// is told at once), a provider's set is taken key by key: an encryption
/// key, a key of a type or algorithm not verified here, or one malformed
/// is skipped with a reason, and the others are used. Shared secrets
/// (`kty` `oct`) are skipped too: a secret published at a URL is no
/// secret. At most [`MAX_KEYS`] keys are used (those after are skipped),
/// and a set longer than [`MAX_JWKS_LEN`] bytes is refused whole.
///
/// Sans-IO: the caller fetches the bytes.
///
/// ```
/// use tether_auth::JwkSet;
///
/// // RFC 7517, Appendix A.1 (the EC key is for encryption: left out).
/// let set = JwkSet::parse(br#"{"keys":[
///   {"kty":"EC","crv":"P-256","use":"enc","kid":"1",
///    "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
///    "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},
///   {"kty":"OKP","crv":"Ed25519","kid":"ed",
///    "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
/// ]}"#)?;
/// assert_eq!(set.keys().keys().len(), 1);
/// assert_eq!(set.skipped()[0].kid.as_deref(), Some("1"));
/// # Ok::<(), tether_auth::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct JwkSet {
    keys: Keys,
    skipped: Vec<Skipped>,
}

impl JwkSet {
    /// Reads a key set.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] for more than [`MAX_JWKS_LEN`] bytes, or
    /// anything but a JSON object with a `keys` list;
    /// [`Error::NoUsableKey`] when every key was skipped (the reasons are
    /// in the message).
    pub fn parse(document: &[u8]) -> Result<JwkSet, Error> {
        if document.len() > MAX_JWKS_LEN {
            return Err(Error::InvalidKey(format!(
                "JWKS larger than {MAX_JWKS_LEN} bytes"
            )));
        }
        let set: Value =
            serde_json::from_slice(document).map_err(|e| Error::InvalidKey(format!("JWKS: {e}")))?;
        let Some(list) = set.get("keys").and_then(Value::as_array) else {
            return Err(Error::InvalidKey("JWKS without a \"keys\" list".into()));
        };
        let mut keys: Vec<Key> = Vec::new();
        let mut skipped = Vec::new();
        for (index, jwk) in list.iter().enumerate() {
            let reason = if keys.len() == MAX_KEYS {
                format!("more than {MAX_KEYS} keys")
            } else if jwk.get("kty").and_then(Value::as_str) == Some("oct") {
                "a shared secret (\"oct\") is not taken from a published set".to_owned()
            } else {
                match jwk_key(jwk) {
                    Ok(key) => {
                        keys.push(key);
                        continue;
                    }
                    Err(Refusal::Left(why)) => why,
                    Err(Refusal::Invalid(e)) => e.to_string(),
                }
            };
            let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
            skipped.push(Skipped { index, kid, reason });
        }
        if keys.is_empty() {
            let why: Vec<String> = skipped
                .iter()
                .take(5)
                .map(|s| format!("key {}: {}", s.index, s.reason))
                .collect();
            return Err(Error::InvalidKey(if why.is_empty() {
                "JWKS with no key".to_owned()
            } else {
                format!("JWKS with no usable key ({})", why.join("; "))
            }));
        }
        Ok(JwkSet {
            keys: Keys::new(keys)?,
            skipped,
        })
    }

    /// The keys to verify tokens with.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The keys left out, in the set's order.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The keys, taken out.
    pub fn into_keys(self) -> Keys {
        self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Algorithm;

    /// RFC 7517, Appendix A.1: an EC key for encryption, an RSA key for
    /// RS256.
    const RFC7517_A1: &str = r#"{"keys":
       [
         {"kty":"EC",
          "crv":"P-256",
          "x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
          "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM",
          "use":"enc",
          "kid":"1"},

         {"kty":"RSA",
          "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
          "e":"AQAB",
          "alg":"RS256",
          "kid":"2011-04-29"}
       ]
     }"#;

    #[test]
    fn rfc7517_a1() {
        let set = JwkSet::parse(RFC7517_A1.as_bytes()).unwrap();
        let [key] = set.keys().keys() else {
            panic!("{set:?}")
        };
        assert_eq!(
            (key.algorithm(), key.kid()),
            (Algorithm::RS256, Some("2011-04-29"))
        );
        assert_eq!(
            set.skipped(),
            [Skipped {
                index: 0,
                kid: Some("1".into()),
                reason: "\"use\" is \"enc\", not \"sig\"".into()
            }]
        );
        // Whole, and with every byte of it before the end: Ok or an error.
        for end in 0..RFC7517_A1.len() {
            assert!(JwkSet::parse(&RFC7517_A1.as_bytes()[..end]).is_err(), "{end}");
        }
    }

    /// RFC 7518's RSA algorithm names, on the RSA key of RFC 7517.
    #[test]
    fn algorithms_by_key_type() {
        let rfc = |alg: &str| {
            RFC7517_A1
                .replace("\"alg\":\"RS256\"", &format!("\"alg\":\"{alg}\""))
                .into_bytes()
        };
        for (name, alg) in [
            ("RS384", Algorithm::RS384),
            ("RS512", Algorithm::RS512),
            ("PS256", Algorithm::PS256),
            ("PS384", Algorithm::PS384),
            ("PS512", Algorithm::PS512),
        ] {
            let set = JwkSet::parse(&rfc(name)).unwrap();
            assert_eq!(set.keys().keys()[0].algorithm(), alg);
        }
    }

    #[test]
    fn bad_keys_are_skipped_with_a_reason() {
        let ed =
            r#"{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let cases = [
            (
                r#"{"kty":"oct","kid":"s","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#,
                "shared secret",
            ),
            (
                r#"{"kty":"RSA","kid":"short","n":"AQAB","e":"AQAB"}"#,
                "shorter than 2048",
            ),
            (
                r#"{"kty":"RSA","kid":"x","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"}"#,
                "RSA-OAEP",
            ),
            (
                r#"{"kty":"EC","crv":"P-256","x":"AQAB","y":"AQAB"}"#,
                "P-256 coordinates",
            ),
            (r#"{"kty":"EC","crv":"P-521","x":"AQAB","y":"AQAB"}"#, "P-521"),
            (
                r#"{"kty":"OKP","crv":"Ed25519","key_ops":["encrypt"],"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
                "key_ops",
            ),
            (
                r#"{"kty":"OKP","crv":"Ed25519","key_ops":"verify","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
                "key_ops",
            ),
            (
                r#"{"kty":"OKP","crv":"Ed25519","alg":"RS256","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
                "RS256",
            ),
            (r#"{"kty":"PQ"}"#, "\"PQ\""),
            (r#"{"kid":7}"#, "kty"),
            ("7", "not an object"),
        ];
        for (bad, why) in cases {
            let set = JwkSet::parse(format!(r#"{{"keys":[{bad},{ed}]}}"#).as_bytes()).unwrap();
            assert_eq!(set.keys().keys().len(), 1, "{bad}");
            assert_eq!(set.keys().keys()[0].kid(), Some("ed"));
            let [skipped] = set.skipped() else {
                panic!("{bad}: {set:?}")
            };
            assert_eq!(skipped.index, 0);
            assert!(skipped.reason.contains(why), "{bad}: {}", skipped.reason);
            let alone = JwkSet::parse(format!(r#"{{"keys":[{bad}]}}"#).as_bytes()).unwrap_err();
            assert!(alone.to_string().contains(why), "{bad}: {alone}");
        }
        let with_ops = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","key_ops":["verify"],"x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        assert!(JwkSet::parse(with_ops).unwrap().skipped().is_empty());
    }

    #[test]
    fn bounds() {
        let ed = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let many = vec![ed; MAX_KEYS + 3].join(",");
        let set = JwkSet::parse(format!(r#"{{"keys":[{many}]}}"#).as_bytes()).unwrap();
        assert_eq!(set.keys().keys().len(), MAX_KEYS);
        assert_eq!(set.skipped().len(), 3);
        assert_eq!(set.skipped()[0].index, MAX_KEYS);
        let mut huge = br#"{"keys":[]}"#.to_vec();
        huge.resize(MAX_JWKS_LEN + 1, b' ');
        assert!(JwkSet::parse(&huge).unwrap_err().to_string().contains("larger"));
        for bad in ["", "[]", "{}", r#"{"keys":{}}"#, r#"{"keys":[]}"#, "\u{0}"] {
            assert!(JwkSet::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
