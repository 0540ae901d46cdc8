//! What the load generator reads about processes from `/proc`, and the one
//! limit it raises.

use std::io;

/// CPU time (user + system) a process has used, in seconds, from
/// `/proc/PID/stat` (`None`: this process). Clock-tick resolution, usually
/// 10 ms: fine over runs of seconds.
pub fn cpu_seconds(pid: Option<u32>) -> io::Result<f64> {
    let (user, system) = cpu_times(pid)?;
    Ok(user + system)
}

/// CPU time a process has used in user space and in the kernel, in
/// seconds, from `/proc/PID/stat` (`None`: this process).
pub fn cpu_times(pid: Option<u32>) -> io::Result<(f64, f64)> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(&path)?;
    let (user, system) =
        parse_stat_ticks(&stat).ok_or_else(|| io::Error::other(format!("{path}: unexpected format")))?;
    let per_second = clock_ticks_per_second() as f64;
    Ok((user as f64 / per_second, system as f64 / per_second))
}

/// A process's context switches so far, voluntary and involuntary
/// (`/proc/PID/status`).
pub fn context_switches(pid: u32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/status");
    parse_context_switches(&std::fs::read_to_string(&path)?)
        .ok_or_else(|| io::Error::other(format!("{path}: no context switch counts")))
}

fn parse_context_switches(status: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].trim().parse().ok()
    };
    Some(field("voluntary_ctxt_switches:")? + field("nonvoluntary_ctxt_switches:")?)
}

/// Seconds the machine's CPUs have spent in software interrupts since
/// boot, from `/proc/stat` (the `softirq` column of the `cpu` line). On
/// loopback the receiving end's TCP work runs there, and is counted in no
/// process's CPU time.
pub fn softirq_seconds() -> io::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let ticks =
        parse_softirq_ticks(&stat).ok_or_else(|| io::Error::other("/proc/stat: unexpected format"))?;
    Ok(ticks as f64 / clock_ticks_per_second() as f64)
}

/// The `softirq` column (the seventh number) of the `cpu` line.
fn parse_softirq_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    line.split_ascii_whitespace().nth(7)?.parse().ok()
}

/// utime and stime, in clock ticks, from the text of a `/proc/PID/stat`.
fn parse_stat_ticks(stat: &str) -> Option<(u64, u64)> {
    // The command name (field 2) is in parentheses and may itself contain
    // spaces and parentheses: the fields that follow start after the last
    // ')'. There, field 3 (state) is index 0, so utime (14) and stime (15)
    // are 11 and 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no
    // preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// Nanoseconds on `CLOCK_MONOTONIC`: one clock for every process of the
/// machine (unlike `Instant`, whose values cannot leave the process).
pub fn monotonic_ns() -> io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let secs = u64::try_from(ts.tv_sec).map_err(io::Error::other)?;
    let nanos = u64::try_from(ts.tv_nsec).map_err(io::Error::other)?;
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// Resident set size of a process, in bytes, from the `VmRSS` line of
/// `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)?;
    parse_vm_rss(&status).ok_or_else(|| io::Error::other(format!("{path}: no VmRSS line")))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    parse_status_kib(status, "VmRSS:")
}

/// A process's resident memory in two parts, in bytes: file-backed
/// (`RssFile` of `/proc/PID/status`: the executable's code and read-only
/// data and the shared libraries, shared with every process that maps the
/// same files and constant while it runs) and anonymous (`RssAnon`: heap
/// and stacks, what grows with each connection). Shared memory
/// (`RssShmem`) is in neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RssSplit {
    /// File-backed, in bytes.
    pub file: u64,
    /// Anonymous, in bytes.
    pub anon: u64,
}

impl std::ops::Add for RssSplit {
    type Output = RssSplit;
    fn add(self, other: RssSplit) -> RssSplit {
        RssSplit {
            file: self.file + other.file,
            anon: self.anon + other.anon,
        }
    }
}

