//! Identities: JSON Web Tokens verified with `tether-auth`, where the hub
//! finds them, and what they allow.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tether_auth::{Identity, Keys, Private, Validation, bearer_token, cookie_token, query_token, verify};
use tether_server::Request;

/// The cookie that holds a token unless [`HubAuth::cookie`] says another.
pub const DEFAULT_TOKEN_COOKIE: &str = "tether_token";

/// How long a WebSocket has to authenticate with its first message unless
/// [`HubAuth::auth_timeout`] says otherwise.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// How the hub verifies JSON Web Tokens, and which topics need one.
///
/// Tokens are read from `Authorization: Bearer`, from the cookie
/// [`HubAuth::cookie`] and, if [`HubAuth::query`] is on, from `?token=`,
/// in that order: the first source present is the one used. A token's
/// `tether` claim grants topics (see `tether-auth`): `sub` those it may
/// subscribe to, `pub` those it may publish to.
///
/// Clones share their keys: [`HubAuth::set_keys`] on one (after reading
/// the key files again, on SIGHUP, or fetching an identity provider's
/// set) changes them for all, and for every loop of a running hub. A loop
/// verifies a token without a lock: it keeps the keys it read last until
/// their generation changes.
///
/// ```
/// use tether_hub_app::{HubAuth, HubSettings};
/// use tether_auth::{Keys, Private, Validation};
///
/// let keys = Keys::from_secret(b"0123456789abcdef0123456789abcdef")?;
/// let mut auth = HubAuth::new(keys);
/// auth.validation = Validation::new().audience(["tether"]).leeway(30);
/// auth.private = Private::new(["user.*"])?;
/// let mut settings = HubSettings::default();
/// settings.auth = Some(auth);
/// # Ok::<(), tether_auth::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct HubAuth {
    keys: Arc<SharedKeys>,
    /// The checks of a token's claims: audience, issuer, leeway.
    pub validation: Validation,
    /// Topics that only a token whose rights name them may subscribe to;
    /// all others are open (as without tokens).
    pub private: Private,
    /// The cookie a token may come in ([`DEFAULT_TOKEN_COOKIE`]); `None`:
    /// cookies are not read.
    pub cookie: Option<String>,
    /// Read a token from `?token=` too (off by default: query strings end
    /// up in proxies' and servers' access logs).
    pub query: bool,
    /// How long a WebSocket that came in without a token, to a route that
    /// needs one, has to send `{"type":"auth","token":"..."}` as its first
    /// message (5 s): then it is closed with 1008.
    pub auth_timeout: Duration,
    /// Called, on the event loop that verified it, when a token names a
    /// `kid` the keys do not have (an identity provider may have rotated
    /// its keys): it must not block. `tether serve --jwks-url` wakes its
    /// key fetcher with it, which rate-limits the fetches.
    pub on_unknown_kid: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl fmt::Debug for HubAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubAuth")
            .field("keys", &self.keys().keys().len())
            .field("validation", &self.validation)
            .field("private", &self.private)
            .field("cookie", &self.cookie)
            .field("query", &self.query)
            .field("auth_timeout", &self.auth_timeout)
            .field("on_unknown_kid", &self.on_unknown_kid.is_some())
            .finish()
    }
}

impl HubAuth {
    /// Tokens verified with `keys`, the default [`Validation`] (`exp`
    /// required), no private topic, the cookie [`DEFAULT_TOKEN_COOKIE`],
    /// no query parameter, [`DEFAULT_AUTH_TIMEOUT`].
    pub fn new(keys: Keys) -> HubAuth {
        HubAuth {
            keys: Arc::new(SharedKeys {
                id: NEXT_KEYS_ID.fetch_add(1, Ordering::Relaxed),
                generation: AtomicU64::new(0),
                keys: RwLock::new(Arc::new(keys)),
            }),
            validation: Validation::new(),
            private: Private::default(),
            cookie: Some(DEFAULT_TOKEN_COOKIE.to_owned()),
            query: false,
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
            on_unknown_kid: None,
        }
    }

    /// The keys in use.
    pub fn keys(&self) -> Arc<Keys> {
        self.keys.current()
    }

    /// Replaces the keys, for this value and all its clones: tokens are
    /// verified with the new ones from now on. Connections already open
    /// keep what their token granted until it expires.
    pub fn set_keys(&self, keys: Keys) {
        *self.keys.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        // After the keys: a loop that sees the new generation reads them.
        self.keys.generation.fetch_add(1, Ordering::Release);
    }

    /// The token a request presents, and where it found it: the
    /// `Authorization` header's if it has one (`""` if it is not a bearer
    /// token), else the cookie's, else the query's if allowed.
    pub(super) fn token_of(&self, request: &Request<'_>) -> Option<(String, TokenSource)> {
        if let Some(value) = request.header("authorization") {
            return Some((bearer_token(value).unwrap_or("").to_owned(), TokenSource::Header));
        }
        if let (Some(name), Some(cookies)) = (&self.cookie, request.header("cookie"))
            && let Some(token) = cookie_token(cookies, name)
        {
            return Some((token.to_owned(), TokenSource::Cookie));
        }
        if self.query {
            return request
                .query()
                .and_then(query_token)
                .map(|token| (token, TokenSource::Query));
        }
        None
    }

