//! Verifying a token: key choice, signature, claims.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::error::Error;
use crate::keys::{Algorithm, Key, Keys};
use crate::limits::MAX_TOKEN_LEN;
use crate::object::Object;
use crate::rights::{Rights, TetherClaim};
use crate::validation::Validation;

/// Who a verified token names, and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// The `sub` claim.
    pub subject: Option<String>,
    /// The rights of its `tether` claim (none without one).
    pub rights: Rights,
    /// The `exp` claim, in seconds since the epoch (rounded down): a
    /// connection opened with the token can be closed then.
    pub expires_at: Option<u64>,
    /// The `jti` claim: the token's own id, by which it can be revoked.
    pub token_id: Option<String>,
    /// The `iat` claim, in seconds since the epoch (rounded down, the
    /// safe way for revocation): a subject's tokens issued before a time
    /// can be revoked.
    pub issued_at: Option<u64>,
}

impl Identity {
    /// An identity vouched for by something other than a token (the
    /// application's backend, asked by the server): who, what it may do,
    /// and until when.
    pub fn new(subject: Option<String>, rights: Rights, expires_at: Option<u64>) -> Identity {
        Identity {
            subject,
            rights,
            expires_at,
            token_id: None,
            issued_at: None,
        }
    }
}

/// Verifies `token` with `keys` and `validation` at the time `now`
/// (seconds since the Unix epoch; this function reads no clock), and
/// returns who it names and what it allows.
///
/// The key is chosen by the header's `kid` if it has one (a `kid` that no
/// key has is refused); without one, a set of one key uses it, and a
/// larger set uses the one key whose algorithm is the header's `alg`
/// (none or several: refused). The header's `alg` must then be the key's
/// algorithm: the key decides, the token only has to agree. A header with
/// `crit` is refused; `jku`, `jwk`, `x5u` and `x5c` are ignored, never
/// fetched nor trusted.
///
/// The claims are checked with strict types: `exp`, `nbf` and `iat` are
/// numbers (fractions rounded the safe way: `exp` down, `nbf` and `iat`
/// up), `sub`, `iss` and `jti` strings, `aud` a string or a list of strings,
/// `tether` an object of lists of strings ([`TetherClaim`]); any other
/// type, or a claim given twice, refuses the token. With `leeway` `L`,
/// the token is good while `now < exp + L`, once `now + L >= nbf`, and if
/// `iat <= now + L`.
///
/// # Errors
///
/// The token's [`Error`]s (`is_config() == false`), or
/// [`Error::InvalidKey`] if the key chosen is one the crypto backend
/// refuses.
///
/// ```
/// use tether_auth::{Keys, Validation, verify};
///
/// let secret = b"a secret of at least thirty-two bytes!";
/// let keys = Keys::from_secret(secret)?;
/// // Made by the issuer, here with jsonwebtoken.
/// let claims = serde_json::json!({
///     "sub": "alice",
///     "exp": 2000,
///     "tether": { "sub": ["user.{sub}.*"] },
/// });
/// let token = jsonwebtoken::encode(
///     &jsonwebtoken::Header::default(),
///     &claims,
///     &jsonwebtoken::EncodingKey::from_secret(secret),
/// ).unwrap();
///
/// let who = verify(&token, &keys, &Validation::new(), 1000)?;
/// assert_eq!(who.subject.as_deref(), Some("alice"));
/// assert!(who.rights.may_subscribe("user.alice.inbox"));
/// assert!(!who.rights.may_publish("user.alice.inbox"));
///
/// assert_eq!(verify(&token, &keys, &Validation::new(), 2030), Err(tether_auth::Error::Expired));
/// # Ok::<(), tether_auth::Error>(())
/// ```
pub fn verify(token: &str, keys: &Keys, validation: &Validation, now: u64) -> Result<Identity, Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::TokenTooLong);
    }
    if token.bytes().filter(|&b| b == b'.').count() != 2 || !token.bytes().all(is_token_byte) {
        return Err(Error::Malformed);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| classify_header(token))?;
    if header.crit.is_some() {
        return Err(Error::CriticalHeader);
    }
    let alg = Algorithm::from_jwt(header.alg).ok_or(Error::UnsupportedAlgorithm)?;
    let key = choose_key(keys, header.kid.as_deref(), alg)?;
    if key.algorithm() != alg {
        return Err(Error::AlgorithmMismatch);
    }

    // The library checks the signature with the key's algorithm, and no
    // claim: it would read the system clock, and its claim parsing lets
    // claims of the wrong type pass as absent (GHSA-h395-gr6q-cpjc, fixed
    // in 10.3.0, but the checks below need no such care).
    let mut jwt = jsonwebtoken::Validation::new(key.algorithm().to_jwt());
    jwt.required_spec_claims.clear();
    jwt.validate_exp = false;
    jwt.validate_nbf = false;
    jwt.validate_aud = false;
    let Object(claims) = jsonwebtoken::decode::<Object<Claims>>(token, key.decoding_key(), &jwt)
        .map_err(|e| map_error(e.into_kind()))?
        .claims;
    check(&claims, validation, now)?;
    let rights = match &claims.tether {
        Some(claim) => Rights::from_claim(claim, claims.sub.as_deref())?,
        None => Rights::default(),
    };
    Ok(Identity {
        subject: claims.sub,
        rights,
        expires_at: claims.exp.map(|d| d.floor),
        token_id: claims.jti,
        issued_at: claims.iat.map(|d| d.floor),
    })
}

