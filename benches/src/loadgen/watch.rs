//! What the parent of a multi-process run measures about the servers it
//! was told to watch (`--watch-pid`, repeatable: several server processes
//! behind one port) and about the machine's TCP sockets, at three moments:
//! before its processes start, once every one has its connections open (and
//! `--watch-settle` seconds more), and after the last has reported.
//!
//! From those: how long opening every connection took; the servers' RSS,
//! summed over their processes, per connection held; the kernel's TCP
//! socket memory (`/proc/net/sockstat`'s `TCP: ... mem`, in pages, for the
//! whole machine: on loopback both ends of each connection count) and the
//! kernel's socket slabs (`/proc/slabinfo`, root only: socket, inode and
//! epoll entry, both ends too) per connection; the servers' CPU time a
//! second while the connections are held idle; the servers' RSS split
//! into file-backed (code, the same in each process) and anonymous (what
//! grows with the connections), per server and per connection (over the settle); the sum of each server's peak RSS (`VmHWM`, started over
//! when the connections are open) during the measurement; and the
//! servers' CPU time (and the bus's, `--watch-bus-pid`) from the start gate
//! to the end, per delivery.

use std::io;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::report::round3;
use super::sys;

/// The machine's TCP sockets, from `/proc/net/sockstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSockets {
    /// Sockets in use (`inuse`).
    pub in_use: u64,
    /// Memory the kernel holds for TCP socket buffers, in pages (`mem`).
    pub mem_pages: u64,
}

/// Reads `/proc/net/sockstat`.
pub fn tcp_sockets() -> io::Result<TcpSockets> {
    let text = std::fs::read_to_string("/proc/net/sockstat")?;
    parse_sockstat(&text).ok_or_else(|| io::Error::other("/proc/net/sockstat: no TCP line"))
}

/// The `TCP:` line of a `/proc/net/sockstat`: `TCP: inuse N orphan N tw N
/// alloc N mem N`.
fn parse_sockstat(text: &str) -> Option<TcpSockets> {
    let line = text.lines().find_map(|l| l.strip_prefix("TCP:"))?;
    let mut words = line.split_ascii_whitespace();
    let (mut in_use, mut mem_pages) = (None, None);
    while let (Some(key), Some(value)) = (words.next(), words.next()) {
        match key {
            "inuse" => in_use = value.parse().ok(),
            "mem" => mem_pages = value.parse().ok(),
            _ => {}
        }
    }
    Some(TcpSockets {
        in_use: in_use?,
        mem_pages: mem_pages?,
    })
}

/// The kernel's slab caches that grow with each TCP connection: the
/// socket (`TCP`), its inode (`sock_inode_cache`) and its epoll entry
/// (`eventpoll_epi`).
const SOCKET_SLABS: [&str; 3] = ["TCP", "sock_inode_cache", "eventpoll_epi"];

/// Bytes held by the `SOCKET_SLABS` objects in use, from
/// `/proc/slabinfo` (readable by root only): `None` when it cannot be read.
pub fn socket_slab_bytes() -> Option<u64> {
    parse_slabinfo(&std::fs::read_to_string("/proc/slabinfo").ok()?)
}

/// The sum of active objects × object size over [`SOCKET_SLABS`] in the
/// text of a `/proc/slabinfo` (`name active_objs num_objs objsize ...`).
fn parse_slabinfo(text: &str) -> Option<u64> {
    let mut total = 0;
    let mut found = 0;
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        if words.next().is_none_or(|name| !SOCKET_SLABS.contains(&name)) {
            continue;
        }
        let active: u64 = words.next()?.parse().ok()?;
        let size: u64 = words.nth(1)?.parse().ok()?;
        total += active * size;
        found += 1;
    }
    (found > 0).then_some(total)
}

