//! The token options of `tether serve` (`--app demo` and `--app hub`):
//! JSON Web Tokens, the keys that verify them, the topics that need them.

use std::path::PathBuf;

use tether_apps::{DEFAULT_TOKEN_COOKIE, HubAuth};
use tether_auth::{KeyFile, Keys, Private, Validation};
use tether_node::{KeyFiles, load_keys};

use super::jwks::Remote;

/// Identities: JSON Web Tokens, the keys that verify them, the topics that
/// need them.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Identities (JSON Web Tokens, --app demo and --app hub)")]
pub(crate) struct AuthArgs {
    /// Verify HS256 tokens with the secret in this file (at least 32
    /// bytes; one final line ending, \n or \r\n, is not part of it, and
    /// is warned about at start: an issuer must sign with the bytes before
    /// it). SIGHUP reads every key file again.
    #[arg(long, value_name = "FILE")]
    pub(crate) jwt_secret_file: Option<PathBuf>,
    /// Verify RS256, ES256 or EdDSA tokens with this PEM public key.
    #[arg(long, value_name = "FILE")]
    pub(crate) jwt_public_key: Option<PathBuf>,
    /// Verify tokens with the keys of this JSON Web Key Set (a file; a
    /// token's kid chooses the key).
    #[arg(long, value_name = "FILE")]
    pub(crate) jwks: Option<PathBuf>,
    /// Verify tokens with the keys of the JSON Web Key Set at this URL (an
    /// identity provider's: https://, or http:// to a loopback address).
    /// Fetched at start (the server does not start without them), again
    /// before its Cache-Control max-age ends, and on a token with an
    /// unknown kid (at most every --jwks-unknown-kid-interval); a failed
    /// fetch keeps the keys fetched last.
    #[arg(long, value_name = "URL", conflicts_with_all = ["jwt_secret_file", "jwt_public_key", "jwks", "oidc_issuer"])]
    pub(crate) jwks_url: Option<String>,
    /// Find the key set by OpenID Connect discovery: read
    /// URL/.well-known/openid-configuration, check that its issuer is URL
    /// exactly, and use its jwks_uri as --jwks-url would. Tokens must then
    /// name URL as their iss, unless --jwt-issuer says otherwise.
    #[arg(long, value_name = "URL", conflicts_with_all = ["jwt_secret_file", "jwt_public_key", "jwks"])]
    pub(crate) oidc_issuer: Option<String>,
    /// Trust the CA certificates in this PEM file (and no other) for
    /// --jwks-url and --oidc-issuer: a private CA. Without it, the
    /// system's trusted roots.
    #[arg(long, value_name = "FILE")]
    pub(crate) jwks_ca: Option<PathBuf>,
    /// The fewest seconds a fetched key set is kept before it is fetched
    /// again, whatever its max-age says (at most a day is kept; an hour
    /// without max-age).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) jwks_min_age: u64,
    /// The fewest seconds between two fetches of the key set caused by
    /// tokens with a kid it does not have (such a token is refused, 401,
    /// until a fetch brings its key).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub(crate) jwks_unknown_kid_interval: u64,
    /// Accept only tokens whose aud names this (repeat for more). Without
    /// it, tokens with an aud are refused.
    #[arg(long = "jwt-audience", value_name = "AUD")]
    pub(crate) jwt_audiences: Vec<String>,
    /// Accept only tokens whose iss is this (repeat for more).
    #[arg(long = "jwt-issuer", value_name = "ISS")]
    pub(crate) jwt_issuers: Vec<String>,
    /// Seconds of clock difference allowed when checking exp, nbf and iat.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub(crate) jwt_leeway: u64,
    /// Topics that only a token granting them may subscribe to: a name, or
    /// a prefix ending in * (repeat for more). Others stay open.
    #[arg(long = "private", value_name = "PATTERN")]
    pub(crate) private: Vec<String>,
    /// The cookie a token may come in (browsers: set it HttpOnly; Secure;
    /// SameSite=Strict).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TOKEN_COOKIE)]
    pub(crate) token_cookie: String,
    /// Read a token from ?token= too. Off by default: query strings are
    /// written to the access logs of proxies and servers.
    #[arg(long)]
    pub(crate) token_query: bool,
    /// Seconds a WebSocket that came without a token, to a topic that needs
    /// one, has to send {"type":"auth","token":"..."} as its first message.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) auth_timeout: u64,
    /// Seconds a token from the demo's sign-in (POST /demo/login) is good
    /// for. The demo signs them with a random secret made once and kept as
    /// demo.secret in --data-dir (made at each start with --memory), unless
    /// a key is given above: then the sign-in is off.
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) demo_token_ttl: u64,
}