/// Who a set of claims names and what they allow, as [`verify`] reads
/// them from a token, for claims that come from a trusted caller rather
/// than a signed token (the hub's operator naming the holder of a ticket,
/// say): a JSON object with `sub`, `exp` and `tether`, the same strict
/// types. `exp` may be left out (no expiry); if given, it must be after
/// `now`, with no leeway. Other claims (`aud`, `iss`, `nbf`, `iat`, any
/// other) are checked for their type and otherwise ignored.
///
/// # Errors
///
/// [`Error::TokenTooLong`] past [`MAX_TOKEN_LEN`] bytes,
/// [`Error::InvalidClaims`] for anything but an object of the right
/// types, [`Error::Expired`] for an `exp` not after `now`, and
/// [`Error::Grant`] for a `tether` claim that does not give rights (see
/// [`Rights::from_claim`]).
///
/// ```
/// use tether_auth::identity_from_claims;
///
/// let json = r#"{"sub":"alice","exp":2000,"tether":{"sub":["user.{sub}"],"pub":["chat.*"]}}"#;
/// let who = identity_from_claims(json, 1000)?;
/// assert_eq!(who.subject.as_deref(), Some("alice"));
/// assert!(who.rights.may_subscribe("user.alice") && !who.rights.may_subscribe("user.bob"));
/// assert!(who.rights.may_publish("chat.lobby"));
/// assert_eq!(who.expires_at, Some(2000));
/// assert_eq!(identity_from_claims(json, 2000), Err(tether_auth::Error::Expired));
/// assert_eq!(identity_from_claims(r#"{"sub":7}"#, 0), Err(tether_auth::Error::InvalidClaims));
/// # Ok::<(), tether_auth::Error>(())
/// ```
pub fn identity_from_claims(json: &str, now: u64) -> Result<Identity, Error> {
    if json.len() > MAX_TOKEN_LEN {
        return Err(Error::TokenTooLong);
    }
    let Object(claims) = serde_json::from_str::<Object<Claims>>(json).map_err(|_| Error::InvalidClaims)?;
    if claims.exp.is_some_and(|exp| now >= exp.floor) {
        return Err(Error::Expired);
    }
    let rights = match &claims.tether {
        Some(claim) => Rights::from_claim(claim, claims.sub.as_deref())?,
        None => Rights::default(),
    };
    Ok(Identity {
        subject: claims.sub,
        rights,
        expires_at: claims.exp.map(|d| d.floor),
        token_id: claims.jti,
        issued_at: claims.iat.map(|d| d.floor),
    })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

fn choose_key<'k>(keys: &'k Keys, kid: Option<&str>, alg: Algorithm) -> Result<&'k Key, Error> {
    let keys = keys.keys();
    if let Some(kid) = kid {
        let mut named = keys.iter().filter(|k| k.kid() == Some(kid));
        let first = named.next().ok_or(Error::UnknownKeyId)?;
        // Two keys under one kid (a JWKS listing a key for two
        // algorithms): the one of the header's algorithm, if any.
        return Ok(std::iter::once(first)
            .chain(named)
            .find(|k| k.algorithm() == alg)
            .unwrap_or(first));
    }
    if let [only] = keys {
        return Ok(only);
    }
    let mut fitting = keys.iter().filter(|k| k.algorithm() == alg);
    match (fitting.next(), fitting.next()) {
        (Some(key), None) => Ok(key),
        (None, _) => Err(Error::AlgorithmMismatch),
        (Some(_), Some(_)) => Err(Error::AmbiguousKey),
    }
}

