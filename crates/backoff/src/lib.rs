//! Exponential backoff with jitter, for reconnecting.
//!
//! [`Backoff`] is the schedule: the wait before attempt `n` (from 0) is
//! `min(max, initial * factor^n)`, less a random part of up to `jitter` of
//! it. [`Attempts`] counts failed attempts against a schedule and hands out
//! the next wait, back to the first one once connected.
//!
//! This crate has no dependencies and does no I/O. The jitter comes from the
//! standard library's per-process random keys: it has to differ between
//! peers that were dropped together, not to be unguessable. `tether-client`
//! (its WebSocket client's reconnection) and `tether-redis` (its two Redis
//! connections) both use it.
//!
//! ```
//! use std::time::Duration;
//! use tether_backoff::{Attempts, Backoff};
//!
//! let backoff = Backoff::new()
//!     .initial(Duration::from_millis(100))
//!     .max(Duration::from_secs(5))
//!     .max_attempts(Some(3));
//! assert_eq!(backoff.delay(3), Duration::from_millis(800));
//!
//! let mut attempts = Attempts::new(backoff);
//! for _ in 0..3 {
//!     let wait = attempts.next_delay();
//!     assert!(wait > Duration::from_millis(24) && wait <= Duration::from_millis(400));
//! }
//! assert!(attempts.exhausted());
//! attempts.reset();
//! assert_eq!(attempts.count(), 0);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long to wait between reconnection attempts: exponential, capped,
/// with random jitter so that many clients dropped at once do not all come
/// back at the same instant.
///
/// The wait before attempt `n` (counting from 0) is
/// `min(max, initial * factor^n)`, less a random part of up to `jitter` of
/// it. A successful connection starts the count again.
///
/// ```
/// use std::time::Duration;
/// use tether_backoff::Backoff;
///
/// let backoff = Backoff::new()
///     .initial(Duration::from_millis(100))
///     .max(Duration::from_secs(5))
///     .jitter(0.0);
/// assert_eq!(backoff.delay(0), Duration::from_millis(100));
/// assert_eq!(backoff.delay(3), Duration::from_millis(800));
/// assert_eq!(backoff.delay(30), Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    jitter: f64,
    max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

