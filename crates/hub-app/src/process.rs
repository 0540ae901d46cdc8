//! The `process_*` series of `/metrics`, under the names every
//! Prometheus client library gives them, so that the dashboards and
//! alerts written for any exporter read this one: CPU time, memory,
//! descriptors, start time.
//!
//! Read at scrape time only (nothing on the hot path): on Linux from
//! `/proc/self` and `getrlimit`, elsewhere only the descriptor limit.
//! A series the system does not tell is left out, not written as zero,
//! so that an alert on it sees "no data" rather than a false value.

use std::fmt::Write as _;

/// Clock ticks per second of the times in `/proc/<pid>/stat`: the
/// kernel's `USER_HZ`, which is 100 on every architecture Linux runs
/// tether on (the Prometheus client libraries take the same constant
/// rather than ask `sysconf`).
const USER_HZ: f64 = 100.0;

/// One reading of the process's resources; `None` where the system did
/// not tell.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct ProcessSample {
    /// User and system CPU time, in seconds.
    pub(super) cpu_seconds: Option<f64>,
    /// Resident set size, in bytes.
    pub(super) resident_bytes: Option<u64>,
    /// Virtual memory size, in bytes.
    pub(super) virtual_bytes: Option<u64>,
    /// Descriptors open now.
    pub(super) open_fds: Option<u64>,
    /// The soft limit on open descriptors.
    pub(super) max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub(super) start_time_seconds: Option<f64>,
}

/// What `/proc/<pid>/stat` tells of CPU time, memory and start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stat {
    /// `utime` + `stime`, in clock ticks.
    pub(super) cpu_ticks: u64,
    /// `starttime`: clock ticks after boot.
    pub(super) start_ticks: u64,
    /// `vsize`, in bytes.
    pub(super) virtual_bytes: u64,
}

/// Parses `/proc/<pid>/stat`. The second field, the command name in
/// parentheses, may hold spaces and parentheses of its own, so the
/// fields are counted from the last `)`. `None` if the text is not such
/// a line.
pub(super) fn parse_stat(text: &str) -> Option<Stat> {
    let after_name = text.get(text.rfind(')')? + 1..)?;
    // Fields from the third (state) on: field N is at index N - 3.
    let fields: Vec<&str> = after_name.split_ascii_whitespace().take(21).collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
    })
}

/// The boot time, seconds since the Unix epoch, from the `btime` line of
/// `/proc/stat`.
pub(super) fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The resident set size in bytes, from the `VmRSS:` line of
/// `/proc/<pid>/status` (which the kernel writes in kB, meaning KiB).
pub(super) fn parse_resident(text: &str) -> Option<u64> {
    let value = text.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
    let kib = value.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    kib.checked_mul(1024)
}

impl ProcessSample {
    /// The sample made of what the files said (their text, or `None`
    /// where one could not be read) and what was counted directly.
    pub(super) fn from_texts(
        stat: Option<&str>,
        status: Option<&str>,
        proc_stat: Option<&str>,
        open_fds: Option<u64>,
        max_fds: Option<u64>,
    ) -> ProcessSample {
        let stat = stat.and_then(parse_stat);
        let boot = proc_stat.and_then(parse_boot_time);
        ProcessSample {
            cpu_seconds: stat.map(|s| s.cpu_ticks as f64 / USER_HZ),
            resident_bytes: status.and_then(parse_resident),
            virtual_bytes: stat.map(|s| s.virtual_bytes),
            open_fds,
            max_fds,
            start_time_seconds: stat
                .zip(boot)
                .map(|(s, boot)| boot as f64 + s.start_ticks as f64 / USER_HZ),
        }
    }

    /// Reads this process's sample now.
    pub(super) fn read() -> ProcessSample {
        #[cfg(target_os = "linux")]
        {
            let read = |path: &str| std::fs::read_to_string(path).ok();
            let open_fds = std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|dir| dir.filter(Result::is_ok).count() as u64);
            ProcessSample::from_texts(
                read("/proc/self/stat").as_deref(),
                read("/proc/self/status").as_deref(),
                read("/proc/stat").as_deref(),
                open_fds,
                max_fds(),
            )
        }
        #[cfg(not(target_os = "linux"))]
        {
            ProcessSample {
                max_fds: max_fds(),
                ..ProcessSample::default()
            }
        }
    }

    /// Writes the series the sample has, in the Prometheus text format.
    pub(super) fn write(&self, out: &mut String) {
        let mut series = |name: &str, kind: &str, help: &str, value: Option<String>| {
            if let Some(value) = value {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
            }
        };
        series(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            self.cpu_seconds.map(|v| v.to_string()),
        );
        series(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            self.resident_bytes.map(|v| v.to_string()),
        );
        series(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            self.virtual_bytes.map(|v| v.to_string()),
        );
        series(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            self.open_fds.map(|v| v.to_string()),
        );
        series(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            self.max_fds.map(|v| v.to_string()),
        );
        series(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds.map(|v| v.to_string()),
        );
    }
}

