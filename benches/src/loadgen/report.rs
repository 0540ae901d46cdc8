//! Measurement windows and the two output lines: one for people, one JSON
//! object for scripts.

use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use super::sys;

/// A latency histogram in nanoseconds: 1 ns to 100 s, three significant
/// digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Records `d`, clamped into the histogram's range.
#[inline]
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_nanos() as u64).max(1));
}

/// Latencies counted in the buckets of [`latency_histogram`], cheaply: a
/// recording is a shift, a leading-zero count and an increment, where
/// `Histogram::record` spends about five times as many instructions on
/// the same (generic casts and checks), which shows in the echo run's
/// per-message cost. [`drain_into`](Self::drain_into) hands the counts to
/// a histogram; every value lands in the bucket it would have reached when
/// recorded there directly, so the percentiles are the same.
pub struct Recorder {
    counts: Vec<u32>,
}

/// Values below this are their own bucket; above it, 1024 buckets per
/// power of two (the resolution of three significant digits).
const EXACT: u64 = 2048;
/// The histogram's highest value, 100 s in nanoseconds.
const HIGHEST: u64 = 100_000_000_000;

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Recorder {
        Recorder {
            counts: vec![0; Recorder::index(HIGHEST) + 1],
        }
    }

    /// The bucket of `ns`, clamped into 1 ns ..= 100 s.
    #[inline]
    fn index(ns: u64) -> usize {
        let v = ns.clamp(1, HIGHEST);
        if v < EXACT {
            return v as usize;
        }
        // v's top eleven bits: 1024 ..= 2047 after the shift.
        let shift = 63 - v.leading_zeros() - 10;
        (EXACT as usize) + (shift as usize - 1) * 1024 + ((v >> shift) as usize - 1024)
    }

    /// The lowest value of bucket `i`.
    fn value(i: usize) -> u64 {
        if (i as u64) < EXACT {
            return i as u64;
        }
        let rest = i - EXACT as usize;
        let shift = rest / 1024 + 1;
        ((rest % 1024 + 1024) as u64) << shift
    }

    /// Counts one latency of `ns` nanoseconds.
    #[inline]
    pub fn record(&mut self, ns: u64) {
        let i = Recorder::index(ns);
        if let Some(c) = self.counts.get_mut(i) {
            *c = c.saturating_add(1);
        }
    }

    /// Forgets every count.
    pub fn clear(&mut self) {
        self.counts.fill(0);
    }

    /// Adds every count to `h` and forgets them.
    pub fn drain_into(&mut self, h: &mut Histogram<u64>) {
        for (i, c) in self.counts.iter_mut().enumerate() {
            if *c > 0 {
                h.saturating_record_n(Recorder::value(i).max(1), u64::from(*c));
                *c = 0;
            }
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// The percentiles this tool reports, in microseconds.
pub fn percentiles_us(h: &Histogram<u64>) -> Value {
    let us = |ns: u64| (ns as f64 / 1000.0 * 10.0).round() / 10.0;
    if h.is_empty() {
        return Value::Null;
    }
    json!({
        "p50": us(h.value_at_quantile(0.50)),
        "p90": us(h.value_at_quantile(0.90)),
        "p99": us(h.value_at_quantile(0.99)),
        "p99_9": us(h.value_at_quantile(0.999)),
        "max": us(h.max()),
        "count": h.len(),
    })
}

/// The percentiles as a short human string.
pub fn percentiles_human(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "no samples".into();
    }
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    format!(
        "p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
        us(0.5),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1000.0
    )
}

/// The histogram's counts as JSON, `[[value, count], ...]` for each bucket
/// recorded (its highest value): what a process of a multi-process run
/// sends its parent, which adds them with [`merge_counts`].
pub fn histogram_counts(h: &Histogram<u64>) -> Value {
    Value::Array(
        h.iter_recorded()
            .map(|v| json!([v.value_iterated_to(), v.count_at_value()]))
            .collect(),
    )
}

/// Adds counts from [`histogram_counts`] to `h` (a histogram made by
/// [`latency_histogram`], so each value lands in the bucket it came from).
pub fn merge_counts(h: &mut Histogram<u64>, counts: &Value) -> Result<(), String> {
    let pairs = counts.as_array().ok_or("histogram counts: not an array")?;
    for pair in pairs {
        match (pair[0].as_u64(), pair[1].as_u64()) {
            (Some(value), Some(count)) => h.saturating_record_n(value, count),
            _ => return Err(format!("histogram counts: bad pair {pair}")),
        }
    }
    Ok(())
}

/// In a process of a multi-process run, once its connections are open:
/// says `ready` on stdout and waits for a line on stdin, which the parent
/// sends when every process is ready, so that all start together.
pub fn wait_for_start() -> io::Result<()> {
    use std::io::{BufRead as _, Write as _};
    let mut out = io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    let mut line = String::new();
    if io::stdin().lock().read_line(&mut line)? == 0 {
        return Err(io::Error::other("the parent process went away before the start"));
    }
    Ok(())
}

/// What a process of a multi-process run says once its measurement is over
/// and its connections are still open ([`hold_until_released`]).
pub const MEASURED: &str = "measured";

/// In a process of a multi-process run, once its measurement is over: says
/// [`MEASURED`] on stdout and waits for a line (or the end) on stdin before
/// going on, so that the parent can look at the servers while they still
/// hold every connection, apart from what closing them costs.
pub fn hold_until_released() -> io::Result<()> {
    use std::io::{BufRead as _, Write as _};
    let mut out = io::stdout().lock();
    writeln!(out, "{MEASURED}")?;
    out.flush()?;
    drop(out);
    let mut line = String::new();
    io::stdin().lock().read_line(&mut line)?;
    Ok(())
}

/// The clock and CPU counters at the start of a measurement.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    started: Instant,
    server_pid: Option<u32>,
    /// The server's user and system CPU seconds at the start.
    server_cpu: Option<(f64, f64)>,
    /// The server's context switches (voluntary and not) at the start.
    server_switches: Option<u64>,
    own_cpu: f64,
}