/// Why the library refused a header: an `alg` it does not know (`none`
/// among them) is told apart from a header that is not JSON at all.
fn classify_header(token: &str) -> Error {
    #[derive(Deserialize)]
    struct AlgOnly {
        alg: String,
    }
    let part = token.split('.').next().unwrap_or_default();
    match URL_SAFE_NO_PAD
        .decode(part)
        .ok()
        .and_then(|json| serde_json::from_slice::<AlgOnly>(&json).ok())
    {
        Some(header) if Algorithm::from_name(&header.alg).is_none() => Error::UnsupportedAlgorithm,
        _ => Error::Malformed,
    }
}

fn map_error(kind: jsonwebtoken::errors::ErrorKind) -> Error {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::InvalidSignature => Error::BadSignature,
        K::InvalidAlgorithm | K::MissingAlgorithm => Error::AlgorithmMismatch,
        K::Json(_) | K::Utf8(_) => Error::InvalidClaims,
        K::InvalidEcdsaKey | K::InvalidEddsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
            Error::InvalidKey("refused by the crypto backend".into())
        }
        // Base64 and anything the library adds later.
        _ => Error::Malformed,
    }
}

fn check(claims: &Claims, v: &Validation, now: u64) -> Result<(), Error> {
    match claims.exp {
        Some(exp) if now >= exp.floor.saturating_add(v.leeway) => return Err(Error::Expired),
        None if v.require_exp => return Err(Error::MissingExpiry),
        _ => {}
    }
    if claims
        .nbf
        .is_some_and(|nbf| now.saturating_add(v.leeway) < nbf.ceil)
    {
        return Err(Error::NotYetValid);
    }
    if claims
        .iat
        .is_some_and(|iat| iat.ceil > now.saturating_add(v.leeway))
    {
        return Err(Error::IssuedInFuture);
    }
    match &claims.aud {
        None if v.audience.is_empty() => {}
        None => return Err(Error::Audience),
        Some(aud) => {
            if !aud.names().any(|a| v.audience.iter().any(|ours| ours == a)) {
                return Err(Error::Audience);
            }
        }
    }
    if !v.issuer.is_empty() && !claims.iss.as_ref().is_some_and(|iss| v.issuer.contains(iss)) {
        return Err(Error::Issuer);
    }
    Ok(())
}