impl Backoff {
    /// The defaults: 500 ms first, doubling, at most 30 s, up to half of
    /// each wait taken off at random, attempts without end.
    pub const fn new() -> Backoff {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.5,
            max_attempts: None,
        }
    }

    /// The wait before the first attempt.
    pub const fn initial(mut self, delay: Duration) -> Backoff {
        self.initial = delay;
        self
    }

    /// The longest wait.
    pub const fn max(mut self, delay: Duration) -> Backoff {
        self.max = delay;
        self
    }

    /// How much each wait grows over the one before (at least 1).
    pub fn factor(mut self, factor: f64) -> Backoff {
        self.factor = if factor.is_finite() { factor.max(1.0) } else { 1.0 };
        self
    }

    /// The largest fraction of a wait taken off at random, from 0 (none,
    /// the waits are exact) to 1 ("full jitter").
    pub fn jitter(mut self, jitter: f64) -> Backoff {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Gives up after this many failed attempts in a row (`None`, the
    /// default: never).
    pub const fn max_attempts(mut self, attempts: Option<u32>) -> Backoff {
        self.max_attempts = attempts;
        self
    }

    /// The attempt limit, if any.
    pub fn attempts_limit(&self) -> Option<u32> {
        self.max_attempts
    }

    /// The wait before attempt `attempt` (from 0), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self.factor.powi(attempt.min(1000) as i32);
        let secs = self.initial.as_secs_f64() * exp;
        if !secs.is_finite() || secs >= self.max.as_secs_f64() {
            self.max
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The wait before attempt `attempt`, with jitter taken off.
    pub fn jittered_delay(&self, attempt: u32) -> Duration {
        let delay = self.delay(attempt);
        if self.jitter == 0.0 {
            return delay;
        }
        delay.mul_f64(1.0 - self.jitter * unit())
    }
}

/// Failed attempts in a row against a [`Backoff`]: the next wait, whether
/// to give up, and back to the first wait once connected.
#[derive(Debug, Clone)]
pub struct Attempts {
    backoff: Backoff,
    count: u32,
}

impl Attempts {
    /// No attempt made yet.
    pub const fn new(backoff: Backoff) -> Attempts {
        Attempts { backoff, count: 0 }
    }

    /// The schedule.
    pub fn backoff(&self) -> &Backoff {
        &self.backoff
    }

    /// The wait before the next attempt (jittered), which it counts.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.backoff.jittered_delay(self.count);
        self.count = self.count.saturating_add(1);
        delay
    }

    /// How many waits were handed out since the start or the last
    /// [`reset`](Self::reset), that is how many attempts were made.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether the schedule's [`max_attempts`](Backoff::max_attempts) were
    /// all made.
    pub fn exhausted(&self) -> bool {
        self.backoff.attempts_limit().is_some_and(|max| self.count >= max)
    }

    /// Connected: the next wait is the first one again.
    pub fn reset(&mut self) {
        self.count = 0;
    }
}

/// A fraction in `[0, 1)`. Each `RandomState` has its own keys (random per
/// thread, then counted up), so hashing nothing gives fresh bits each call.
fn unit() -> f64 {
    let bits = RandomState::new().build_hasher().finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let b = Backoff::new()
            .initial(Duration::from_millis(10))
            .max(Duration::from_millis(100))
            .factor(3.0)
            .jitter(0.0);
        let got: Vec<u128> = (0..5).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(got, [10, 30, 90, 100, 100]);
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(100));
        assert_eq!(b.jittered_delay(1), Duration::from_millis(30));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let b = Backoff::new().initial(Duration::from_secs(1)).jitter(0.25);
        for _ in 0..100 {
            let d = b.jittered_delay(0);
            assert!(
                d <= Duration::from_secs(1) && d > Duration::from_millis(749),
                "{d:?}"
            );
        }
        assert_eq!(Backoff::new().jitter(7.0).jitter, 1.0);
        assert_eq!(Backoff::new().factor(0.5).factor, 1.0);
    }

    #[test]
    fn doubles_up_to_the_cap_with_jitter_then_resets() {
        let ms = Duration::from_millis;
        let mut attempts = Attempts::new(Backoff::new().initial(ms(100)).max(ms(1000)));
        let mut bases = Vec::new();
        for _ in 0..8 {
            let delay = attempts.next_delay();
            let base = bases
                .last()
                .map_or(ms(100), |b: &Duration| (*b * 2).min(ms(1000)));
            assert!(
                delay >= base / 2 && delay <= base,
                "{delay:?} within [{:?}, {base:?}]",
                base / 2
            );
            bases.push(base);
        }
        assert_eq!(bases, [100, 200, 400, 800, 1000, 1000, 1000, 1000].map(ms));
        assert_eq!(attempts.count(), 8);
        attempts.reset();
        assert!(attempts.next_delay() <= ms(100));
    }

    #[test]
    fn jitter_varies() {
        let second = Duration::from_secs(1);
        let mut attempts = Attempts::new(Backoff::new().initial(second).max(second));
        let delays: std::collections::HashSet<Duration> = (0..20).map(|_| attempts.next_delay()).collect();
        assert!(delays.len() > 1, "{delays:?}");
        let u = unit();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let mut attempts = Attempts::new(Backoff::new().jitter(0.0).max_attempts(Some(2)));
        assert!(!attempts.exhausted());
        attempts.next_delay();
        assert!(!attempts.exhausted());
        attempts.next_delay();
        assert!(attempts.exhausted());
        attempts.reset();
        assert!(!attempts.exhausted());
        assert!(!Attempts::new(Backoff::new()).exhausted());
    }
}
