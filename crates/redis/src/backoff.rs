//! Exponential backoff, capped, with jitter, for reconnecting.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays between connection attempts: `min`, doubling up to `max`, each
/// drawn at random from its upper half (so that nodes that lost Redis
/// together do not all come back at the same instant), back to `min` once
/// connected.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            next: min,
            rng: random_seed() | 1,
        }
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (base * 2).min(self.max);
        let half = base / 2;
        let span = u64::try_from((base - half).as_micros()).unwrap_or(u64::MAX);
        half + Duration::from_micros(self.random() % (span + 1))
    }

    /// Connected: start again from `min`.
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    /// xorshift64*: plenty for jitter.
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// 64 random bits from the standard library's per-process random keys.
pub(crate) fn random_seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(std::process::id().into());
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_then_resets() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(100), ms(1000));
        let mut bases = Vec::new();
        for _ in 0..8 {
            let delay = backoff.next_delay();
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
        backoff.reset();
        assert!(backoff.next_delay() <= ms(100));
    }

    #[test]
    fn jitter_varies() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
        let delays: std::collections::HashSet<Duration> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(delays.len() > 1, "{delays:?}");
    }
}
