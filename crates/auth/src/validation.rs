//! The settings a token's claims are checked against when it is verified.

/// What a token's claims must satisfy besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Validation {
    /// Seconds of clock difference allowed for `exp`, `nbf` and `iat`
    /// (30).
    pub leeway: u64,
    /// The audiences this service answers to: a token's `aud` must name
    /// one of them. Empty (the default): a token must have no `aud`, as
    /// RFC 7519 (section 4.1.3) requires of a service that is not named.
    pub audience: Vec<String>,
    /// The issuers accepted: a token's `iss` must be one of them. Empty
    /// (the default): `iss` is not checked.
    pub issuer: Vec<String>,
    /// A token without `exp` is refused (on by default: such a token
    /// would be good for ever).
    pub require_exp: bool,
}

impl Default for Validation {
    fn default() -> Validation {
        Validation {
            leeway: 30,
            audience: Vec::new(),
            issuer: Vec::new(),
            require_exp: true,
        }
    }
}

impl Validation {
    /// The defaults: 30 s of leeway, `exp` required, no audience, any
    /// issuer.
    pub fn new() -> Validation {
        Validation::default()
    }

    /// With this leeway, in seconds.
    pub fn leeway(mut self, seconds: u64) -> Validation {
        self.leeway = seconds;
        self
    }

    /// With these audiences.
    pub fn audience<S: Into<String>>(mut self, audience: impl IntoIterator<Item = S>) -> Validation {
        self.audience = audience.into_iter().map(Into::into).collect();
        self
    }

    /// With these issuers.
    pub fn issuer<S: Into<String>>(mut self, issuer: impl IntoIterator<Item = S>) -> Validation {
        self.issuer = issuer.into_iter().map(Into::into).collect();
        self
    }

    /// Whether `exp` is required.
    pub fn require_exp(mut self, require: bool) -> Validation {
        self.require_exp = require;
        self
    }
}
