//! When to fetch an identity provider's key set again: on expiry (its
//! `Cache-Control: max-age`, within a floor and a ceiling, a little
//! before), on a token with an unknown `kid` (rate-limited), and after a
//! failure (the last good set kept).

use std::time::Duration;

/// The bounds of a [`Refresh`] schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// The shortest a set is kept before it is fetched again, whatever
    /// its `max-age` (`no-cache` and `max-age=0` included).
    pub min_age: Duration,
    /// The longest a set is kept, whatever its `max-age`.
    pub max_age: Duration,
    /// How long a set without `max-age` is kept.
    pub default_age: Duration,
    /// The least time between two fetches caused by tokens with a `kid`
    /// the set does not have: a flood of such tokens costs the provider
    /// one fetch per this interval.
    pub unknown_kid_interval: Duration,
    /// How long after a failed fetch the next one is made.
    pub retry: Duration,
    /// The least time between two warnings about failed fetches.
    pub warn_interval: Duration,
}

impl Default for RefreshPolicy {
    /// 1 minute to 1 day, 1 hour without `max-age`; an unknown `kid`
    /// fetches at most every 30 s; a failure is retried after 30 s and
    /// warned about at most every 5 minutes.
    fn default() -> RefreshPolicy {
        RefreshPolicy {
            min_age: Duration::from_secs(60),
            max_age: Duration::from_secs(86_400),
            default_age: Duration::from_secs(3_600),
            unknown_kid_interval: Duration::from_secs(30),
            retry: Duration::from_secs(30),
            warn_interval: Duration::from_secs(300),
        }
    }
}

/// The schedule of a key set's fetches.
///
/// Sans-IO: the caller fetches, and passes the time in: `now` is any
/// monotonic clock's reading as a [`Duration`] since an origin of the
/// caller's choice, the same for every call. It asks [`due`](Self::due)
/// (or sleeps until [`next`](Self::next)), calls [`started`](Self::started)
/// as it fetches, and then [`fetched`](Self::fetched) or
/// [`failed`](Self::failed).
///
/// ```
/// use std::time::Duration;
/// use tether_auth::{Refresh, RefreshPolicy};
///
/// let s = Duration::from_secs;
/// let mut refresh = Refresh::new(RefreshPolicy::default(), s(0));
/// assert!(refresh.due(s(0)));
/// refresh.started(s(0));
/// refresh.fetched(s(1), Some(s(600)));
/// assert!(!refresh.due(s(500)) && refresh.due(s(541)));
/// // A token with an unknown kid: one early fetch, then no more for 30 s.
/// assert!(refresh.unknown_kid(s(100)));
/// refresh.started(s(100));
/// refresh.fetched(s(100), Some(s(600)));
/// assert!(!refresh.unknown_kid(s(110)) && !refresh.due(s(110)));
/// assert!(refresh.unknown_kid(s(130)));
/// ```
#[derive(Debug, Clone)]
pub struct Refresh {
    policy: RefreshPolicy,
    next: Duration,
    last_start: Option<Duration>,
    last_warning: Option<Duration>,
}

impl Refresh {
    /// A schedule whose first fetch is due at `now`.
    pub fn new(policy: RefreshPolicy, now: Duration) -> Refresh {
        Refresh {
            policy,
            next: now,
            last_start: None,
            last_warning: None,
        }
    }

    /// Whether a fetch is due at `now`.
    pub fn due(&self, now: Duration) -> bool {
        now >= self.next
    }

    /// When the next fetch is due.
    pub fn next(&self) -> Duration {
        self.next
    }

    /// A fetch begins at `now`.
    pub fn started(&mut self, now: Duration) {
        self.last_start = Some(now);
    }

    /// The fetch succeeded at `now`, its answer valid for `max_age` (its
    /// `Cache-Control`, see [`cache_max_age`]). The next is due when a
    /// tenth of that age is left (clamped to the policy's bounds first),
    /// so that the set in use never outlives its age while the provider
    /// answers.
    pub fn fetched(&mut self, now: Duration, max_age: Option<Duration>) {
        let age = max_age
            .unwrap_or(self.policy.default_age)
            .clamp(self.policy.min_age, self.policy.max_age.max(self.policy.min_age));
        self.next = now.saturating_add(age.saturating_sub(age / 10));
    }

    /// The fetch failed at `now`: the next is due after the policy's
    /// `retry`. Returns whether to warn about it (at most once per
    /// `warn_interval`; the first failure always).
    pub fn failed(&mut self, now: Duration) -> bool {
        self.next = now.saturating_add(self.policy.retry);
        let warn = self
            .last_warning
            .is_none_or(|last| now.saturating_sub(last) >= self.policy.warn_interval);
        if warn {
            self.last_warning = Some(now);
        }
        warn
    }

