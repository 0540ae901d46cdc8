//! Exponential backoff with jitter, for reconnections.

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
/// use tether_client::Backoff;
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
        delay.mul_f64(1.0 - self.jitter * crate::rng::unit())
    }
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
}