/// Wall time and CPU time spent over a [`Window`].
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Seconds of wall-clock time.
    pub wall: f64,
    /// Seconds of server CPU time (user + system), when its pid is known.
    pub server_cpu: Option<f64>,
    /// Of them, the seconds the kernel spent for the server (its system
    /// time: sends, receives, waits for events).
    pub server_system: Option<f64>,
    /// Seconds of this process's CPU time.
    pub own_cpu: f64,
    /// The server's context switches over the window: how often it went
    /// to sleep waiting for work (or was made to give up its core).
    pub server_switches: Option<u64>,
}

impl Window {
    /// Starts a window; `server_pid` is read from `/proc` at both ends.
    pub fn start(server_pid: Option<u32>) -> io::Result<Window> {
        Ok(Window {
            server_cpu: server_pid.map(|pid| sys::cpu_times(Some(pid))).transpose()?,
            server_switches: server_pid.and_then(|pid| sys::context_switches(pid).ok()),
            own_cpu: sys::cpu_seconds(None)?,
            started: Instant::now(),
            server_pid,
        })
    }

    /// When the window started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Ends the window.
    pub fn stop(&self) -> io::Result<Span> {
        let wall = self.started.elapsed().as_secs_f64();
        let server = match (self.server_pid, self.server_cpu) {
            (Some(pid), Some((user, system))) => {
                let (user_now, system_now) = sys::cpu_times(Some(pid))?;
                Some((user_now - user, system_now - system))
            }
            _ => None,
        };
        Ok(Span {
            wall,
            server_cpu: server.map(|(user, system)| user + system),
            server_system: server.map(|(_, system)| system),
            own_cpu: sys::cpu_seconds(None)? - self.own_cpu,
            server_switches: match (self.server_pid, self.server_switches) {
                (Some(pid), Some(start)) => sys::context_switches(pid)
                    .ok()
                    .map(|now| now.saturating_sub(start)),
                _ => None,
            },
        })
    }
}