    /// A token came with a `kid` that the set does not have, at `now`:
    /// the next fetch is moved to `now` if the last one began at least
    /// `unknown_kid_interval` ago, else to when it did (a flood of
    /// such tokens asks the provider once an interval). Returns whether a
    /// fetch is now due.
    pub fn unknown_kid(&mut self, now: Duration) -> bool {
        let earliest = self
            .last_start
            .map_or(now, |last| last.saturating_add(self.policy.unknown_kid_interval));
        self.next = self.next.min(earliest.max(now));
        self.due(now)
    }
}

/// The `max-age` of a `Cache-Control` header value (RFC 9111 section
/// 5.2.2.1), `Some(ZERO)` for `no-cache` or `no-store`; `None` without
/// either, or for a malformed one. Digits beyond a `u64`'s range are read
/// as the largest value (RFC 9111 section 1.2.2).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(tether_auth::cache_max_age("public, max-age=3600"), Some(Duration::from_secs(3600)));
/// assert_eq!(tether_auth::cache_max_age("no-store"), Some(Duration::ZERO));
/// assert_eq!(tether_auth::cache_max_age("max-age=soon"), None);
/// ```
pub fn cache_max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(Duration::ZERO);
        }
        if name.eq_ignore_ascii_case("max-age") && age.is_none() {
            let digits = arg.trim().trim_matches('"');
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            age = Some(Duration::from_secs(digits.parse().unwrap_or(u64::MAX)));
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn max_age_is_clamped_and_refreshed_before_it_ends() {
        let mut r = Refresh::new(RefreshPolicy::default(), s(1000));
        assert!(!r.due(s(999)) && r.due(s(1000)));
        r.started(s(1000));
        r.fetched(s(1000), Some(s(1000)));
        assert_eq!(r.next(), s(1900));
        r.fetched(s(1000), Some(s(1)));
        assert_eq!(r.next(), s(1054), "the floor, less a tenth");
        r.fetched(s(1000), Some(Duration::ZERO));
        assert_eq!(r.next(), s(1054));
        r.fetched(s(1000), Some(s(u64::MAX)));
        assert_eq!(r.next(), s(1000 + 86_400 - 8_640), "the ceiling");
        r.fetched(s(1000), None);
        assert_eq!(r.next(), s(1000 + 3_240), "the default");
    }

    #[test]
    fn unknown_kids_are_rate_limited() {
        let mut r = Refresh::new(RefreshPolicy::default(), s(0));
        // Before any fetch, an unknown kid makes one due at once.
        assert!(r.unknown_kid(s(0)));
        r.started(s(0));
        r.fetched(s(0), Some(s(3600)));
        let mut fetches = 1;
        // A token with a new kid every second for two minutes.
        for t in 1..=120 {
            if r.unknown_kid(s(t)) {
                r.started(s(t));
                r.fetched(s(t), Some(s(3600)));
                fetches += 1;
            }
        }
        assert_eq!(fetches, 5, "at 0, 30, 60, 90, 120");
        // Between, the next fetch is when the interval ends, not later
        // than it was.
        assert!(!r.unknown_kid(s(121)));
        assert_eq!(r.next(), s(150));
    }

    #[test]
    fn failures_retry_and_warn_rarely() {
        let mut r = Refresh::new(RefreshPolicy::default(), s(0));
        r.started(s(0));
        assert!(r.failed(s(0)), "the first failure is told");
        assert_eq!(r.next(), s(30));
        let warned: Vec<u64> = (1..=20)
            .map(|i| i * 30)
            .filter(|&t| {
                r.started(s(t));
                r.failed(s(t))
            })
            .collect();
        assert_eq!(warned, [300, 600]);
        r.started(s(630));
        r.fetched(s(630), Some(s(600)));
        assert_eq!(r.next(), s(1170));
    }

    #[test]
    fn cache_control() {
        for (value, age) in [
            ("max-age=60", Some(60)),
            ("public, max-age=60, must-revalidate", Some(60)),
            ("MAX-AGE = 7", Some(7)),
            ("max-age=\"9\"", Some(9)),
            ("max-age=1, max-age=2", Some(1)),
            ("no-cache, max-age=60", Some(0)),
            ("max-age=60, no-store", Some(0)),
            ("max-age=99999999999999999999999", Some(u64::MAX)),
            ("max-age=", None),
            ("max-age=-1", None),
            ("max-age=1h", None),
            ("private", None),
            ("", None),
        ] {
            assert_eq!(cache_max_age(value), age.map(s), "{value}");
        }
    }
}
