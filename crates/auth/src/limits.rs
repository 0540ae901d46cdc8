//! The bounds on secrets and tokens: in a module of their own because the
//! error messages name them as well as the code that enforces them.

/// Bytes an HMAC secret has at least: 256 bits, the output size of
/// SHA-256, as RFC 7518 section 3.2 requires for HS256.
pub const MIN_SECRET_LEN: usize = 32;

/// Bytes a token may have, at most: more than any sensible token, less
/// than what would make verifying it costly.
pub const MAX_TOKEN_LEN: usize = 8192;