/// The claims this crate reads; serde refuses a wrong type and a claim
/// given twice, and ignores the others.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<NumericDate>,
    #[serde(default)]
    nbf: Option<NumericDate>,
    #[serde(default)]
    iat: Option<NumericDate>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    tether: Option<TetherClaim>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn names(&self) -> impl Iterator<Item = &str> {
        let (one, many) = match self {
            Audience::One(a) => (Some(a.as_str()), &[][..]),
            Audience::Many(list) => (None, list.as_slice()),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

/// A NumericDate (RFC 7519, section 2): seconds since the epoch, maybe
/// with a fraction, kept rounded both ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NumericDate {
    floor: u64,
    ceil: u64,
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NumericDate, D::Error> {
        struct Seconds;
        impl Visitor<'_> for Seconds {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds since the epoch")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate { floor: v, ceil: v })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                u64::try_from(v)
                    .map(|v| NumericDate { floor: v, ceil: v })
                    .map_err(|_| E::custom("a date before 1970"))
            }
            // No TryFrom<f64> for u64: the range check below is the proof
            // that neither cast truncates.
            #[allow(clippy::cast_possible_truncation)]
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                // 2^53: past it, an f64 has no fraction, and every whole
                // number converts exactly; the bound keeps `as` exact.
                if !(0.0..9_007_199_254_740_992.0).contains(&v) {
                    return Err(E::custom("a date out of range"));
                }
                Ok(NumericDate {
                    floor: v.floor() as u64,
                    ceil: v.ceil() as u64,
                })
            }
        }
        deserializer.deserialize_any(Seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(json: &str) -> Result<NumericDate, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(date("7").unwrap(), NumericDate { floor: 7, ceil: 7 });
        assert_eq!(date("7.25").unwrap(), NumericDate { floor: 7, ceil: 8 });
        assert_eq!(date("7.0").unwrap(), NumericDate { floor: 7, ceil: 7 });
        assert_eq!(date("18446744073709551615").unwrap().floor, u64::MAX);
        for bad in [
            "-1",
            "-0.5",
            "1e300",
            "\"7\"",
            "null",
            "true",
            "[7]",
            "18446744073709551616",
        ] {
            assert!(date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn claims_are_strict() {
        let parse = |s: &str| serde_json::from_str::<Object<Claims>>(s).is_ok();
        assert!(parse(r#"{"sub":"a","aud":["x","y"],"exp":1,"other":{"any":1}}"#));
        assert!(parse(r#"{"exp":null,"sub":null}"#));
        assert!(!parse(r#"{"exp":"1"}"#));
        assert!(!parse(r#"{"nbf":"99999999999"}"#));
        assert!(!parse(r#"{"iat":{}}"#));
        assert!(!parse(r#"{"jti":7}"#));
        assert!(!parse(r#"{"sub":1}"#));
        assert!(!parse(r#"{"aud":[1]}"#));
        assert!(!parse(r#"{"iss":["a"]}"#));
        assert!(!parse(r#"{"exp":1,"exp":2}"#));
        assert!(!parse(r#"{"tether":["a"]}"#));
        assert!(!parse("[]"));
        assert!(!parse("[null,null,null,1]"));
        assert!(!parse("null"));
        assert!(serde_json::from_str::<Claims>("[]").is_ok(), "what Object is for");
    }

    #[test]
    fn claims_from_a_trusted_caller() {
        let who =
            identity_from_claims(r#"{"sub":"bob","tether":{"sub":["user.{sub}.*"]},"aud":"x"}"#, 5).unwrap();
        assert_eq!(who.subject.as_deref(), Some("bob"));
        assert_eq!(who.expires_at, None);
        assert!(who.rights.may_subscribe("user.bob.in") && !who.rights.may_publish("user.bob.in"));
        assert_eq!(identity_from_claims("{}", 0).unwrap().rights, Rights::default());
        assert_eq!(
            identity_from_claims(r#"{"exp":10}"#, 9).unwrap().expires_at,
            Some(10)
        );
        assert_eq!(identity_from_claims(r#"{"exp":10}"#, 10), Err(Error::Expired));
        for bad in [
            "",
            "[]",
            "null",
            r#"{"sub":1}"#,
            r#"{"exp":"1"}"#,
            r#"{"tether":[]}"#,
            r#"{"sub":"a","sub":"b"}"#,
        ] {
            assert_eq!(identity_from_claims(bad, 0), Err(Error::InvalidClaims), "{bad}");
        }
        assert!(matches!(
            identity_from_claims(r#"{"sub":"a.b","tether":{"sub":["user.{sub}"]}}"#, 0),
            Err(Error::Grant(_))
        ));
        let long = format!(r#"{{"sub":"{}"}}"#, "a".repeat(MAX_TOKEN_LEN));
        assert_eq!(identity_from_claims(&long, 0), Err(Error::TokenTooLong));
    }

    fn claims(exp: Option<u64>, nbf: Option<u64>, iat: Option<u64>) -> Claims {
        let d = |v: u64| NumericDate { floor: v, ceil: v };
        Claims {
            sub: None,
            iss: None,
            aud: None,
            exp: exp.map(d),
            nbf: nbf.map(d),
            iat: iat.map(d),
            jti: None,
            tether: None,
        }
    }

    #[test]
    fn time_boundaries_do_not_overflow() {
        let v = Validation::new().leeway(u64::MAX);
        assert!(
            check(
                &claims(Some(u64::MAX), Some(u64::MAX), Some(u64::MAX)),
                &v,
                u64::MAX
            )
            .is_err()
        );
        assert!(check(&claims(Some(u64::MAX), Some(u64::MAX), Some(u64::MAX)), &v, 0).is_ok());
        let v = Validation::new().leeway(0);
        assert_eq!(check(&claims(Some(0), None, None), &v, 0), Err(Error::Expired));
        assert_eq!(check(&claims(Some(1), None, None), &v, 0), Ok(()));
    }

    #[test]
    fn fractions_round_the_safe_way() {
        let v = Validation::new().leeway(0);
        let c = |exp: &str, nbf: &str| {
            serde_json::from_str::<Claims>(&format!(r#"{{"exp":{exp},"nbf":{nbf}}}"#)).unwrap()
        };
        // exp 100.5 at 100: before it, but rounded down it has passed.
        assert_eq!(check(&c("100.5", "1"), &v, 100), Err(Error::Expired));
        assert_eq!(check(&c("100.5", "1"), &v, 99), Ok(()));
        // nbf 100.5 at 100: not yet, and rounded up it is not yet either.
        assert_eq!(check(&c("200", "100.5"), &v, 100), Err(Error::NotYetValid));
        assert_eq!(check(&c("200", "100.5"), &v, 101), Ok(()));
    }

    #[test]
    fn key_choice() {
        let hs = |kid: Option<&str>| {
            let k = Key::hmac(&[1; 32]).unwrap();
            match kid {
                Some(kid) => k.with_kid(kid),
                None => k,
            }
        };
        let one = Keys::new(vec![hs(Some("a"))]).unwrap();
        assert!(choose_key(&one, None, Algorithm::HS256).is_ok());
        // A single key is chosen whatever the alg; the caller then refuses a mismatch.
        assert_eq!(
            choose_key(&one, None, Algorithm::RS256).unwrap().algorithm(),
            Algorithm::HS256
        );
        assert_eq!(
            choose_key(&one, Some("b"), Algorithm::HS256).unwrap_err(),
            Error::UnknownKeyId
        );
        let two = Keys::new(vec![hs(Some("a")), hs(Some("b"))]).unwrap();
        assert_eq!(
            choose_key(&two, None, Algorithm::HS256).unwrap_err(),
            Error::AmbiguousKey
        );
        assert_eq!(
            choose_key(&two, None, Algorithm::ES256).unwrap_err(),
            Error::AlgorithmMismatch
        );
        assert_eq!(
            choose_key(&two, Some("b"), Algorithm::HS256).unwrap().kid(),
            Some("b")
        );
    }

    #[test]
    fn header_classification() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        assert_eq!(
            classify_header(&format!("{}.e30.", enc(r#"{"alg":"none"}"#))),
            Error::UnsupportedAlgorithm
        );
        assert_eq!(
            classify_header(&format!("{}.e30.", enc(r#"{"alg":"HS384"}"#))),
            Error::UnsupportedAlgorithm
        );
        assert_eq!(
            classify_header(&format!("{}.e30.", enc(r#"{"alg":"HS256","typ":1}"#))),
            Error::Malformed
        );
        assert_eq!(
            classify_header(&format!("{}.e30.", enc(r#"{"typ":"JWT"}"#))),
            Error::Malformed
        );
        assert_eq!(classify_header("!!.e30."), Error::Malformed);
    }
}
