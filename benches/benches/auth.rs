//! What `tether_auth::verify` costs per token, for each algorithm, beside
//! a baseline measured in the same run: the same token's payload taken
//! without any check of its signature (base64url-decoded and parsed by
//! `serde_json` into a `Value`), the least any reading of its claims costs.
//!
//! Every token holds the same claims (`sub`, `aud`, `iss`, `exp`, `iat`
//! and a `tether` claim of three patterns), signed with jsonwebtoken: HS256
//! with a 39-byte secret, RS256 with a 2048-bit key, ES256 on P-256, and
//! EdDSA with Ed25519. One verification is one element, so criterion shows
//! verifications per second.
//!
//! Run with `cargo bench -p tether-benches --bench auth`.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::hint::black_box;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};
use tether_auth::{Keys, Validation, verify};

// The 2048-bit RSA key of tether-auth's tests.
const RSA_PRIVATE: &[u8] = include_bytes!("../../crates/auth/tests/keys/rsa_private.pem");
const RSA_PUBLIC: &[u8] = include_bytes!("../../crates/auth/tests/keys/rsa_public.pem");
const SECRET: &[u8] = b"bench secret, thirty-two bytes at least";
const NOW: u64 = 1_700_000_000;

fn claims() -> Value {
    json!({
        "sub": "alice",
        "aud": "tether",
        "iss": "https://issuer.example",
        "iat": NOW - 10,
        "exp": NOW + 600,
        "tether": { "sub": ["room.7", "user.{sub}.*"], "pub": ["room.7"] },
    })
}

/// A token of each algorithm and the keys that verify it.
fn tokens() -> Vec<(&'static str, String, Keys)> {
    let claims = claims();
    let sign = |alg, key: &EncodingKey| encode(&Header::new(alg), &claims, key).unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    use jsonwebtoken::Algorithm as A;
    vec![
        (
            "HS256",
            sign(A::HS256, &EncodingKey::from_secret(SECRET)),
            Keys::from_secret(SECRET).unwrap(),
        ),
        (
            "RS256",
            sign(A::RS256, &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap()),
            Keys::from_pem(RSA_PUBLIC).unwrap(),
        ),
        (
            "ES256",
            sign(
                A::ES256,
                &EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap(),
            ),
            Keys::from_pem(ec.public_key_pem().as_bytes()).unwrap(),
        ),
        (
            "EdDSA",
            sign(
                A::EdDSA,
                &EncodingKey::from_ed_pem(ed.serialize_pem().as_bytes()).unwrap(),
            ),
            Keys::from_pem(ed.public_key_pem().as_bytes()).unwrap(),
        ),
    ]
}

/// The baseline: the claims of `token` with no check at all.
fn decode_unverified(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let json = URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&json).unwrap()
}

fn bench(c: &mut Criterion) {
    let validation = Validation::new()
        .audience(["tether"])
        .issuer(["https://issuer.example"]);
    let tokens = tokens();
    // Every token verifies, and its payload is what the baseline reads.
    for (alg, token, keys) in &tokens {
        let who = verify(token, keys, &validation, NOW).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert!(who.rights.may_subscribe("user.alice.inbox"), "{alg}");
        assert_eq!(decode_unverified(token), claims(), "{alg}");
    }

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    let (_, hs256, _) = &tokens[0];
    group.bench_function("decode_unverified", |b| {
        b.iter(|| decode_unverified(black_box(hs256)))
    });
    for (alg, token, keys) in &tokens {
        group.bench_function(*alg, |b| {
            b.iter(|| verify(black_box(token), keys, &validation, NOW).unwrap())
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench
}
criterion_main!(benches);