    /// Verifies a token at `now` (Unix seconds).
    pub(super) fn verify(&self, token: &str, now: u64) -> Result<Identity, tether_auth::Error> {
        let verified = self.keys.with(|keys| verify(token, keys, &self.validation, now));
        if let (Err(tether_auth::Error::UnknownKeyId), Some(wake)) = (&verified, &self.on_unknown_kid) {
            wake();
        }
        verified
    }

    /// The Unix second at which a token that expires at `exp` is refused
    /// (the leeway added).
    pub(super) fn deadline(&self, exp: u64) -> u64 {
        exp.saturating_add(self.validation.leeway)
    }
}

/// The keys all clones of a [`HubAuth`] share, and their generation (one
/// more at each [`HubAuth::set_keys`]).
struct SharedKeys {
    /// Tells the sets of different hubs apart in a thread's cache (never
    /// reused, unlike an address).
    id: u64,
    generation: AtomicU64,
    keys: RwLock<Arc<Keys>>,
}

static NEXT_KEYS_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The keys this thread (an event loop) verified with last: the id of
    /// their [`SharedKeys`], its generation then, and the keys.
    static CACHED_KEYS: RefCell<Option<(u64, u64, Arc<Keys>)>> = const { RefCell::new(None) };
}

impl SharedKeys {
    fn current(&self) -> Arc<Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `f` with the keys in use. A loop takes no lock and touches no
    /// shared counter for a token: it reads the generation, and uses the
    /// keys it cached for it; only after a [`HubAuth::set_keys`] does it
    /// read the new ones, once, under the lock.
    fn with<R>(&self, f: impl FnOnce(&Keys) -> R) -> R {
        let generation = self.generation.load(Ordering::Acquire);
        CACHED_KEYS.with(|cell| {
            let fresh = matches!(&*cell.borrow(), Some((id, g, _)) if *id == self.id && *g == generation);
            if !fresh {
                *cell.borrow_mut() = Some((self.id, generation, self.current()));
            }
            match &*cell.borrow() {
                Some((_, _, keys)) => f(keys),
                None => f(&self.current()),
            }
        })
    }
}

/// Where a request's token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenSource {
    /// `Authorization: Bearer`: set by a script or a server, never by a
    /// browser on its own.
    Header,
    /// The token cookie: the browser attaches it to requests that other
    /// sites' pages make, so it counts only from a trusted origin.
    Cookie,
    /// `?token=`.
    Query,
}

/// The wall clock read once, and the monotonic clock from there: token
/// times are compared with it, so that a step of the system clock moves
/// no deadline.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    start: Instant,
    unix: Duration,
}

impl Clock {
    pub(super) fn new() -> Clock {
        Clock {
            start: Instant::now(),
            unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO),
        }
    }

    /// Unix seconds at `instant` (whole seconds, rounded down).
    pub(super) fn unix_secs(&self, instant: Instant) -> u64 {
        self.unix
            .saturating_add(instant.saturating_duration_since(self.start))
            .as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_deadlines() {
        let clock = Clock::new();
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let now = clock.unix_secs(Instant::now());
        assert!(now.abs_diff(wall) <= 1, "{now} {wall}");
        let later = clock.start + Duration::from_secs(90);
        assert_eq!(clock.unix_secs(later), clock.unix.as_secs() + 90);
        // An instant before the clock was made reads as its start.
        if let Some(before) = clock.start.checked_sub(Duration::from_secs(5)) {
            assert_eq!(clock.unix_secs(before), clock.unix.as_secs());
        }

        let mut auth = HubAuth::new(Keys::from_secret(&[b'k'; 32]).unwrap());
        auth.validation = Validation::new().leeway(30);
        assert_eq!(auth.deadline(100), 130);
        assert_eq!(auth.deadline(u64::MAX - 1), u64::MAX);
        // Clones share their keys.
        let clone = auth.clone();
        clone.set_keys(Keys::from_secret(&[b'j'; 40]).unwrap());
        assert!(Arc::ptr_eq(&auth.keys(), &clone.keys()));
        assert!(!format!("{auth:?}").contains("kkkk"));
    }

    #[test]
    fn an_unknown_kid_wakes_the_fetcher() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let secret = [b'k'; 32];
        let keys = Keys::new(vec![tether_auth::Key::hmac(&secret).unwrap().with_kid("a")]).unwrap();
        let mut auth = HubAuth::new(keys);
        let woken = Arc::new(AtomicUsize::new(0));
        let count = woken.clone();
        auth.on_unknown_kid = Some(Arc::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
        }));
        let token = |kid: &str| {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = Some(kid.to_owned());
            let claims = serde_json::json!({ "sub": "alice", "exp": 2000 });
            jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(&secret)).unwrap()
        };
        assert!(auth.verify(&token("a"), 1000).is_ok());
        assert_eq!(auth.verify(&token("a"), 3000), Err(tether_auth::Error::Expired));
        assert_eq!(woken.load(Ordering::SeqCst), 0);
        assert_eq!(
            auth.verify(&token("b"), 1000),
            Err(tether_auth::Error::UnknownKeyId)
        );
        assert_eq!(woken.load(Ordering::SeqCst), 1);
    }
}
