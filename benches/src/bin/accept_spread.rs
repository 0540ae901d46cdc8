//! `accept_spread`: how fast a tether server of several loops takes new
//! connections, and how evenly it spreads them over its loops, with its
//! listeners shared by the loops (the default: one socket, each loop
//! accepting from it and handing connections out in turn) beside one
//! socket per loop (`SO_REUSEPORT`, `Config::reuse_port`), in the same
//! run. See `benches/README.md`.
//!
//! Each server answers every request with the index of the loop that
//! served it. Two loads, each run `--rounds` times per mode, the modes
//! alternating so that the machine's drift hits both:
//!
//! - **churn**: `--clients` threads, each in a closed loop (connect, one
//!   `GET` with `Connection: close`, read to the end) for `--seconds`:
//!   connections per second, and the share of each loop;
//! - **held**: `--held` connections opened one after another and kept
//!   open (subscribers arriving one at a time): how many each loop holds.
//!
//! ```text
//! accept_spread --loops 2 --clients 4 --seconds 2 --rounds 5 --held 300
//! ```
//!
//! Prints one JSON line per load, mode and round, then the medians, and
//! the ratio shared / per-loop of each round's two runs and its median.

// A measuring tool, not a server: it panics where it cannot go on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_precision_loss)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use tether_server::{App, Cluster, Config, Handle, Handshake, Request, Route};

/// The loops' answers: their index.
const NAMES: [&str; 16] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15",
];

/// Answers every request with its loop's index.
struct LoopIndex(&'static str);

impl App for LoopIndex {
    type Post = ();
    type State = ();

    fn route(&mut self, _: &Request<'_>) -> Route {
        Route::Page {
            content_type: "text/plain",
            body: self.0.as_bytes(),
        }
    }
}

struct Options {
    loops: usize,
    clients: usize,
    seconds: f64,
    rounds: usize,
    held: usize,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        loops: 2,
        clients: 4,
        seconds: 2.0,
        rounds: 5,
        held: 300,
    };
    let mut args = std::env::args().skip(1);
    while let Some(name) = args.next() {
        let value = args.next().ok_or(format!("{name} needs a value"))?;
        let bad = |_| format!("{name} {value}: not a number");
        match name.as_str() {
            "--loops" => options.loops = value.parse().map_err(bad)?,
            "--clients" => options.clients = value.parse().map_err(bad)?,
            "--seconds" => {
                options.seconds = value
                    .parse()
                    .map_err(|_| format!("{name} {value}: not a number"))?
            }
            "--rounds" => options.rounds = value.parse().map_err(bad)?,
            "--held" => options.held = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown option {name}")),
        }
    }
    if !(1..=NAMES.len()).contains(&options.loops) {
        return Err(format!("--loops: 1 to {}", NAMES.len()));
    }
    Ok(options)
}

