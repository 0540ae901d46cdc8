//! Publish rate limits: a token bucket per WebSocket connection and per
//! credential subject, sans-IO (the caller gives the time).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How fast one connection, and one subject over all its connections and
/// requests, may publish: `per_second` on average, with bursts of up to
/// `burst` events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishRate {
    /// Events per second, on average (more than 0).
    pub per_second: f64,
    /// Events at once after a quiet time (at least 1).
    pub burst: f64,
}

impl PublishRate {
    /// `per_second` on average, in bursts of up to `burst` (each at least
    /// a small positive number and 1).
    pub fn new(per_second: f64, burst: f64) -> PublishRate {
        PublishRate {
            per_second: if per_second.is_finite() && per_second > 0.0 {
                per_second
            } else {
                f64::MIN_POSITIVE
            },
            burst: if burst.is_finite() { burst.max(1.0) } else { 1.0 },
        }
    }
}

/// A token bucket: full at first, one token per event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub(super) fn full(rate: PublishRate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: PublishRate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.at = self.at.max(now);
    }

    /// Takes a token at `now` if there is one; else how long until there
    /// is.
    pub(super) fn take(&mut self, rate: PublishRate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / rate.per_second;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
        }
    }

    /// Whether it is full again at `now` (it can be forgotten).
    pub(super) fn is_full(&mut self, rate: PublishRate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= rate.burst
    }
}

/// The buckets of the subjects that published lately, shared by every
/// loop. A bucket that filled up again is forgotten, so the map holds
/// only the subjects publishing now.
#[derive(Debug, Default)]
pub(super) struct SubjectBuckets {
    buckets: HashMap<String, Bucket>,
    /// The size after the last sweep: sweep again when it doubles.
    swept_at: usize,
}

impl SubjectBuckets {
    /// Takes a token of `subject`'s bucket at `now`; else how long until
    /// there is one.
    pub(super) fn take(&mut self, subject: &str, rate: PublishRate, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() >= 2 * self.swept_at.max(64) {
            self.buckets.retain(|_, bucket| !bucket.is_full(rate, now));
            self.swept_at = self.buckets.len();
        }
        match self.buckets.get_mut(subject) {
            Some(bucket) => bucket.take(rate, now),
            None => {
                let mut bucket = Bucket::full(rate, now);
                let taken = bucket.take(rate, now);
                self.buckets.insert(subject.to_owned(), bucket);
                taken
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let rate = PublishRate::new(10.0, 3.0);
        let start = Instant::now();
        let mut bucket = Bucket::full(rate, start);
        for _ in 0..3 {
            assert!(bucket.take(rate, start).is_ok());
        }
        let wait = bucket.take(rate, start).unwrap_err();
        assert!(
            wait > Duration::from_millis(99) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // A tenth of a second gives one more; a second, the burst again.
        assert!(bucket.take(rate, start + Duration::from_millis(100)).is_ok());
        assert!(bucket.take(rate, start + Duration::from_millis(100)).is_err());
        let later = start + Duration::from_secs(5);
        for _ in 0..3 {
            assert!(bucket.take(rate, later).is_ok());
        }
        assert!(bucket.take(rate, later).is_err());
        // A clock that goes back gives nothing.
        assert!(bucket.take(rate, start).is_err());
    }

    #[test]
    fn rates_out_of_range_are_made_safe() {
        let rate = PublishRate::new(f64::NAN, 0.0);
        assert!(rate.per_second > 0.0);
        assert!((rate.burst - 1.0).abs() < f64::EPSILON);
        let now = Instant::now();
        let mut bucket = Bucket::full(rate, now);
        assert!(bucket.take(rate, now).is_ok());
        assert!(bucket.take(rate, now).is_err());
    }

    #[test]
    fn subjects_have_buckets_of_their_own_and_idle_ones_are_forgotten() {
        let rate = PublishRate::new(1.0, 1.0);
        let start = Instant::now();
        let mut subjects = SubjectBuckets::default();
        assert!(subjects.take("alice", rate, start).is_ok());
        assert!(subjects.take("alice", rate, start).is_err());
        assert!(subjects.take("bob", rate, start).is_ok());
        for n in 0..200 {
            let _ = subjects.take(&format!("user{n}"), rate, start);
        }
        // Once full again, they go at the next sweep.
        let later = start + Duration::from_secs(10);
        for n in 0..200 {
            let _ = subjects.take(&format!("later{n}"), rate, later);
        }
        assert!(subjects.len() <= 300, "{}", subjects.len());
    }
}