/// A process's [`RssSplit`], from `/proc/PID/status`.
pub fn rss_split(pid: u32) -> io::Result<RssSplit> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)?;
    parse_rss_split(&status).ok_or_else(|| io::Error::other(format!("{path}: no RssFile or RssAnon line")))
}

fn parse_rss_split(status: &str) -> Option<RssSplit> {
    Some(RssSplit {
        file: parse_status_kib(status, "RssFile:")?,
        anon: parse_status_kib(status, "RssAnon:")?,
    })
}

/// A process's peak resident set size, in bytes, from the `VmHWM` line of
/// `/proc/PID/status`: the most it has held since it started or since
/// [`reset_peak_rss`].
pub fn peak_rss_bytes(pid: u32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)?;
    parse_status_kib(&status, "VmHWM:").ok_or_else(|| io::Error::other(format!("{path}: no VmHWM line")))
}

/// Starts a process's peak RSS (`VmHWM`) over from its RSS now, by writing
/// 5 to `/proc/PID/clear_refs` (Linux 4.0 and later; the process must be
/// one this one may write that file of). An error leaves the peak counting
/// from the process's start.
pub fn reset_peak_rss(pid: u32) -> io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// The value of a `/proc/PID/status` line `key` given in kB, in bytes.
fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kib: u64 = line[key.len()..].trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Raises this process's open-file limit to its hard limit and returns the
/// new soft limit: each connection is a file descriptor.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit up to
        // the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // rlim_t is u64 on Linux.
    #[allow(clippy::unnecessary_cast)]
    Ok(limit.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_switches_add_both_kinds() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_context_switches(status), Some(127));
        assert_eq!(parse_context_switches("Name:\tx\n"), None);
        assert!(context_switches(std::process::id()).is_ok());
    }

    #[test]
    fn softirq_is_the_seventh_number_of_the_cpu_line() {
        let stat = "cpu  100 2 30 4000 5 6 77 0 0 0\ncpu0 50 1 15 2000 2 3 40 0 0 0\nintr 1\n";
        assert_eq!(parse_softirq_ticks(stat), Some(77));
        assert_eq!(parse_softirq_ticks("cpu0 1 2 3\n"), None);
        assert!(softirq_seconds().is_ok());
    }

    #[test]
    fn stat_ticks_skip_a_tricky_command_name() {
        let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 100 0 0 0 37 5 0 0 20 0 1 0 123 4096 200";
        assert_eq!(parse_stat_ticks(stat), Some((37, 5)));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn vm_rss_in_bytes() {
        let status = "Name:\ttether\nVmPeak:\t  9000 kB\nVmRSS:\t    2048 kB\nThreads:\t1\n";
        assert_eq!(parse_vm_rss(status), Some(2048 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        let status = "VmHWM:\t    4096 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(4096 * 1024));
    }

    #[test]
    fn rss_file_and_anonymous_apart() {
        let status =
            "VmRSS:\t    3072 kB\nRssAnon:\t    1024 kB\nRssFile:\t    2000 kB\nRssShmem:\t  48 kB\n";
        assert_eq!(
            parse_rss_split(status),
            Some(RssSplit {
                file: 2000 * 1024,
                anon: 1024 * 1024
            })
        );
        assert_eq!(parse_rss_split("VmRSS:\t 1 kB\nRssAnon:\t 1 kB\n"), None);
        let own = rss_split(std::process::id()).unwrap();
        // This test's own code is file-backed, its heap anonymous.
        assert!(own.file > 0 && own.anon > 0, "{own:?}");
    }

    #[test]
    fn monotonic_clock_moves_on() {
        let a = monotonic_ns().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(monotonic_ns().unwrap() >= a + 2_000_000);
    }

    #[test]
    fn this_process_is_readable() {
        assert!(cpu_seconds(None).unwrap() >= 0.0);
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }
}
