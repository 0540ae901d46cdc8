//! Identities and per-topic rights for the hub: JSON Web Tokens (RFC 7519)
//! verified with keys pinned to their algorithm, and a token's claims
//! turned into the topics its bearer may subscribe and publish to.
//!
//! - [`Keys`]: the verification keys, built from the contents of a secret
//!   file ([`Keys::from_secret`]), a PEM public key ([`Keys::from_pem`]) or
//!   a JSON Web Key Set ([`Keys::from_jwks`]), or from the files themselves
//!   ([`Keys::from_files`]). Each key verifies one algorithm: HS256,
//!   RS256, ES256 or EdDSA (Ed25519); from an identity provider's set,
//!   RS384, RS512, PS256, PS384, PS512 and ES384 too. Rebuild the set to
//!   rotate keys (on SIGHUP, say).
//! - [`JwkSet`], [`Refresh`], [`jwks_uri`]: an identity provider's key
//!   set read key by key, when to fetch it again, and where OpenID
//!   Connect discovery says it is (the fetching is the caller's).
//! - [`verify`](fn@verify): a token, the keys, a [`Validation`] and the time `now`
//!   (passed in: nothing here reads a clock) give an [`Identity`]: the
//!   subject, its [`Rights`], the expiry.
//! - [`TopicPattern`], [`Rights`], [`Private`]: exact topic names and
//!   prefixes ending in `*`, what a token allows, and which topics need a
//!   grant at all.
//! - [`bearer_token`], [`cookie_token`], [`query_token`],
//!   [`ws_auth_token`]: the token out of an `Authorization` header, a
//!   `Cookie` header, a query string, or a WebSocket first message.
//! - [`identity_from_claims`]: the same claims given by a trusted caller
//!   (the holder a ticket is minted for); [`NewToken`]: a token signed
//!   with HS256, for a server that is its own issuer.
//!
//! # What is refused
//!
//! The algorithm comes from the key, never from the token: a header whose
//! `alg` differs from the key's is refused, so is `alg: none` and every
//! algorithm but the four above. This defeats the classic confusion
//! attack (an HS256 token "signed" with an RSA public key as the HMAC
//! secret). HMAC secrets shorter than 32 bytes are refused when the key is
//! built. A token with `kid` is verified with that key only; one without,
//! against a set of several keys, only if exactly one key is of its
//! algorithm. `exp` (required by default), `nbf` and `iat` are checked
//! against `now` with a leeway; `aud` and `iss` when configured (and `aud`
//! must be absent when no audience is). See [`verify`](fn@verify) for the exact
//! rules.
//!
//! # The `tether` claim
//!
//! A token names its subject in `sub` and grants topics in `tether`: `sub`
//! lists the topics that may be subscribed to, `pub` those that may be
//! published to, each an exact name (`room.7`) or a prefix ending in `*`
//! (`chat.*`; `*` alone is every topic), the syntax of the hub's
//! `--ws-publish`. `{sub}` in a pattern stands for the token's subject:
//!
//! ```json
//! {
//!   "sub": "alice",
//!   "exp": 1767225600,
//!   "aud": "tether",
//!   "tether": {
//!     "sub": ["room.7", "user.{sub}.*"],
//!     "pub": ["room.7", "user.{sub}.outbox"]
//!   }
//! }
//! ```
//!
//! Here alice may subscribe to `room.7` and to every topic under
//! `user.alice.`, and publish to `room.7` and `user.alice.outbox`. A token
//! without `tether` grants nothing; one whose `tether` is malformed is
//! refused. `{sub}` is replaced only by a subject of 1 to 64 ASCII letters,
//! digits, `_` and `-`: one with `*` would turn a name into a prefix, and
//! one with `.` or `:` would reach into other subjects' topics
//! (`user.{sub}.*` for `a` would match `user.a.b.x`, which belongs to
//! `a.b`). A token that uses `{sub}` with any other subject is refused
//! whole ([`Error::Grant`]). Put a separator after `{sub}` in a prefix
//! (`user.{sub}.*`, not `user.{sub}*`): a prefix is plain text, and
//! `user.a*` matches `user.ab` too.
//!
//! [`Private`] lists the topics that need a grant to be subscribed to
//! (`--private 'user.*'`); every other topic stays open to all.
//!
//! # The crypto backend
//!
//! Signatures are verified by the `jsonwebtoken` crate (10.3), over
//! `aws-lc-rs`. Its other backend, `rust_crypto`, verifies RS256 with the
//! `rsa` crate, which has an open advisory (RUSTSEC-2023-0071, the Marvin
//! timing attack) and no fixed release. jsonwebtoken 9, the last release
//! over `ring` (which the server already uses through rustls), is affected
//! by GHSA-h395-gr6q-cpjc (CVE-2026-25537, claims of the wrong type passed
//! as absent; fixed in 10.3.0). jsonwebtoken 11 (Rust 1.88) is within the
//! workspace's 1.89 since it was raised, and not adopted yet. The `aws-lc-sys` advisories of 2026 (RUSTSEC-2026-0044,
//! RUSTSEC-2026-0048 and the PKCS#7 and AES-CCM ones) are fixed from
//! aws-lc-sys 0.39, below what the lock file holds. The claims are checked
//! here, not by the library (see [`verify`](fn@verify)). If another crate of the same
//! build turns on jsonwebtoken's `rust_crypto` feature too, jsonwebtoken
//! picks no backend on its own and verification fails: keep it off.
//!
//! # Example
//!
//! ```
//! use tether_auth::{Keys, Private, Validation, bearer_token, verify};
//!
//! let secret = b"0123456789abcdef0123456789abcdef";
//! let keys = Keys::from_secret(secret)?;
//! let validation = Validation::new().audience(["tether"]).leeway(30);
//! let private = Private::new(["user.*"])?;
//!
//! // The issuer's side, here with jsonwebtoken.
//! let claims = serde_json::json!({
//!     "sub": "alice",
//!     "aud": "tether",
//!     "exp": 1_000_600,
//!     "tether": { "sub": ["user.{sub}.*"], "pub": ["room.7"] },
//! });
//! let token = jsonwebtoken::encode(
//!     &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
//!     &claims,
//!     &jsonwebtoken::EncodingKey::from_secret(secret),
//! ).unwrap();
//!
//! // The server's side.
//! let header = format!("Bearer {token}");
//! let token = bearer_token(&header).expect("a bearer token");
//! let who = verify(token, &keys, &validation, 1_000_000)?;
//! assert_eq!(who.subject.as_deref(), Some("alice"));
//! assert!(private.may_subscribe(Some(&who.rights), "user.alice.inbox"));
//! assert!(!private.may_subscribe(Some(&who.rights), "user.bob.inbox"));
//! assert!(private.may_subscribe(None, "news"));
//! assert!(who.rights.may_publish("room.7"));
//! # Ok::<(), tether_auth::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod discovery;
mod error;
mod extract;
mod jwks;
mod keys;
mod limits;
mod mint;
mod object;
mod pattern;
mod private;
mod refresh;
mod rights;
mod validation;
mod verify;

pub use discovery::{DISCOVERY_PATH, discovery_url, jwks_uri};
pub use error::Error;
pub use extract::{QUERY_PARAMETER, bearer_token, cookie_token, is_token_syntax, query_token, ws_auth_token};
pub use jwks::{JwkSet, MAX_JWKS_LEN, Skipped};
pub use keys::{Algorithm, Key, KeyFile, Keys, MAX_KEY_FILE_LEN, MAX_KEYS, secret_of_file};
pub use limits::{MAX_TOKEN_LEN, MIN_SECRET_LEN};
pub use mint::NewToken;
pub use pattern::TopicPattern;
pub use private::Private;
pub use refresh::{Refresh, RefreshPolicy, cache_max_age};
pub use rights::{MAX_PATTERNS, MAX_SUBJECT_LEN, Rights, TetherClaim};
/// Whether `topic` is in the set a pattern names, without building a
/// [`TopicPattern`] (the same rules; a pattern that does not parse
/// matches nothing): [`tether_topic::pattern_matches`].
pub use tether_topic::pattern_matches;
pub use validation::Validation;
pub use verify::{Identity, identity_from_claims, verify};