/// The soft limit on open descriptors; `None` if unlimited or unknown.
fn max_fds() -> Option<u64> {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE)
            .ok()
            .map(|(soft, _)| soft)
            .filter(|&soft| soft != rlimit::INFINITY)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line, of a process whose name has a space and parentheses.
    const STAT: &str = "4242 (tether (a) b) S 1 4242 4242 0 -1 4194560 1795 0 0 0 \
        250 130 0 0 20 0 3 0 98765 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 \
        4096 17642 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

    const STATUS: &str = "Name:\ttether\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t  130000 kB\nVmSize:\t  120563 kB\nVmRSS:\t    8192 kB\nThreads:\t3\n";

    const PROC_STAT: &str = "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1764370000\nprocesses 7\n";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        assert_eq!(
            parse_stat(STAT),
            Some(Stat {
                cpu_ticks: 380,
                start_ticks: 98765,
                virtual_bytes: 123456789,
            })
        );
        // The name's own ")" followed by what looks like fields does not
        // shift them.
        let tricky = STAT.replace("(tether (a) b)", "(x) 9 9 9 9 9 9 9 9 9 9 9 9 9 (y)");
        assert_eq!(parse_stat(&tricky), parse_stat(STAT));
    }

    #[test]
    fn bad_stat_text_is_none() {
        for text in ["", "4242 tether S 1", "4242 (tether) S 1 2 3", "4242 (t) S x x x"] {
            assert_eq!(parse_stat(text), None, "{text:?}");
        }
        // Every field, but a time that is not a number.
        assert_eq!(parse_stat(&STAT.replace(" 250 ", " -250 ")), None);
    }

    #[test]
    fn resident_and_boot_time_are_read_from_their_lines() {
        assert_eq!(parse_resident(STATUS), Some(8192 * 1024));
        assert_eq!(parse_resident("Name:\tx\n"), None);
        assert_eq!(parse_resident("VmRSS:\t12 MB\n"), None);
        assert_eq!(parse_boot_time(PROC_STAT), Some(1_764_370_000));
        assert_eq!(parse_boot_time("cpu 1\n"), None);
    }

    #[test]
    fn the_sample_writes_what_it_has_and_leaves_out_the_rest() {
        let sample = ProcessSample::from_texts(Some(STAT), Some(STATUS), Some(PROC_STAT), Some(12), None);
        assert_eq!(sample.cpu_seconds, Some(3.8));
        assert_eq!(sample.start_time_seconds, Some(1_764_370_000.0 + 987.65));
        let mut out = String::new();
        sample.write(&mut out);
        assert!(out.contains("\nprocess_cpu_seconds_total 3.8\n"), "{out}");
        assert!(out.contains("\nprocess_resident_memory_bytes 8388608\n"), "{out}");
        assert!(
            out.contains("\nprocess_virtual_memory_bytes 123456789\n"),
            "{out}"
        );
        assert!(out.contains("\nprocess_open_fds 12\n"), "{out}");
        assert!(!out.contains("process_max_fds"), "{out}");
        // Without /proc/stat, no start time (rather than one from 1970).
        let sample = ProcessSample::from_texts(Some(STAT), None, None, None, Some(1024));
        let mut out = String::new();
        sample.write(&mut out);
        assert!(!out.contains("process_start_time_seconds"), "{out}");
        assert!(!out.contains("process_resident_memory_bytes"), "{out}");
        assert!(out.contains("\nprocess_max_fds 1024\n"), "{out}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_plausibly() {
        let sample = ProcessSample::read();
        assert!(sample.resident_bytes.is_some_and(|b| b > 0), "{sample:?}");
        assert!(sample.open_fds.is_some_and(|n| n >= 3), "{sample:?}");
        let start = sample.start_time_seconds.expect("start time");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(start <= now + 1.0 && start > 1_000_000_000.0, "{start}");
    }
}