impl AuthArgs {
    /// The key files named, each with its option.
    pub(crate) fn key_files(&self) -> KeyFiles {
        let mut files = Vec::new();
        if let Some(path) = &self.jwt_secret_file {
            files.push(("--jwt-secret-file".to_owned(), KeyFile::Secret(path.clone())));
        }
        if let Some(path) = &self.jwt_public_key {
            files.push(("--jwt-public-key".to_owned(), KeyFile::Pem(path.clone())));
        }
        if let Some(path) = &self.jwks {
            files.push(("--jwks".to_owned(), KeyFile::Jwks(path.clone())));
        }
        files
    }

    /// The identity provider the options name, if any.
    pub(crate) fn remote(&self) -> Result<Option<Remote>, String> {
        Remote::new(
            self.jwks_url.as_deref(),
            self.oidc_issuer.as_deref(),
            self.jwks_ca.as_ref(),
            self.jwks_min_age,
            self.jwks_unknown_kid_interval,
        )
    }

    /// Whether a key file or an identity provider is named.
    pub(crate) fn has_keys(&self) -> bool {
        !self.key_files().is_empty() || self.jwks_url.is_some() || self.oidc_issuer.is_some()
    }

    /// How the hub verifies tokens, `None` without a key file or
    /// `demo_keys`; and the key files, to read again on SIGHUP. With
    /// `in_use` (a reload: the node reads the key files itself, after the
    /// settings) the files are not read and those keys stand in.
    pub(crate) fn hub_auth(
        &self,
        demo_keys: Option<Keys>,
        in_use: Option<Keys>,
    ) -> Result<Option<(HubAuth, KeyFiles)>, String> {
        self.check(demo_keys.is_some())?;
        let files = self.key_files();
        let remote = self.remote()?;
        if !self.has_keys() && demo_keys.is_none() {
            return Ok(None);
        }
        let issuer = remote.as_ref().and_then(Remote::issuer).map(str::to_owned);
        let mut fetcher = None;
        let keys = match (in_use, demo_keys, remote) {
            (Some(keys), _, _) => keys,
            (None, _, Some(remote)) => {
                let (url, keys, max_age) = remote.first()?;
                fetcher = Some((remote, url, max_age));
                keys
            }
            (None, Some(keys), None) if files.is_empty() => keys,
            _ => {
                let (keys, warnings) = load_keys(&files)?;
                for warning in warnings {
                    log::warn!("{warning}");
                }
                keys
            }
        };
        let mut auth = HubAuth::new(keys);
        auth.validation = Validation::new()
            .leeway(self.jwt_leeway)
            .audience(self.jwt_audiences.iter().cloned())
            .issuer(match (self.jwt_issuers.is_empty(), issuer) {
                (true, Some(issuer)) => vec![issuer],
                _ => self.jwt_issuers.clone(),
            });
        auth.private = Private::new(&self.private).map_err(|e| format!("--private: {e}"))?;
        auth.cookie = Some(self.token_cookie.clone());
        auth.query = self.token_query;
        auth.auth_timeout = std::time::Duration::from_secs(self.auth_timeout);
        if let Some((remote, url, max_age)) = fetcher {
            remote.keep(url, max_age, &mut auth)?;
        }
        Ok(Some((auth, files)))
    }

    /// The checks of [`hub_auth`](Self::hub_auth) that need no key, with
    /// or without the demo's keys.
    pub(crate) fn check(&self, demo_keys: bool) -> Result<(), String> {
        self.remote()?;
        if !self.has_keys() && !demo_keys {
            let needs_key = [
                (!self.private.is_empty(), "--private"),
                (!self.jwt_audiences.is_empty(), "--jwt-audience"),
                (!self.jwt_issuers.is_empty(), "--jwt-issuer"),
                (self.token_query, "--token-query"),
            ];
            if let Some((_, flag)) = needs_key.iter().find(|(given, _)| *given) {
                return Err(format!(
                    "{flag} needs a key to verify tokens with (--jwt-secret-file, --jwt-public-key, --jwks, --jwks-url or --oidc-issuer)"
                ));
            }
            return Ok(());
        }
        if !is_cookie_name(&self.token_cookie) {
            return Err(format!(
                "--token-cookie {:?} is not a cookie name",
                self.token_cookie
            ));
        }
        Private::new(&self.private).map_err(|e| format!("--private: {e}"))?;
        Ok(())
    }
}

/// RFC 6265's cookie-name: an HTTP token.
pub(crate) fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
