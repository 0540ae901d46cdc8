//! Keys from an identity provider (`--jwks-url`, `--oidc-issuer`): the
//! key set fetched at start (the server does not start without it), and
//! on a thread of its own afterwards, on the schedule `tether-auth`'s
//! [`Refresh`] keeps; each new set handed to the loops as a reload of key
//! files is ([`HubAuth::set_keys`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use tether_apps::HubAuth;
use tether_auth::{
    JwkSet, Keys, MAX_JWKS_LEN, Refresh, RefreshPolicy, cache_max_age, discovery_url, jwks_uri,
};
use tether_client::{FetchOptions, Scheme, Url};

/// Where the keys come from, and how they are fetched.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    /// `--jwks-url`, or `None` to find it by discovery.
    jwks_url: Option<String>,
    /// `--oidc-issuer`.
    issuer: Option<String>,
    options: FetchOptions,
    policy: RefreshPolicy,
}

/// The key set as fetched: its keys, and how long it may be kept.
struct Fetched {
    set: JwkSet,
    max_age: Option<Duration>,
}

impl Remote {
    /// The source the options name, checked (URLs `https://`, or
    /// `http://` to a loopback address; the CA file readable); `None`
    /// without `--jwks-url` or `--oidc-issuer`.
    pub(crate) fn new(
        jwks_url: Option<&str>,
        issuer: Option<&str>,
        ca: Option<&PathBuf>,
        min_age: u64,
        unknown_kid_interval: u64,
    ) -> Result<Option<Remote>, String> {
        if jwks_url.is_none() && issuer.is_none() {
            if ca.is_some() {
                return Err("--jwks-ca needs --jwks-url or --oidc-issuer".to_owned());
            }
            return Ok(None);
        }
        if let Some(url) = jwks_url {
            check_url(url).map_err(|e| format!("--jwks-url: {e}"))?;
        }
        if let Some(url) = issuer {
            check_url(url).map_err(|e| format!("--oidc-issuer: {e}"))?;
        }
        let mut options = FetchOptions::default();
        options.max_body = MAX_JWKS_LEN;
        if let Some(path) = ca {
            let pem = std::fs::read(path).map_err(|e| format!("--jwks-ca {}: {e}", path.display()))?;
            let config = tether_client::tls::roots_from_pem(&pem)
                .map_err(|e| format!("--jwks-ca {}: {e}", path.display()))?;
            options = options.tls_config(config);
        }
        let mut policy = RefreshPolicy::default();
        policy.min_age = Duration::from_secs(min_age);
        policy.unknown_kid_interval = Duration::from_secs(unknown_kid_interval);
        policy.retry = policy.retry.min(policy.unknown_kid_interval);
        Ok(Some(Remote {
            jwks_url: jwks_url.map(str::to_owned),
            issuer: issuer.map(str::to_owned),
            options,
            policy,
        }))
    }

    /// The issuer that tokens must name, from `--oidc-issuer`.
    pub(crate) fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The key set's URL: `--jwks-url`, or the issuer's `jwks_uri`.
    fn resolve(&self) -> Result<String, String> {
        if let Some(url) = &self.jwks_url {
            return Ok(url.clone());
        }
        let issuer = self.issuer.as_deref().unwrap_or_default();
        let url = discovery_url(issuer);
        let body = self.get(&url)?.0;
        let jwks = jwks_uri(&body, issuer).map_err(|e| format!("{url}: {e}"))?;
        check_url(&jwks).map_err(|e| format!("{url}: its jwks_uri {e}"))?;
        Ok(jwks)
    }

    fn get(&self, url: &str) -> Result<(Vec<u8>, Option<Duration>), String> {
        let answer = tether_client::get(url, &self.options).map_err(|e| format!("{url}: {e}"))?;
        if answer.status != 200 {
            return Err(format!("{url}: status {}", answer.status));
        }
        let max_age = answer.cache_control.as_deref().and_then(cache_max_age);
        Ok((answer.body, max_age))
    }