/// The size of a memory page, in bytes.
fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no
    // preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// One look at the servers and the sockets.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    /// RSS summed over the servers, in bytes.
    rss: u64,
    /// The same, file-backed and anonymous apart.
    split: sys::RssSplit,
    /// CPU time summed over the servers, in seconds.
    cpu_s: f64,
    /// The bus's CPU time, in seconds.
    bus_cpu_s: Option<f64>,
    tcp: TcpSockets,
    /// Bytes in the kernel's socket slabs, if readable.
    slab: Option<u64>,
    /// The machine's CPU seconds in software interrupts, if readable.
    softirq_s: Option<f64>,
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server processes (at least one).
    pub pids: Vec<u32>,
    /// The bus (e.g. redis-server) joining them, if any.
    pub bus_pid: Option<u32>,
    /// How long to wait, once every connection is open, before looking.
    pub settle: Duration,
}

/// The measurements of one run, taken as it goes.
#[derive(Debug)]
pub struct Watch {
    opts: Options,
    before: Sample,
    /// The looks when every process said it was ready and after the
    /// settle.
    connected: Option<(Sample, Sample)>,
    /// Whether every server's peak RSS could be started over.
    peaks_reset: bool,
    /// The look when every process had measured, its connections still
    /// open (fan-out): the run's end. Without it the end is the look after
    /// the processes exited.
    measured: Option<Sample>,
}

impl Watch {
    /// Takes the first look, before any connection opens.
    pub fn start(opts: Options) -> io::Result<Watch> {
        if opts.pids.is_empty() {
            return Err(io::Error::other("no server pid to watch"));
        }
        let before = sample(&opts)?;
        Ok(Watch {
            opts,
            before,
            connected: None,
            peaks_reset: false,
            measured: None,
        })
    }

    /// Every process has its connections open: waits the settle time, looks
    /// again, and starts each server's peak RSS over.
    pub fn connected(&mut self) -> io::Result<()> {
        let ready = sample(&self.opts)?;
        std::thread::sleep(self.opts.settle);
        let look = sample(&self.opts)?;
        self.peaks_reset = self.opts.pids.iter().all(|&pid| sys::reset_peak_rss(pid).is_ok());
        self.connected = Some((ready, look));
        Ok(())
    }

    /// Every process has measured and still holds its connections: the
    /// run's end, before they close.
    pub fn measured(&mut self) -> io::Result<()> {
        self.measured = Some(sample(&self.opts)?);
        Ok(())
    }

