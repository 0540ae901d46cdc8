//! Latency histograms for `/metrics`: fixed buckets, counted with relaxed
//! atomic adds (no lock, no allocation where something is timed; one per
//! loop, or one per bus bridge) and added up when `/metrics` is read, as
//! the counters are. The caller measures the duration; nothing here reads
//! a clock.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (in microseconds) for a bus's round trip, a request to it
/// and its answer: from a tenth of a millisecond (a bus on the same host)
/// through the milliseconds of one across a network, to the seconds of a
/// bus that stalls (a command timeout), in 1-2.5-5 steps.
pub const ROUND_TRIP: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000,
];

/// The most upper bounds a histogram may have (its `+Inf` bucket
/// besides).
pub const MAX_BOUNDS: usize = 15;

/// One loop's histogram of durations, with the upper bounds (in
/// microseconds, ascending) it was made with.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    /// Observations per bucket (not cumulative): bucket `i` holds those
    /// over `bounds[i - 1]` and at most `bounds[i]`; the one after the
    /// last bound holds the rest (`+Inf`).
    counts: [AtomicU64; MAX_BOUNDS + 1],
    /// The observations' sum, in microseconds.
    sum_micros: AtomicU64,
}

impl Histogram {
    /// A histogram with upper bounds `bounds`, in microseconds,
    /// ascending, at most [`MAX_BOUNDS`] of them (more are ignored).
    pub fn new(bounds: &'static [u64]) -> Histogram {
        debug_assert!(bounds.len() <= MAX_BOUNDS && bounds.is_sorted());
        Histogram {
            bounds: bounds.get(..MAX_BOUNDS).unwrap_or(bounds),
            counts: Default::default(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = self.bounds.partition_point(|&bound| bound < micros);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

/// Writes one histogram series, `name{labels,le=...}`, added up over
/// `loops` (which all have the same bounds): its cumulative buckets, sum
/// (in seconds) and count. `labels` is empty or `key="value"` pairs
/// without braces.
pub fn write_series<'a>(
    out: &mut String,
    name: &str,
    labels: &str,
    loops: impl Iterator<Item = &'a Histogram> + Clone,
) {
    let Some(first) = loops.clone().next() else {
        return;
    };
    let comma = if labels.is_empty() { "" } else { "," };
    let count_in = |bucket: usize| -> u64 {
        loops
            .clone()
            .filter_map(|h| h.counts.get(bucket))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    };
    let mut cumulative = 0u64;
    for (bucket, bound) in first.bounds.iter().enumerate() {
        cumulative += count_in(bucket);
        let le = *bound as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{{labels}{comma}le=\"{le}\"}} {cumulative}");
    }
    cumulative += count_in(first.bounds.len());
    let _ = writeln!(out, "{name}_bucket{{{labels}{comma}le=\"+Inf\"}} {cumulative}");
    let sum: u64 = loops.map(|h| h.sum_micros.load(Ordering::Relaxed)).sum();
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {}", sum as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{braces} {cumulative}");
}

/// Writes the `# HELP` and `# TYPE` lines of a histogram.
pub fn write_head(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: &[u64] = &[1_000, 10_000, 100_000];

    #[test]
    fn observations_fall_in_the_first_bucket_that_holds_them() {
        let a = Histogram::new(BOUNDS);
        let b = Histogram::new(BOUNDS);
        a.observe(Duration::from_micros(500));
        a.observe(Duration::from_millis(1)); // on a bound: that bucket
        b.observe(Duration::from_millis(5));
        b.observe(Duration::from_secs(3)); // past the last: +Inf only
        let mut out = String::new();
        write_head(&mut out, "t_seconds", "Test.");
        write_series(&mut out, "t_seconds", "", [&a, &b].into_iter());
        assert_eq!(
            out,
            "# HELP t_seconds Test.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{le=\"0.001\"} 2\n\
             t_seconds_bucket{le=\"0.01\"} 3\n\
             t_seconds_bucket{le=\"0.1\"} 3\n\
             t_seconds_bucket{le=\"+Inf\"} 4\n\
             t_seconds_sum 3.0065\n\
             t_seconds_count 4\n"
        );
    }

    #[test]
    fn labels_come_before_the_bound() {
        let h = Histogram::new(BOUNDS);
        h.observe(Duration::ZERO);
        let mut out = String::new();
        write_series(&mut out, "t", "hook=\"publish\"", std::iter::once(&h));
        assert!(
            out.starts_with("t_bucket{hook=\"publish\",le=\"0.001\"} 1\n"),
            "{out}"
        );
        assert!(
            out.ends_with("t_sum{hook=\"publish\"} 0\nt_count{hook=\"publish\"} 1\n"),
            "{out}"
        );
    }
}