    fn fetch(&self, url: &str) -> Result<Fetched, String> {
        let (body, max_age) = self.get(url)?;
        let set = JwkSet::parse(&body).map_err(|e| format!("{url}: {e}"))?;
        for skipped in set.skipped() {
            log::warn!(
                "{url}: key {}{} left out: {}",
                skipped.index,
                skipped
                    .kid
                    .as_ref()
                    .map(|k| format!(" ({k:?})"))
                    .unwrap_or_default(),
                skipped.reason
            );
        }
        Ok(Fetched { set, max_age })
    }

    /// Fetches the keys (after discovery, with `--oidc-issuer`): the
    /// key set's URL, its keys, and how long they may be kept.
    ///
    /// A server that cannot fetch the keys at start does not start: it
    /// would refuse every token while it looked healthy, and a fetch that
    /// fails for good (a wrong URL, a CA missing) is better told at once,
    /// to the operator who just started it.
    pub(crate) fn first(&self) -> Result<(String, Keys, Option<Duration>), String> {
        let flag = if self.jwks_url.is_some() {
            "--jwks-url"
        } else {
            "--oidc-issuer"
        };
        let url = self.resolve().map_err(|e| format!("{flag}: {e}"))?;
        let first = self.fetch(&url).map_err(|e| format!("{flag}: {e}"))?;
        log::info!("{url}: {} keys", first.set.keys().keys().len());
        Ok((url, first.set.into_keys(), first.max_age))
    }

    /// Starts the thread that keeps `auth`'s keys fresh from `url`
    /// (fetched first with `max_age`); `auth` wakes it on a token with an
    /// unknown `kid`.
    pub(crate) fn keep(
        self,
        url: String,
        max_age: Option<Duration>,
        auth: &mut HubAuth,
    ) -> Result<(), String> {
        // One wake-up waiting is enough: the fetcher rate-limits them
        // anyway, and a loop never waits to send one.
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        auth.on_unknown_kid = Some(Arc::new(move || {
            let _ = wake.try_send(());
        }));
        let shared = auth.clone();
        std::thread::Builder::new()
            .name("tether-jwks".to_owned())
            .spawn(move || self.keep_fresh(&url, max_age, &shared, &woken))
            .map_err(|e| format!("start the key fetcher: {e}"))?;
        Ok(())
    }

    fn keep_fresh(&self, url: &str, max_age: Option<Duration>, auth: &HubAuth, woken: &mpsc::Receiver<()>) {
        let origin = Instant::now();
        let now = || origin.elapsed();
        let mut refresh = Refresh::new(self.policy, now());
        refresh.started(now());
        refresh.fetched(now(), max_age);
        loop {
            let wait = refresh.next().saturating_sub(now());
            match woken.recv_timeout(wait) {
                Ok(()) => {
                    refresh.unknown_kid(now());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if !refresh.due(now()) {
                continue;
            }
            refresh.started(now());
            // rustls and the parsers run on the provider's bytes here: a
            // panic in them costs this fetch, not the thread that keeps
            // the keys fresh.
            let fetched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.fetch(url)))
                .unwrap_or_else(|_| Err(format!("{url}: the fetch panicked")));
            match fetched {
                Ok(fetched) => {
                    log::info!(
                        "{url}: keys fetched again, {} keys",
                        fetched.set.keys().keys().len()
                    );
                    auth.set_keys(fetched.set.into_keys());
                    refresh.fetched(now(), fetched.max_age);
                }
                Err(e) => {
                    if refresh.failed(now()) {
                        log::warn!("{e}; the keys fetched last stay in use");
                    }
                }
            }
        }
    }
}

/// `https://`, or `http://` to a loopback address.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url).map_err(|e| e.to_string())?;
    match parsed.scheme() {
        Scheme::Https => Ok(()),
        Scheme::Http if is_loopback(parsed.host()) => Ok(()),
        Scheme::Http => Err(format!("{url}: http:// only to a loopback address; use https://")),
        _ => Err(format!("{url}: not an https:// URL")),
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        for good in [
            "https://id.example.com/keys",
            "http://127.0.0.1:8080/keys",
            "http://[::1]/keys",
            "http://localhost/keys",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for bad in [
            "http://id.example.com/keys",
            "http://10.0.0.1/keys",
            "ws://127.0.0.1/",
            "keys",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
