//! The crate's one error type.

use std::fmt;

use crate::limits::{MAX_TOKEN_LEN, MIN_SECRET_LEN};

/// Why a key could not be loaded, a pattern not parsed, or a token not
/// accepted.
///
/// The first group (keys and patterns) are the operator's configuration
/// errors: report them at start-up or reload and keep the old keys. The
/// second group are a client's token being refused: answer 401 (the
/// reasons are for logs, not for the client). [`Error::is_config`] tells
/// the two apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // Configuration: keys and patterns.
    /// An HMAC secret shorter than [`MIN_SECRET_LEN`] bytes.
    ShortSecret {
        /// The secret's length in bytes.
        len: usize,
    },
    /// A key file held a private key where a public key was expected: the
    /// server needs only the public half, and should not hold the other.
    PrivateKey,
    /// A key that cannot be used: an unknown PEM type, an RSA key shorter
    /// than 2048 bits, an EC key on a curve other than P-256, a malformed
    /// JWK, a file that cannot be read. The text says which.
    InvalidKey(String),
    /// A key set with no key that can verify a token (an empty JWKS, or
    /// only keys for other algorithms or for encryption).
    NoUsableKey,
    /// A topic pattern that is neither a topic name nor a prefix of one
    /// followed by `*` (`*` elsewhere, a character a topic cannot have, a
    /// `{...}` other than `{sub}`, too long).
    InvalidPattern(String),

    // Tokens: the peer's.
    /// The token is longer than [`MAX_TOKEN_LEN`].
    TokenTooLong,
    /// Not three base64url parts separated by dots, or a header that is not
    /// the JSON of a JWS header.
    Malformed,
    /// The header's `alg` is not one this crate verifies (`none`, `HS384`,
    /// anything unknown).
    UnsupportedAlgorithm,
    /// The header's `alg` is not the algorithm of the key that would
    /// verify it: the key decides, never the token.
    AlgorithmMismatch,
    /// The header's `kid` names no key of the set.
    UnknownKeyId,
    /// No `kid`, and several keys of the set fit the header's `alg`.
    AmbiguousKey,
    /// The header has a `crit` parameter: it names extensions that this
    /// crate does not understand, so it must refuse the token (RFC 7515,
    /// section 4.1.11).
    CriticalHeader,
    /// The signature does not verify.
    BadSignature,
    /// The claims are not a JSON object of the expected types (`exp` that
    /// is a string, `sub` that is a number, a `tether` claim that is not
    /// lists of strings, a duplicated claim).
    InvalidClaims,
    /// No `exp` claim, and [`Validation::require_exp`](crate::validation::Validation::require_exp) is set.
    MissingExpiry,
    /// `exp` has passed (leeway included).
    Expired,
    /// `nbf` has not come yet (leeway included).
    NotYetValid,
    /// `iat` lies in the future (leeway included).
    IssuedInFuture,
    /// `aud` does not name this service, or names something while no
    /// audience is configured (RFC 7519, section 4.1.3).
    Audience,
    /// `iss` is missing or not a configured issuer.
    Issuer,
    /// The `tether` claim holds a pattern that does not parse, or uses
    /// `{sub}` with a subject that cannot stand in a topic name (missing,
    /// empty, too long, or with a character other than ASCII letters,
    /// digits, `_` and `-`).
    Grant(String),
}

impl Error {
    /// Whether this is the operator's configuration error (a key or a
    /// pattern) rather than a client's token being refused.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            Error::ShortSecret { .. }
                | Error::PrivateKey
                | Error::InvalidKey(_)
                | Error::NoUsableKey
                | Error::InvalidPattern(_)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShortSecret { len } => write!(
                f,
                "HMAC secret of {len} bytes; at least {} are required",
                MIN_SECRET_LEN
            ),
            Error::PrivateKey => f.write_str("a private key where a public key was expected"),
            Error::InvalidKey(why) => write!(f, "invalid key: {why}"),
            Error::NoUsableKey => f.write_str("no key that can verify a signature"),
            Error::InvalidPattern(why) => write!(f, "invalid topic pattern: {why}"),
            Error::TokenTooLong => write!(f, "token longer than {} bytes", MAX_TOKEN_LEN),
            Error::Malformed => f.write_str("malformed token"),
            Error::UnsupportedAlgorithm => f.write_str("unsupported algorithm"),
            Error::AlgorithmMismatch => f.write_str("algorithm does not match the key"),
            Error::UnknownKeyId => f.write_str("unknown key id"),
            Error::AmbiguousKey => f.write_str("no key id and several keys fit"),
            Error::CriticalHeader => f.write_str("critical header parameter not understood"),
            Error::BadSignature => f.write_str("bad signature"),
            Error::InvalidClaims => f.write_str("claims of the wrong shape"),
            Error::MissingExpiry => f.write_str("no exp claim"),
            Error::Expired => f.write_str("token expired"),
            Error::NotYetValid => f.write_str("token not yet valid"),
            Error::IssuedInFuture => f.write_str("token issued in the future"),
            Error::Audience => f.write_str("audience not accepted"),
            Error::Issuer => f.write_str("issuer not accepted"),
            Error::Grant(why) => write!(f, "invalid tether claim: {why}"),
        }
    }
}

impl std::error::Error for Error {}