/// A server of `loops` loops, its listeners shared or one per loop.
struct Running {
    addr: SocketAddr,
    handle: Handle,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    fn start(loops: usize, per_loop: bool) -> Running {
        let mut config = Config::new("127.0.0.1:0".parse().unwrap());
        config.reuse_port = per_loop;
        config.linger = Duration::from_millis(100);
        config.raise_fd_limit = true;
        let cluster =
            Cluster::bind(config, Handshake::new(), loops, |index| LoopIndex(NAMES[index])).unwrap();
        let addr = cluster.local_addr();
        let handle = cluster.handle();
        let thread = thread::spawn(move || cluster.run());
        Running {
            addr,
            handle,
            thread: Some(thread),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The loop index in a response, once `buf` holds all of it.
fn answer(buf: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("Content-Length: "))?
        .trim()
        .parse()
        .ok()?;
    (body.len() >= length)
        .then(|| body[..length].parse().ok())
        .flatten()
}

/// Sends one `GET` on `stream` and reads its answer: the loop's index.
fn ask(stream: &mut TcpStream, close: bool) -> Option<usize> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    write!(stream, "GET / HTTP/1.1\r\nHost: bench\r\n{connection}\r\n").ok()?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        if let Some(index) = answer(&buf) {
            return Some(index);
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Connections per second over `seconds`, and per loop how many it took
/// (and how many connections failed).
fn churn(addr: SocketAddr, loops: usize, clients: usize, seconds: f64) -> (f64, Vec<u64>, u64) {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            thread::spawn(move || {
                let mut taken = vec![0u64; loops];
                let mut failed = 0;
                while Instant::now() < until {
                    let served = TcpStream::connect(addr).ok().and_then(|mut s| {
                        let index = ask(&mut s, true);
                        // Read to the server's close, so that the
                        // connection is over when the next one starts.
                        let _ = s.read_to_end(&mut Vec::new());
                        index
                    });
                    match served {
                        Some(index) if index < loops => taken[index] += 1,
                        _ => failed += 1,
                    }
                }
                (taken, failed)
            })
        })
        .collect();
    let mut taken = vec![0u64; loops];
    let mut failed = 0;
    for thread in threads {
        let (each, fails) = thread.join().unwrap();
        for (sum, n) in taken.iter_mut().zip(each) {
            *sum += n;
        }
        failed += fails;
    }
    let elapsed = started.elapsed().as_secs_f64();
    (taken.iter().sum::<u64>() as f64 / elapsed, taken, failed)
}

/// `count` connections opened one after another and kept open: how many
/// each loop holds.
fn held(addr: SocketAddr, loops: usize, count: usize) -> Vec<u64> {
    let mut open = Vec::with_capacity(count);
    let mut holds = vec![0u64; loops];
    for _ in 0..count {
        let mut stream = TcpStream::connect(addr).unwrap();
        let index = ask(&mut stream, false).expect("an answer");
        holds[index] += 1;
        open.push(stream);
    }
    holds
}

/// The smallest share of a loop over the largest (1: even).
fn evenness(counts: &[u64]) -> f64 {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    counts.iter().copied().min().unwrap_or(0) as f64 / max as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn mode(per_loop: bool) -> &'static str {
    if per_loop { "per-loop" } else { "shared" }
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("accept_spread: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Options {
        loops,
        clients,
        seconds,
        rounds,
        held: held_count,
    } = options;
    // [shared, per-loop]: connections per second, evenness of churn and
    // of held connections.
    let mut rates = [Vec::new(), Vec::new()];
    let mut churn_even = [Vec::new(), Vec::new()];
    let mut held_even = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Which mode goes first alternates too.
        let order = if round % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for per_loop in order {
            let slot = usize::from(per_loop);
            let server = Running::start(loops, per_loop);
            let (rate, taken, failed) = churn(server.addr, loops, clients, seconds);
            println!(
                "{{\"load\":\"churn\",\"mode\":\"{}\",\"round\":{round},\"loops\":{loops},\"clients\":{clients},\"per_s\":{rate:.0},\"per_loop\":{taken:?},\"failed\":{failed}}}",
                mode(per_loop)
            );
            rates[slot].push(rate);
            churn_even[slot].push(evenness(&taken));
            drop(server);
            if held_count > 0 {
                let server = Running::start(loops, per_loop);
                let holds = held(server.addr, loops, held_count);
                println!(
                    "{{\"load\":\"held\",\"mode\":\"{}\",\"round\":{round},\"loops\":{loops},\"per_loop\":{holds:?}}}",
                    mode(per_loop)
                );
                held_even[slot].push(evenness(&holds));
            }
        }
    }
    // Each round's two runs were side by side: their ratio drifts less
    // than either figure.
    let paired: Vec<f64> = rates[0]
        .iter()
        .zip(&rates[1])
        .map(|(shared, per_loop)| shared / per_loop.max(1.0))
        .collect();
    let [shared, per_loop] = rates.map(median);
    println!(
        "churn: shared {shared:.0}/s, per-loop {per_loop:.0}/s (medians); shared / per-loop by round {paired:.2?}, median {:.2}; evenness (min/max loop) shared {:.2}, per-loop {:.2}",
        median(paired.clone()),
        median(churn_even[0].clone()),
        median(churn_even[1].clone())
    );
    if held_count > 0 {
        println!(
            "held {held_count}: evenness (min/max loop) shared {:.2}, per-loop {:.2}",
            median(held_even[0].clone()),
            median(held_even[1].clone())
        );
    }
    ExitCode::SUCCESS
}
