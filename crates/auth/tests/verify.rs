//! Tokens made here with jsonwebtoken's encoder and test keys, verified by
//! tether-auth: each algorithm, every refusal.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use tether_auth::{Algorithm, Error, Key, KeyFile, Keys, MAX_TOKEN_LEN, Validation, verify};

// A 2048-bit RSA key made with `openssl genpkey`, for these tests only.
const RSA_PRIVATE: &[u8] = include_bytes!("keys/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("keys/rsa_public.pem");
const RSA_JWK: &str = include_str!("keys/rsa_public.jwk.json");

const SECRET: &[u8] = b"test secret, thirty-two bytes at least";
const NOW: u64 = 1_700_000_000;

fn claims() -> Value {
    json!({ "sub": "alice", "exp": NOW + 600, "iat": NOW - 10 })
}

fn header(alg: jsonwebtoken::Algorithm, kid: Option<&str>) -> Header {
    let mut h = Header::new(alg);
    h.kid = kid.map(Into::into);
    h
}

fn hs256(claims: &Value) -> String {
    encode(&Header::default(), claims, &EncodingKey::from_secret(SECRET)).unwrap()
}

fn rs256(claims: &Value, kid: Option<&str>) -> String {
    let key = EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap();
    encode(&header(jsonwebtoken::Algorithm::RS256, kid), claims, &key).unwrap()
}

struct Pair {
    private: rcgen::KeyPair,
}

impl Pair {
    fn ec() -> Pair {
        Pair {
            private: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        }
    }

    fn ed() -> Pair {
        Pair {
            private: rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
        }
    }

    fn sign(&self, claims: &Value, kid: Option<&str>) -> String {
        let pem = self.private.serialize_pem();
        let (alg, key) = if self.private.algorithm() == &rcgen::PKCS_ED25519 {
            (
                jsonwebtoken::Algorithm::EdDSA,
                EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            )
        } else {
            (
                jsonwebtoken::Algorithm::ES256,
                EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            )
        };
        encode(&header(alg, kid), claims, &key).unwrap()
    }

    fn public_pem(&self) -> String {
        self.private.public_key_pem()
    }

    fn jwk(&self, kid: &str) -> Value {
        let raw = self.private.public_key_raw();
        if self.private.algorithm() == &rcgen::PKCS_ED25519 {
            json!({ "kty": "OKP", "crv": "Ed25519", "kid": kid, "x": URL_SAFE_NO_PAD.encode(raw) })
        } else {
            assert_eq!(raw.len(), 65);
            json!({
                "kty": "EC", "crv": "P-256", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
            })
        }
    }
}

fn hmac_keys() -> Keys {
    Keys::from_secret(SECRET).unwrap()
}

fn ok(token: &str, keys: &Keys) -> tether_auth::Identity {
    verify(token, keys, &Validation::new(), NOW).unwrap()
}

fn err(token: &str, keys: &Keys) -> Error {
    verify(token, keys, &Validation::new(), NOW).unwrap_err()
}

/// A token of this header and these claims, with this signature: what an
/// attacker can write without any key.
fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!(
        "{}.{}.{}",
        enc(header),
        enc(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[test]
fn each_algorithm_is_accepted() {
    let who = ok(&hs256(&claims()), &hmac_keys());
    assert_eq!(who.subject.as_deref(), Some("alice"));
    assert_eq!(who.expires_at, Some(NOW + 600));

    let rsa = Keys::from_pem(RSA_PUBLIC).unwrap();
    assert_eq!(rsa.keys()[0].algorithm(), Algorithm::RS256);
    ok(&rs256(&claims(), None), &rsa);

    let ec = Pair::ec();
    let keys = Keys::from_pem(ec.public_pem().as_bytes()).unwrap();
    assert_eq!(keys.keys()[0].algorithm(), Algorithm::ES256);
    ok(&ec.sign(&claims(), None), &keys);

    let ed = Pair::ed();
    let keys = Keys::from_pem(ed.public_pem().as_bytes()).unwrap();
    assert_eq!(keys.keys()[0].algorithm(), Algorithm::EdDSA);
    ok(&ed.sign(&claims(), None), &keys);
}

#[test]
fn another_key_of_the_same_algorithm_does_not_verify() {
    let other = Keys::from_secret(b"another secret, thirty-two bytes or more").unwrap();
    assert_eq!(err(&hs256(&claims()), &other), Error::BadSignature);
    let (a, b) = (Pair::ec(), Pair::ec());
    let keys = Keys::from_pem(b.public_pem().as_bytes()).unwrap();
    assert_eq!(err(&a.sign(&claims(), None), &keys), Error::BadSignature);
    let (a, b) = (Pair::ed(), Pair::ed());
    let keys = Keys::from_pem(b.public_pem().as_bytes()).unwrap();
    assert_eq!(err(&a.sign(&claims(), None), &keys), Error::BadSignature);
}

#[test]
fn alg_none_and_unknown_algorithms_are_refused() {
    for alg in ["none", "None", "NONE", "", "HS1", "RS1"] {
        let token = forge(&json!({ "alg": alg, "typ": "JWT" }), &claims(), b"");
        assert_eq!(err(&token, &hmac_keys()), Error::UnsupportedAlgorithm, "{alg}");
        // With no signature part at all.
        let token = token.trim_end_matches('.').to_string() + ".";
        assert_eq!(err(&token, &hmac_keys()), Error::UnsupportedAlgorithm, "{alg}");
    }
    // Algorithms jsonwebtoken knows and this crate does not verify.
    let token = encode(
        &Header::new(jsonwebtoken::Algorithm::HS384),
        &claims(),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert_eq!(err(&token, &hmac_keys()), Error::UnsupportedAlgorithm);
    let token = encode(
        &Header::new(jsonwebtoken::Algorithm::PS256),
        &claims(),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
    )
    .unwrap();
    // PS256 is verified, with a key of a set that says so; a PEM RSA key
    // is RS256's alone.
    assert_eq!(
        err(&token, &Keys::from_pem(RSA_PUBLIC).unwrap()),
        Error::AlgorithmMismatch
    );
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    // The confusion attack: the public key's bytes as an HMAC secret.
    let token = encode(
        &Header::default(),
        &claims(),
        &EncodingKey::from_secret(RSA_PUBLIC),
    )
    .unwrap();
    let rsa = Keys::from_pem(RSA_PUBLIC).unwrap();
    assert_eq!(err(&token, &rsa), Error::AlgorithmMismatch);
    // The same through a JWKS, the token naming the RSA key's kid.
    let jwks = format!(r#"{{"keys":[{RSA_JWK}]}}"#);
    let keys = Keys::from_jwks(jwks.as_bytes()).unwrap();
    let h = Header {
        kid: Some("rsa-1".into()),
        ..Header::default()
    };
    let token = encode(&h, &claims(), &EncodingKey::from_secret(RSA_PUBLIC)).unwrap();
    assert_eq!(err(&token, &keys), Error::AlgorithmMismatch);
    // And every other mismatch between header and key.
    let ec = Pair::ec();
    let ec_keys = Keys::from_pem(ec.public_pem().as_bytes()).unwrap();
    assert_eq!(err(&rs256(&claims(), None), &ec_keys), Error::AlgorithmMismatch);
    assert_eq!(err(&ec.sign(&claims(), None), &rsa), Error::AlgorithmMismatch);
    assert_eq!(
        err(&ec.sign(&claims(), None), &hmac_keys()),
        Error::AlgorithmMismatch
    );
    assert_eq!(
        err(&Pair::ed().sign(&claims(), None), &ec_keys),
        Error::AlgorithmMismatch
    );
}

#[test]
fn short_secrets_are_refused_when_the_key_is_built() {
    assert_eq!(
        Keys::from_secret(&SECRET[..31]).unwrap_err(),
        Error::ShortSecret { len: 31 }
    );
    assert_eq!(Key::hmac(b"").unwrap_err(), Error::ShortSecret { len: 0 });
    assert!(Keys::from_secret(&SECRET[..32]).is_ok());
    let jwks = json!({ "keys": [{ "kty": "oct", "k": URL_SAFE_NO_PAD.encode(&SECRET[..16]) }] });
    assert_eq!(
        Keys::from_jwks(jwks.to_string().as_bytes()).unwrap_err(),
        Error::ShortSecret { len: 16 }
    );
}

#[test]
fn time_claims_and_leeway_boundaries() {
    let keys = hmac_keys();
    let at = |claims: Value, now: u64, leeway: u64| {
        verify(&hs256(&claims), &keys, &Validation::new().leeway(leeway), now)
    };

    // exp: good while now < exp + leeway.
    let exp = json!({ "exp": NOW });
    assert!(at(exp.clone(), NOW - 1, 0).is_ok());
    assert_eq!(at(exp.clone(), NOW, 0).unwrap_err(), Error::Expired);
    assert!(at(exp.clone(), NOW + 29, 30).is_ok());
    assert_eq!(at(exp.clone(), NOW + 30, 30).unwrap_err(), Error::Expired);

    // nbf: good once now + leeway >= nbf.
    let nbf = json!({ "exp": NOW + 1000, "nbf": NOW });
    assert!(at(nbf.clone(), NOW, 0).is_ok());
    assert_eq!(at(nbf.clone(), NOW - 1, 0).unwrap_err(), Error::NotYetValid);
    assert!(at(nbf.clone(), NOW - 30, 30).is_ok());
    assert_eq!(at(nbf.clone(), NOW - 31, 30).unwrap_err(), Error::NotYetValid);

    // iat: refused if after now + leeway.
    let iat = json!({ "exp": NOW + 1000, "iat": NOW });
    assert!(at(iat.clone(), NOW, 0).is_ok());
    assert_eq!(at(iat.clone(), NOW - 1, 0).unwrap_err(), Error::IssuedInFuture);
    assert!(at(iat.clone(), NOW - 30, 30).is_ok());
    assert_eq!(at(iat.clone(), NOW - 31, 30).unwrap_err(), Error::IssuedInFuture);

    // exp is required unless the validation says otherwise.
    let none = json!({ "sub": "a" });
    assert_eq!(at(none.clone(), NOW, 30).unwrap_err(), Error::MissingExpiry);
    let lax = Validation::new().require_exp(false);
    assert!(verify(&hs256(&none), &keys, &lax, NOW).is_ok());
    assert_eq!(verify(&hs256(&none), &keys, &lax, NOW).unwrap().expires_at, None);
}

#[test]
fn time_claims_of_the_wrong_type_are_refused() {
    // GHSA-h395-gr6q-cpjc: a string where a number belongs must not pass
    // as an absent claim.
    let keys = hmac_keys();
    let lax = Validation::new().require_exp(false);
    for claims in [
        json!({ "exp": "99999999999" }),
        json!({ "nbf": "99999999999" }),
        json!({ "iat": "0" }),
        json!({ "exp": -1 }),
        json!({ "exp": true }),
        json!({ "exp": [NOW + 10] }),
        json!({ "sub": 7 }),
        json!({ "aud": 7 }),
        json!({ "iss": ["x"] }),
        json!({ "tether": "x" }),
        json!({ "tether": { "sub": "x" } }),
    ] {
        assert_eq!(
            verify(&hs256(&claims), &keys, &lax, NOW).unwrap_err(),
            Error::InvalidClaims,
            "{claims}"
        );
    }
    // A payload that is not an object, or not JSON.
    for payload in [&b"[]"[..], b"null", b"7", b"{", b"\xff"] {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = jsonwebtoken::crypto::sign(
            message.as_bytes(),
            &EncodingKey::from_secret(SECRET),
            jsonwebtoken::Algorithm::HS256,
        )
        .unwrap();
        let token = format!("{message}.{signature}");
        assert_eq!(
            verify(&token, &keys, &lax, NOW).unwrap_err(),
            Error::InvalidClaims
        );
    }
}

#[test]
fn audience_and_issuer() {
    let keys = hmac_keys();
    let v = Validation::new()
        .audience(["tether", "hub"])
        .issuer(["https://idp"]);
    let with = |extra: Value| {
        let mut c = claims();
        for (k, val) in extra.as_object().unwrap() {
            c[k] = val.clone();
        }
        verify(&hs256(&c), &keys, &v, NOW)
    };
    assert!(with(json!({ "aud": "hub", "iss": "https://idp" })).is_ok());
    assert!(with(json!({ "aud": ["other", "tether"], "iss": "https://idp" })).is_ok());
    assert_eq!(
        with(json!({ "aud": "other", "iss": "https://idp" })).unwrap_err(),
        Error::Audience
    );
    assert_eq!(
        with(json!({ "aud": [], "iss": "https://idp" })).unwrap_err(),
        Error::Audience
    );
    assert_eq!(
        with(json!({ "aud": "Tether", "iss": "https://idp" })).unwrap_err(),
        Error::Audience
    );
    assert_eq!(
        with(json!({ "iss": "https://idp" })).unwrap_err(),
        Error::Audience
    );
    assert_eq!(
        with(json!({ "aud": "hub", "iss": "https://evil" })).unwrap_err(),
        Error::Issuer
    );
    assert_eq!(with(json!({ "aud": "hub" })).unwrap_err(), Error::Issuer);

    // No audience configured: a token that names one is not for us.
    let mut c = claims();
    c["aud"] = json!("someone");
    assert_eq!(err(&hs256(&c), &keys), Error::Audience);
    // No issuer configured: any issuer.
    let mut c = claims();
    c["iss"] = json!("anyone");
    assert!(verify(&hs256(&c), &keys, &Validation::new(), NOW).is_ok());
}

#[test]
fn jwks_key_choice() {
    let (ec1, ec2, ed) = (Pair::ec(), Pair::ec(), Pair::ed());
    let jwks = json!({ "keys": [
        ec1.jwk("ec-1"),
        ec2.jwk("ec-2"),
        ed.jwk("ed-1"),
        serde_json::from_str::<Value>(RSA_JWK).unwrap(),
        { "kty": "oct", "kid": "hs-1", "k": URL_SAFE_NO_PAD.encode(SECRET) },
        { "kty": "RSA", "use": "enc", "kid": "enc-1", "n": "AQAB", "e": "AQAB" },
    ]});
    let keys = Keys::from_jwks(jwks.to_string().as_bytes()).unwrap();
    assert_eq!(keys.keys().len(), 5);

    assert!(verify(&ec1.sign(&claims(), Some("ec-1")), &keys, &Validation::new(), NOW).is_ok());
    assert!(verify(&ec2.sign(&claims(), Some("ec-2")), &keys, &Validation::new(), NOW).is_ok());
    assert!(verify(&ed.sign(&claims(), Some("ed-1")), &keys, &Validation::new(), NOW).is_ok());
    assert!(verify(&rs256(&claims(), Some("rsa-1")), &keys, &Validation::new(), NOW).is_ok());
    let h = Header {
        kid: Some("hs-1".into()),
        ..Header::default()
    };
    let hs = encode(&h, &claims(), &EncodingKey::from_secret(SECRET)).unwrap();
    assert!(verify(&hs, &keys, &Validation::new(), NOW).is_ok());

    // The kid decides: ec-1's token under ec-2's kid does not verify.
    assert_eq!(
        err(&ec1.sign(&claims(), Some("ec-2")), &keys),
        Error::BadSignature
    );
    assert_eq!(
        err(&ec1.sign(&claims(), Some("ec-9")), &keys),
        Error::UnknownKeyId
    );
    assert_eq!(
        err(&ec1.sign(&claims(), Some("enc-1")), &keys),
        Error::UnknownKeyId
    );
    assert_eq!(err(&ec1.sign(&claims(), Some("")), &keys), Error::UnknownKeyId);
    // A kid of a key of another algorithm.
    assert_eq!(
        err(&ec1.sign(&claims(), Some("rsa-1")), &keys),
        Error::AlgorithmMismatch
    );

    // No kid: refused where two keys fit the alg, accepted where one does.
    assert_eq!(err(&ec1.sign(&claims(), None), &keys), Error::AmbiguousKey);
    assert!(verify(&ed.sign(&claims(), None), &keys, &Validation::new(), NOW).is_ok());
    assert!(verify(&rs256(&claims(), None), &keys, &Validation::new(), NOW).is_ok());
    assert!(verify(&hs256(&claims()), &keys, &Validation::new(), NOW).is_ok());
    let only_ec = Keys::from_jwks(
        json!({ "keys": [ec1.jwk("ec-1"), ec2.jwk("ec-2")] })
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(err(&hs256(&claims()), &only_ec), Error::AlgorithmMismatch);
}

#[test]
fn jwks_from_pem_and_components_agree() {
    // The committed JWK is the committed PEM's key.
    let keys = Keys::from_jwks(format!(r#"{{"keys":[{RSA_JWK}]}}"#).as_bytes()).unwrap();
    assert_eq!(keys.keys()[0].algorithm(), Algorithm::RS256);
    assert_eq!(keys.keys()[0].kid(), Some("rsa-1"));
    ok(&rs256(&claims(), None), &keys);
}

#[test]
fn tampering_is_refused() {
    let keys = hmac_keys();
    let token = hs256(&claims());
    let parts: Vec<&str> = token.split('.').collect();

    // Another payload under the same signature.
    let mut c = claims();
    c["sub"] = json!("mallory");
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
    assert_eq!(
        err(&format!("{}.{payload}.{}", parts[0], parts[2]), &keys),
        Error::BadSignature
    );

    // Every single character of the signature changed.
    let sig = parts[2].as_bytes();
    for i in 0..sig.len() {
        let mut s = sig.to_vec();
        s[i] = if s[i] == b'A' { b'B' } else { b'A' };
        let t = format!("{}.{}.{}", parts[0], parts[1], std::str::from_utf8(&s).unwrap());
        let e = err(&t, &keys);
        // The last character carries spare bits: base64 refuses some changes there.
        assert!(matches!(e, Error::BadSignature | Error::Malformed), "{i}: {e:?}");
    }
    // A signature cut short, lengthened, emptied.
    assert_eq!(
        err(&format!("{}.{}.{}", parts[0], parts[1], &parts[2][..40]), &keys),
        Error::BadSignature
    );
    assert_eq!(err(&format!("{token}AAAA"), &keys), Error::BadSignature);
    assert_eq!(
        err(&format!("{}.{}.", parts[0], parts[1]), &keys),
        Error::BadSignature
    );

    // Same for the other algorithms.
    let rsa = Keys::from_pem(RSA_PUBLIC).unwrap();
    let token = rs256(&claims(), None);
    let (message, _) = token.rsplit_once('.').unwrap();
    let other = rs256(&json!({ "sub": "mallory", "exp": NOW + 600 }), None);
    let (_, other_sig) = other.rsplit_once('.').unwrap();
    assert_eq!(err(&format!("{message}.{other_sig}"), &rsa), Error::BadSignature);
    let ec = Pair::ec();
    let ec_keys = Keys::from_pem(ec.public_pem().as_bytes()).unwrap();
    let token = ec.sign(&claims(), None);
    let other = ec.sign(&json!({ "sub": "mallory", "exp": NOW + 600 }), None);
    let (message, _) = token.rsplit_once('.').unwrap();
    let (_, other_sig) = other.rsplit_once('.').unwrap();
    assert_eq!(
        err(&format!("{message}.{other_sig}"), &ec_keys),
        Error::BadSignature
    );

    // A header changed after signing: the signature covers it.
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"at+jwt"}"#);
    let token = hs256(&claims());
    let rest = token.split_once('.').unwrap().1;
    assert_eq!(err(&format!("{h}.{rest}"), &keys), Error::BadSignature);
}

#[test]
fn malformed_tokens() {
    let keys = hmac_keys();
    let token = hs256(&claims());
    for bad in [
        String::new(),
        ".".into(),
        "..".into(),
        "a.b".into(),
        "a.b.c.d".into(),
        format!("{token}.x"),
        format!(" {token}"),
        format!("{token}\n"),
        token.replace('.', ".."),
        token.replacen('e', "+", 1),
        format!("{token}="),
        "!!.e30.".into(),
        format!("{}.e30.", URL_SAFE_NO_PAD.encode(b"not json")),
        format!("{}.e30.", URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT"}"#)),
        format!("{}.e30.", URL_SAFE_NO_PAD.encode(br#"{"alg":7}"#)),
    ] {
        assert_eq!(err(&bad, &keys), Error::Malformed, "{bad:?}");
    }
    let long = format!("{}.{}.{}", "a".repeat(MAX_TOKEN_LEN), "b", "c");
    assert_eq!(err(&long, &keys), Error::TokenTooLong);
    // A token of exactly the limit is read (and fails on its signature).
    let mut c = claims();
    c["pad"] = json!("");
    let base = hs256(&c).len();
    c["pad"] = json!("x".repeat((MAX_TOKEN_LEN - base) * 3 / 4));
    let near = hs256(&c);
    assert!(
        near.len() <= MAX_TOKEN_LEN && near.len() > MAX_TOKEN_LEN - 4,
        "{}",
        near.len()
    );
    assert!(verify(&near, &keys, &Validation::new(), NOW).is_ok());
}

#[test]
fn critical_headers_are_refused() {
    let h = Header {
        crit: Some(vec!["exp".into()]),
        ..Header::default()
    };
    let token = encode(&h, &claims(), &EncodingKey::from_secret(SECRET)).unwrap();
    assert_eq!(err(&token, &hmac_keys()), Error::CriticalHeader);
}

#[test]
fn claims_become_rights() {
    let keys = hmac_keys();
    let mut c = claims();
    c["tether"] = json!({ "sub": ["room.7", "user.{sub}.*"], "pub": ["room.7"] });
    let who = ok(&hs256(&c), &keys);
    assert!(who.rights.may_subscribe("room.7"));
    assert!(who.rights.may_subscribe("user.alice.inbox"));
    assert!(!who.rights.may_subscribe("user.bob.inbox"));
    assert!(!who.rights.may_subscribe("user.alice"));
    assert!(who.rights.may_publish("room.7"));
    assert!(!who.rights.may_publish("room.8"));
    assert!(!who.rights.may_publish("user.alice.inbox"));

    // No tether claim: no rights.
    let who = ok(&hs256(&claims()), &keys);
    assert!(!who.rights.may_subscribe("room.7"));

    // A subject that would widen the rights refuses the token.
    for sub in ["*", "al*", "a.b", "bob:x", "", "a/b"] {
        c["sub"] = json!(sub);
        assert!(matches!(err(&hs256(&c), &keys), Error::Grant(_)), "{sub:?}");
    }
    c.as_object_mut().unwrap().remove("sub");
    assert!(matches!(err(&hs256(&c), &keys), Error::Grant(_)));
    // A pattern that does not parse refuses the token.
    let mut c = claims();
    c["tether"] = json!({ "pub": ["a*b"] });
    assert!(matches!(err(&hs256(&c), &keys), Error::Grant(_)));
}

#[test]
fn pem_files() {
    let rsa_private = Key::from_pem(RSA_PRIVATE).unwrap_err();
    assert_eq!(rsa_private, Error::PrivateKey);
    assert!(rsa_private.is_config());
    let ec = Pair::ec();
    assert_eq!(
        Key::from_pem(ec.private.serialize_pem().as_bytes()).unwrap_err(),
        Error::PrivateKey
    );
    // A P-384 key is an ES384 key, and verifies ES384 tokens only.
    let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let key = Key::from_pem(p384.public_key_pem().as_bytes()).unwrap();
    assert_eq!(key.algorithm(), Algorithm::ES384);
    let keys = Keys::new(vec![key]).unwrap();
    let signer = EncodingKey::from_ec_pem(p384.serialize_pem().as_bytes()).unwrap();
    let token = encode(&Header::new(jsonwebtoken::Algorithm::ES384), &claims(), &signer).unwrap();
    assert!(verify(&token, &keys, &Validation::new(), NOW).is_ok());
    // A PEM with text around it, as some tools write.
    let framed = format!("comment\n{}\n", std::str::from_utf8(RSA_PUBLIC).unwrap());
    assert_eq!(
        Key::from_pem(framed.as_bytes()).unwrap().algorithm(),
        Algorithm::RS256
    );
}

#[test]
fn key_files() {
    let dir = std::env::temp_dir().join(format!("tether-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    let pem = dir.join("key.pem");
    let jwks = dir.join("jwks.json");
    std::fs::write(&secret, [SECRET, b"\n"].concat()).unwrap();
    std::fs::write(&pem, RSA_PUBLIC).unwrap();
    std::fs::write(&jwks, format!(r#"{{"keys":[{RSA_JWK}]}}"#)).unwrap();

    let keys = Keys::from_files(&[KeyFile::Secret(secret.clone())]).unwrap();
    ok(&hs256(&claims()), &keys);
    let keys = Keys::from_files(&[KeyFile::Pem(pem.clone())]).unwrap();
    ok(&rs256(&claims(), None), &keys);
    // Several files: one set; the RSA key is there twice, so a token
    // without kid is ambiguous, and one with the JWK's kid is not.
    let all = [
        KeyFile::Secret(secret),
        KeyFile::Pem(pem),
        KeyFile::Jwks(jwks.clone()),
    ];
    let keys = Keys::from_files(&all).unwrap();
    assert_eq!(keys.keys().len(), 3);
    ok(&hs256(&claims()), &keys);
    assert_eq!(err(&rs256(&claims(), None), &keys), Error::AmbiguousKey);
    ok(&rs256(&claims(), Some("rsa-1")), &keys);

    assert!(matches!(
        Keys::from_files(&[KeyFile::Pem(dir.join("missing"))]),
        Err(Error::InvalidKey(_))
    ));
    assert_eq!(Keys::from_files(&[]).unwrap_err(), Error::NoUsableKey);
    let big = dir.join("big");
    std::fs::write(&big, vec![b'a'; tether_auth::MAX_KEY_FILE_LEN + 1]).unwrap();
    assert!(matches!(
        Keys::from_files(&[KeyFile::Secret(big)]),
        Err(Error::InvalidKey(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_display() {
    for e in [
        Error::ShortSecret { len: 3 },
        Error::Expired,
        Error::Grant("x".into()),
    ] {
        assert!(!e.to_string().is_empty());
    }
    assert!(!Error::BadSignature.is_config());
    assert!(Error::NoUsableKey.is_config());
}