impl Span {
    /// `count` per second of wall time, per server CPU-second and per
    /// load-generator CPU-second, as JSON fields named after `what`.
    pub fn rates(&self, what: &str, count: u64) -> serde_json::Map<String, Value> {
        let per = |secs: f64| {
            if secs > 0.0 {
                json!((count as f64 / secs).round())
            } else {
                Value::Null
            }
        };
        let mut m = serde_json::Map::new();
        m.insert("wall_s".into(), json!(round3(self.wall)));
        m.insert(format!("{what}_per_s"), per(self.wall));
        m.insert(
            "server_cpu_s".into(),
            self.server_cpu.map_or(Value::Null, |c| json!(round3(c))),
        );
        m.insert(
            format!("{what}_per_server_cpu_s"),
            self.server_cpu.map_or(Value::Null, per),
        );
        m.insert(
            "server_system_s".into(),
            self.server_system.map_or(Value::Null, |c| json!(round3(c))),
        );
        if let Some(switches) = self.server_switches {
            m.insert("server_context_switches".into(), json!(switches));
        }
        m.insert("loadgen_cpu_s".into(), json!(round3(self.own_cpu)));
        m.insert(format!("{what}_per_loadgen_cpu_s"), per(self.own_cpu));
        m
    }

    /// The same as a human phrase.
    pub fn rates_human(&self, what: &str, count: u64) -> String {
        let per = |secs: f64| {
            if secs > 0.0 {
                format!("{:.0}", count as f64 / secs)
            } else {
                "-".into()
            }
        };
        let server = match self.server_cpu {
            Some(cpu) => format!(
                "{} {what}/server-CPU-s (server CPU {:.0}%)",
                per(cpu),
                100.0 * cpu / self.wall.max(1e-9)
            ),
            None => "server CPU unknown (no --pid)".into(),
        };
        format!(
            "{} {what}/s, {server}, {} {what}/loadgen-CPU-s (loadgen CPU {:.0}%)",
            per(self.wall),
            per(self.own_cpu),
            100.0 * self.own_cpu / self.wall.max(1e-9)
        )
    }
}

/// Rounds to three decimals for the JSON line.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A finished run: a line for people, a JSON object for scripts, and
/// whether it found anything wrong.
#[derive(Debug)]
pub struct Report {
    /// One line.
    pub human: String,
    /// One object.
    pub json: Value,
    /// Problems found (missing events, short echoes ...); empty when clean.
    pub problems: Vec<String>,
}

impl Report {
    /// Prints both lines (human, then JSON) and the problems to stderr.
    pub fn print(&self) {
        use std::io::Write as _;
        // A closed stdout (`| head -1`) is not worth a panic.
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{}", self.human).and_then(|()| writeln!(out, "{}", self.json));
        for p in &self.problems {
            eprintln!("problem: {p}");
        }
    }
}

/// Why connections could not be opened, counted by cause: what a run
/// reports instead of its first error, so that running out of source ports
/// is told apart from a server that refuses or resets.
///
/// The causes (the JSON keys): `source_ports` (`EADDRNOTAVAIL` or
/// `EADDRINUSE`: no free ephemeral port for the source and server address
/// pair), `refused` (`ECONNREFUSED`), `reset` (`ECONNRESET`, `EPIPE`, or the
/// server closed before the handshake's end), `timeout` (`ETIMEDOUT`, or
/// still opening at the deadline), `not_started` (never tried: the deadline
/// came first), `open_files` (`EMFILE`, `ENFILE`), `status_NNN` (the server
/// answered the upgrade or the stream request with HTTP status NNN), and
/// `other` (anything else: a bad response head, TLS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectFailures {
    /// Connections asked for.
    pub wanted: u64,
    /// Of them, opened.
    pub opened: u64,
    /// Failures by cause.
    pub causes: BTreeMap<String, u64>,
    /// The first failure's message, for what the counts cannot say.
    pub first: Option<String>,
}

