//! Giving the allocator's free memory back to the system after a burst.
//!
//! glibc's malloc keeps what a loop thread freed in that thread's arena:
//! only free space at the very top of an arena is returned on its own, and
//! one live allocation above it pins everything below. After a flood of
//! half-open QUIC handshakes had come and gone (a thousand of them, about
//! 28 KiB each, on one loop), the server's resident memory stayed at the
//! flood's peak (40 MiB for 1 000 of them) though all of it was free;
//! `malloc_trim` hands the free pages of every arena back (to 2.6 MiB).
//! It walks the arenas' free lists, so it is called only when a burst has
//! ended ([`crate::server`]'s HTTP/3 endpoint), never per turn.

/// Returns the free pages of the C allocator's arenas to the system
/// (glibc's `malloc_trim(0)`); elsewhere (another C library, where Rust's
/// allocator is not glibc's malloc) it does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn release_free_memory() {
    // SAFETY: malloc_trim takes a plain integer (the padding to keep at
    // the top of the heap) and works only on the allocator's own free
    // lists, under the arenas' locks, so it is sound to call from any
    // thread at any time; it touches no memory Rust owns.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns the free pages of the C allocator's arenas to the system
/// (glibc's `malloc_trim(0)`); elsewhere (another C library, where Rust's
/// allocator is not glibc's malloc) it does nothing.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release_free_memory() {}

/// Says when a burst of state (connections) is passing: once the count,
/// having reached at least `at_least`, falls to a quarter of its peak or
/// below; and then, while what is left is more than a sixteenth of
/// `at_least`, at each further fall to a quarter. The connections of a
/// flood end over a second or so, not at once: trimmed at the first
/// quarter alone, the rest of them would keep their memory.
#[derive(Debug)]
pub(crate) struct Burst {
    at_least: usize,
    peak: usize,
    /// A burst has been told of and enough of it is left to tell again.
    following: bool,
}

impl Burst {
    /// Bursts of `at_least` or more are told of.
    pub(crate) fn new(at_least: usize) -> Burst {
        Burst {
            at_least,
            peak: 0,
            following: false,
        }
    }

    /// The count now: whether a burst has just passed a quarter.
    pub(crate) fn passed(&mut self, count: usize) -> bool {
        self.peak = self.peak.max(count);
        if (self.peak >= self.at_least || self.following) && count <= self.peak / 4 {
            self.following = count > self.at_least / 16;
            self.peak = count;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_told_at_each_quarter_until_little_is_left() {
        let mut burst = Burst::new(256);
        // Below the size told of: never.
        assert!(![0, 100, 255, 0].into_iter().any(|n| burst.passed(n)));
        assert!(!burst.passed(1000));
        assert!(!burst.passed(251));
        // A quarter, then a quarter of that, then of that (16 or fewer
        // left: the end).
        assert!(burst.passed(250));
        assert!(!burst.passed(63));
        assert!(burst.passed(62));
        assert!(burst.passed(15));
        assert!(![0, 10, 0].into_iter().any(|n| burst.passed(n)));
        // A new burst, told when it has passed.
        assert!(!burst.passed(300));
        assert!(burst.passed(0));
        assert!(![0, 200, 0].into_iter().any(|n| burst.passed(n)));
    }

    #[test]
    fn releasing_free_memory_keeps_what_is_live() {
        let live: Vec<Vec<u8>> = (0..64).map(|i| vec![i; 4096]).collect();
        drop((0..1024).map(|_| vec![0u8; 16 * 1024]).collect::<Vec<_>>());
        release_free_memory();
        assert!(
            live.iter()
                .enumerate()
                .all(|(i, v)| v.iter().all(|&b| usize::from(b) == i))
        );
    }
}