    /// Once the load generator's processes have exited: waits (up to a
    /// minute) for the servers to have closed their side of the
    /// connections, the machine's TCP sockets in use back to where they
    /// were before the run, and looks.
    fn closed(&self) -> io::Result<Sample> {
        let give_up = Instant::now() + Duration::from_secs(60);
        loop {
            let look = sample(&self.opts)?;
            // A little slack for other programs' sockets.
            if look.tcp.in_use <= self.before.tcp.in_use + 64 || Instant::now() >= give_up {
                return Ok(look);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last look, after the run: the fields it adds to the report, for
    /// `connections` held and `deliveries` made (messages, in echo mode).
    pub fn finish(&self, connections: u64, deliveries: u64) -> io::Result<Map<String, Value>> {
        let (ready, open) = self
            .connected
            .ok_or_else(|| io::Error::other("the processes never all had their connections open"))?;
        let peak_rss: u64 = self
            .opts
            .pids
            .iter()
            .map(|&pid| sys::peak_rss_bytes(pid))
            .sum::<io::Result<u64>>()?;
        let after = match self.measured {
            Some(_) => self.closed()?,
            None => sample(&self.opts)?,
        };
        let end = self.measured.unwrap_or(after);
        let mut json = figures(
            &self.before,
            &ready,
            &open,
            &end,
            Peak {
                rss: peak_rss,
                of_run: self.peaks_reset,
            },
            Counts {
                servers: self.opts.pids.len(),
                connections,
                deliveries,
                page_size: page_size(),
            },
        );
        if self.measured.is_some() {
            json.extend(closing(&end, &after, connections));
        }
        Ok(json)
    }
}

/// The servers' summed peak RSS after the connections were open.
#[derive(Debug, Clone, Copy)]
struct Peak {
    rss: u64,
    /// Started over when the connections were open (else: since each
    /// server started).
    of_run: bool,
}

/// What the figures are divided by.
#[derive(Debug, Clone, Copy)]
struct Counts {
    servers: usize,
    connections: u64,
    deliveries: u64,
    page_size: u64,
}

/// `a / b`, or 0 when there is nothing to divide by.
fn per(a: f64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a / b as f64 }
}

fn figures(
    before: &Sample,
    ready: &Sample,
    open: &Sample,
    end: &Sample,
    peak: Peak,
    n: Counts,
) -> Map<String, Value> {
    let mut json = Map::new();
    let rss_growth = open.rss.saturating_sub(before.rss);
    let tcp_growth = open.tcp.mem_pages.saturating_sub(before.tcp.mem_pages) * n.page_size;
    let cpu = end.cpu_s - open.cpu_s;
    // The servers' CPU per second while holding the connections idle (the
    // settle): heartbeats, pings, timers. The run's CPU less that much for
    // its length is what the deliveries cost.
    let settle_s = open.at.duration_since(ready.at).as_secs_f64();
    let idle_cpu_per_s = if settle_s > 0.0 {
        (open.cpu_s - ready.cpu_s) / settle_s
    } else {
        0.0
    };
    let run_s = end.at.duration_since(open.at).as_secs_f64();
    let delivery_cpu = (cpu - idle_cpu_per_s * run_s).max(0.0);
    json.insert("watched_servers".into(), json!(n.servers));
    json.insert("connections_held".into(), json!(n.connections));
    json.insert(
        "connect_s".into(),
        json!(round3(ready.at.duration_since(before.at).as_secs_f64())),
    );
    json.insert("server_rss_before".into(), json!(before.rss));
    json.insert("server_rss_connected".into(), json!(open.rss));
    json.insert("server_rss_after".into(), json!(end.rss));
    json.insert("server_peak_rss_sum".into(), json!(peak.rss));
    json.insert("server_peak_rss_sum_of_run".into(), json!(peak.of_run));
    json.insert(
        "server_rss_per_connection_b".into(),
        json!(per(rss_growth as f64, n.connections).round()),
    );
    // Code (file-backed: the same pages in every process, mapped from the
    // executable) apart from what grows with the connections (anonymous).
    json.insert("server_rss_file_connected".into(), json!(open.split.file));
    json.insert("server_rss_anon_connected".into(), json!(open.split.anon));
    json.insert(
        "server_rss_file_per_server_b".into(),
        json!(per(open.split.file as f64, n.servers as u64).round()),
    );
    json.insert(
        "server_rss_anon_per_connection_b".into(),
        json!(
            per(
                open.split.anon.saturating_sub(before.split.anon) as f64,
                n.connections
            )
            .round()
        ),
    );
    json.insert("tcp_inuse_before".into(), json!(before.tcp.in_use));
    json.insert("tcp_inuse_connected".into(), json!(open.tcp.in_use));
    json.insert("tcp_mem_pages_before".into(), json!(before.tcp.mem_pages));
    json.insert("tcp_mem_pages_connected".into(), json!(open.tcp.mem_pages));
    json.insert("tcp_mem_pages_after".into(), json!(end.tcp.mem_pages));
    json.insert(
        "tcp_mem_per_connection_b".into(),
        json!(per(tcp_growth as f64, n.connections).round()),
    );
    json.insert("servers_cpu_s".into(), json!(round3(cpu)));
    json.insert(
        "servers_cpu_us_per_delivery".into(),
        json!(round3(per(cpu * 1e6, n.deliveries))),
    );
    json.insert("servers_idle_cpu_per_s".into(), json!(round3(idle_cpu_per_s)));
    json.insert(
        "servers_cpu_us_per_delivery_less_idle".into(),
        json!(round3(per(delivery_cpu * 1e6, n.deliveries))),
    );
    if let (Some(a), Some(b)) = (before.slab, open.slab) {
        json.insert(
            "kernel_socket_slab_per_connection_b".into(),
            json!(per(b.saturating_sub(a) as f64, n.connections).round()),
        );
    }
    // On loopback the receiving end's TCP work is done in software
    // interrupts, mostly on the sending server's turn, and counted in no
    // process's CPU time: the machine's softirq time over the run, beside.
    if let (Some(a), Some(b)) = (open.softirq_s, end.softirq_s) {
        let softirq = (b - a).max(0.0);
        json.insert("machine_softirq_s".into(), json!(round3(softirq)));
        json.insert(
            "machine_softirq_us_per_delivery".into(),
            json!(round3(per(softirq * 1e6, n.deliveries))),
        );
    }
    if let (Some(a), Some(b)) = (open.bus_cpu_s, end.bus_cpu_s) {
        json.insert("bus_cpu_s".into(), json!(round3(b - a)));
    }
    json
}

/// What the servers spent from the run's end, every connection open, to
/// after the load generator's processes exited and closed them.
fn closing(end: &Sample, after: &Sample, connections: u64) -> Map<String, Value> {
    let cpu = (after.cpu_s - end.cpu_s).max(0.0);
    let mut json = Map::new();
    json.insert(
        "servers_close_s".into(),
        json!(round3(after.at.duration_since(end.at).as_secs_f64())),
    );
    json.insert("servers_close_cpu_s".into(), json!(round3(cpu)));
    json.insert(
        "servers_close_cpu_us_per_connection".into(),
        json!(round3(per(cpu * 1e6, connections))),
    );
    json
}

fn sample(opts: &Options) -> io::Result<Sample> {
    let at = Instant::now();
    let mut rss = 0;
    let mut split = sys::RssSplit::default();
    let mut cpu_s = 0.0;
    for &pid in &opts.pids {
        rss += sys::rss_bytes(pid)?;
        split = split + sys::rss_split(pid)?;
        cpu_s += sys::cpu_seconds(Some(pid))?;
    }
    let bus_cpu_s = opts.bus_pid.map(|pid| sys::cpu_seconds(Some(pid))).transpose()?;
    Ok(Sample {
        at,
        rss,
        split,
        cpu_s,
        bus_cpu_s,
        tcp: tcp_sockets()?,
        slab: socket_slab_bytes(),
        softirq_s: sys::softirq_seconds().ok(),
    })
}

/// The one line for people the figures add to a report.
pub fn human(json: &Map<String, Value>) -> String {
    let f = |k: &str| json.get(k).cloned().unwrap_or(Value::Null);
    let closing = match json.get("servers_close_cpu_s") {
        Some(cpu) => format!(
            "; closing them: {cpu} s of the servers' CPU ({} us per connection) over {} s",
            f("servers_close_cpu_us_per_connection"),
            f("servers_close_s"),
        ),
        None => String::new(),
    };
    format!(
        "{} connections open in {} s; {} servers: RSS {} B per connection ({} B of it anonymous; code \
         {:.1} MB file-backed per server; peak sum {} MB), \
         kernel TCP buffers {} B and socket slabs {} B per connection; servers' CPU {} s ({} us per delivery, \
         {} less {} s/s idle){closing}",
        f("connections_held"),
        f("connect_s"),
        f("watched_servers"),
        f("server_rss_per_connection_b"),
        f("server_rss_anon_per_connection_b"),
        f("server_rss_file_per_server_b").as_f64().unwrap_or(0.0) / 1e6,
        f("server_peak_rss_sum").as_u64().unwrap_or(0) / 1_000_000,
        f("tcp_mem_per_connection_b"),
        f("kernel_socket_slab_per_connection_b"),
        f("servers_cpu_s"),
        f("servers_cpu_us_per_delivery"),
        f("servers_cpu_us_per_delivery_less_idle"),
        f("servers_idle_cpu_per_s"),
    )
}

#[cfg(test)]
mod tests {
    // A test: a failed unwrap is the failure it reports.
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn sockstat_tcp_line() {
        let text = "sockets: used 12\nTCP: inuse 3 orphan 0 tw 1 alloc 5 mem 42\nUDP: inuse 0 mem 7\n";
        assert_eq!(
            parse_sockstat(text),
            Some(TcpSockets {
                in_use: 3,
                mem_pages: 42
            })
        );
        assert_eq!(parse_sockstat("UDP: inuse 0 mem 7\n"), None);
        assert_eq!(parse_sockstat("TCP: inuse 3\n"), None);
    }

    #[test]
    fn slabinfo_socket_caches() {
        let text = "slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize> ...\n\
                    TCP 92 143 2368 13 8 : tunables 0 0 0 : slabdata 11 11 0\n\
                    TCPv6 78 130 2496 13 8 : tunables 0 0 0 : slabdata 10 10 0\n\
                    eventpoll_epi 100 200 128 32 1 : tunables 0 0 0 : slabdata 1 1 0\n";
        assert_eq!(parse_slabinfo(text), Some(92 * 2368 + 100 * 128));
        assert_eq!(parse_slabinfo("filp 1 1 192 21 1\n"), None);
    }

    #[test]
    fn this_machine_has_a_sockstat() {
        tcp_sockets().unwrap();
    }

    #[test]
    fn closing_is_counted_from_the_run_s_end_per_connection() {
        let t0 = Instant::now();
        let look = |secs: u64, cpu_s: f64| Sample {
            at: t0 + Duration::from_secs(secs),
            rss: 0,
            split: sys::RssSplit::default(),
            cpu_s,
            bus_cpu_s: None,
            tcp: TcpSockets {
                in_use: 0,
                mem_pages: 0,
            },
            slab: None,
            softirq_s: None,
        };
        // 2 s of the servers' CPU to close 100 000 connections, over 3 s.
        let json = closing(&look(10, 7.0), &look(13, 9.0), 100_000);
        assert_eq!(json["servers_close_s"], json!(3.0));
        assert_eq!(json["servers_close_cpu_s"], json!(2.0));
        assert_eq!(json["servers_close_cpu_us_per_connection"], json!(20.0));
    }

    #[test]
    fn figures_are_per_connection_and_per_delivery() {
        let t0 = Instant::now();
        let look = |secs: u64, rss: u64, cpu_s: f64, in_use: u64, mem_pages: u64| Sample {
            at: t0 + Duration::from_secs(secs),
            rss,
            // A constant 4 MB of code over the two servers, the rest anonymous.
            split: sys::RssSplit {
                file: 4_000_000,
                anon: rss - 4_000_000,
            },
            cpu_s,
            bus_cpu_s: Some(cpu_s / 2.0),
            tcp: TcpSockets { in_use, mem_pages },
            slab: Some(rss / 10),
            softirq_s: Some(cpu_s / 4.0),
        };
        let before = look(0, 10_000_000, 1.0, 5, 10);
        // 0.2 s of CPU over the 2 s settle: 0.1 s a second idle.
        let ready = look(2, 29_000_000, 2.8, 20_005, 1000);
        let open = look(4, 30_000_000, 3.0, 20_005, 1010);
        let end = look(20, 31_000_000, 7.0, 5, 12);
        let json = figures(
            &before,
            &ready,
            &open,
            &end,
            Peak {
                rss: 40_000_000,
                of_run: true,
            },
            Counts {
                servers: 2,
                connections: 10_000,
                deliveries: 2_000_000,
                page_size: 4096,
            },
        );
        assert_eq!(json["connect_s"], json!(2.0));
        assert_eq!(json["server_rss_per_connection_b"], json!(2000.0));
        assert_eq!(json["server_rss_anon_per_connection_b"], json!(2000.0));
        assert_eq!(json["server_rss_file_per_server_b"], json!(2_000_000.0));
        assert_eq!(json["server_rss_anon_connected"], json!(26_000_000));
        assert_eq!(json["tcp_mem_per_connection_b"], json!(409.6_f64.round()));
        assert_eq!(json["servers_cpu_s"], json!(4.0));
        assert_eq!(json["servers_cpu_us_per_delivery"], json!(2.0));
        assert_eq!(json["servers_idle_cpu_per_s"], json!(0.1));
        // 4 s less 16 s at 0.1 s/s: 2.4 s over 2 000 000 deliveries.
        assert_eq!(json["servers_cpu_us_per_delivery_less_idle"], json!(1.2));
        // The machine's softirq time from open (0.75 s) to end (1.75 s).
        assert_eq!(json["machine_softirq_s"], json!(1.0));
        assert_eq!(json["machine_softirq_us_per_delivery"], json!(0.5));
        assert_eq!(json["kernel_socket_slab_per_connection_b"], json!(200.0));
        assert_eq!(json["bus_cpu_s"], json!(2.0));
        assert!(human(&json).contains("10000 connections open in 2.0 s"));
    }
}