impl ConnectFailures {
    /// Counts one failure of `cause`, keeping the first message.
    pub fn count(&mut self, cause: &str, message: impl FnOnce() -> String) {
        self.add(cause, 1, message);
    }

    /// Counts `n` failures of `cause` (none: nothing), keeping the first
    /// message.
    pub fn add(&mut self, cause: &str, n: u64, message: impl FnOnce() -> String) {
        if n == 0 {
            return;
        }
        *self.causes.entry(cause.to_owned()).or_insert(0) += n;
        if self.first.is_none() {
            self.first = Some(message());
        }
    }

    /// Connections that failed, over every cause.
    pub fn failed(&self) -> u64 {
        self.causes.values().sum()
    }

    /// The JSON fields a report carries: `connections_wanted`,
    /// `connections_opened`, `connect_failures` (cause -> count) and
    /// `connect_first_failure`.
    pub fn json(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("connections_wanted".into(), json!(self.wanted));
        m.insert("connections_opened".into(), json!(self.opened));
        m.insert("connect_failures".into(), json!(self.causes));
        m.insert("connect_first_failure".into(), json!(self.first));
        m
    }

    /// Adds the fields of another report's [`json`](Self::json) (a process
    /// of a multi-process run) to these.
    pub fn merge(&mut self, other: &Value) -> Result<(), String> {
        let number = |key: &str| {
            other[key]
                .as_u64()
                .ok_or_else(|| format!("a connect-failure report without {key}"))
        };
        let (wanted, opened) = (number("connections_wanted")?, number("connections_opened")?);
        let causes = other["connect_failures"]
            .as_object()
            .ok_or("a connect-failure report without connect_failures")?;
        let counts = causes
            .iter()
            .map(|(cause, n)| {
                n.as_u64()
                    .map(|n| (cause, n))
                    .ok_or_else(|| format!("connect_failures: bad count for {cause}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        // Nothing is added unless all of it reads.
        self.wanted += wanted;
        self.opened += opened;
        for (cause, n) in counts {
            *self.causes.entry(cause.clone()).or_insert(0) += n;
        }
        if self.first.is_none() {
            self.first = other["connect_first_failure"].as_str().map(str::to_owned);
        }
        Ok(())
    }

    /// The counts for people: `12 out of source ports (EADDRNOTAVAIL), 3 refused`.
    pub fn human_causes(&self) -> String {
        let name = |cause: &str| match cause {
            "source_ports" => "out of source ports (EADDRNOTAVAIL)".to_owned(),
            "refused" => "refused (ECONNREFUSED)".to_owned(),
            "reset" => "reset or closed during the handshake".to_owned(),
            "timeout" => "timed out".to_owned(),
            "not_started" => "not tried before the deadline".to_owned(),
            "open_files" => "out of file descriptors (EMFILE)".to_owned(),
            other => match other.strip_prefix("status_") {
                Some(status) => format!("answered HTTP {status}"),
                None => other.to_owned(),
            },
        };
        let parts: Vec<String> = self
            .causes
            .iter()
            .map(|(cause, n)| format!("{n} {}", name(cause)))
            .collect();
        parts.join(", ")
    }

    /// A finished run that could not open its connections.
    pub fn report(&self, mode: &str) -> Report {
        let mut json = Map::new();
        json.insert("mode".into(), json!(mode));
        json.extend(self.json());
        json.insert("problems".into(), json!(1));
        Report {
            human: format!("{mode}: {self}"),
            json: json.into(),
            problems: vec![self.to_string()],
        }
    }
}

impl std::fmt::Display for ConnectFailures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} connections opened, {} failed: {}",
            self.opened,
            self.wanted,
            self.failed(),
            self.human_causes()
        )?;
        if let Some(first) = &self.first {
            write!(f, "; the first: {first}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConnectFailures {}

/// The [`ConnectFailures`] an error carries, if it is one.
pub fn connect_failures(e: &io::Error) -> Option<&ConnectFailures> {
    e.get_ref()?.downcast_ref::<ConnectFailures>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorder_gives_the_histogram_the_same_buckets() {
        let mut direct = latency_histogram();
        let mut rec = Recorder::new();
        // Every magnitude, bucket edges and their neighbours, the clamps.
        let mut values = vec![
            0,
            1,
            2,
            2047,
            2048,
            2049,
            4095,
            4096,
            HIGHEST,
            HIGHEST + 1,
            u64::MAX,
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        for shift in 0..37 {
            for d in [0u64, 1, 2] {
                values.push((1u64 << shift).saturating_sub(d));
                values.push((1u64 << shift) + d);
            }
        }
        for &v in &values {
            direct.saturating_record(v.clamp(1, HIGHEST));
            rec.record(v);
        }
        let mut drained = latency_histogram();
        rec.drain_into(&mut drained);
        assert_eq!(drained.len(), direct.len());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0] {
            assert_eq!(drained.value_at_quantile(q), direct.value_at_quantile(q), "q {q}");
        }
        assert_eq!(histogram_counts(&drained), histogram_counts(&direct));
        // Drained: nothing is added twice.
        let mut again = latency_histogram();
        rec.drain_into(&mut again);
        assert!(again.is_empty());
    }

    #[test]
    fn counts_merge_into_the_same_percentiles() {
        let mut a = latency_histogram();
        let mut b = latency_histogram();
        let mut both = latency_histogram();
        for i in 1..=1000u64 {
            let (one, other) = (i * 1_000, i * 1_337 + 250_000);
            a.record(one).unwrap();
            b.record(other).unwrap();
            both.record(one).unwrap();
            both.record(other).unwrap();
        }
        let mut merged = latency_histogram();
        merge_counts(&mut merged, &histogram_counts(&a)).unwrap();
        merge_counts(&mut merged, &histogram_counts(&b)).unwrap();
        assert_eq!(merged.len(), 2000);
        assert_eq!(percentiles_us(&merged), percentiles_us(&both));
        assert!(merge_counts(&mut merged, &json!([[1, "x"]])).is_err());
        assert!(merge_counts(&mut merged, &json!({})).is_err());
    }

    #[test]
    fn connect_failures_count_merge_and_report() {
        let mut a = ConnectFailures {
            wanted: 10,
            opened: 7,
            ..ConnectFailures::default()
        };
        a.count("source_ports", || {
            "connection 3: Cannot assign requested address".into()
        });
        a.add("refused", 2, || "not kept: the first is".into());
        a.add("timeout", 0, || "nothing counted".into());
        assert_eq!(a.failed(), 3);
        assert_eq!(
            a.first.as_deref(),
            Some("connection 3: Cannot assign requested address")
        );
        let mut sum = ConnectFailures::default();
        sum.merge(&Value::Object(a.json())).unwrap();
        sum.merge(&Value::Object(a.json())).unwrap();
        assert_eq!((sum.wanted, sum.opened, sum.failed()), (20, 14, 6));
        assert_eq!(sum.causes["refused"], 4);
        assert!(sum.merge(&json!({"connections_wanted": 1})).is_err());
        let report = sum.report("fanout");
        assert_eq!(
            report.json["connect_failures"],
            json!({"refused": 4, "source_ports": 2})
        );
        assert_eq!(report.json["connections_opened"], 14);
        assert_eq!(report.problems.len(), 1);
        assert!(
            report.human.contains(
                "14 of 20 connections opened, 6 failed: 4 refused (ECONNREFUSED), \
                 2 out of source ports (EADDRNOTAVAIL)"
            ),
            "{}",
            report.human
        );
    }
}
