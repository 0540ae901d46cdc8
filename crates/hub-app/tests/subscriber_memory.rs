//! What an idle hub subscriber holds on the heap, counted by a counting
//! allocator: the server's live bytes with N idle raw WebSocket
//! subscribers of one topic, beside the same server's with N idle echo
//! connections (the connection alone), and the hub crate's registration
//! and the presence roster built alone with N entries. The live blocks
//! the hub adds are listed by size, so each per-subscriber allocation
//! shows as a size held N times. The figures behind benches/README's
//! breakdown of fan-out memory; run with `--nocapture` to read them, and
//! `TETHER_MEMORY_SUBSCRIBERS` to choose N (600 by default; the test
//! holds both ends of every connection).
//!
//! Only the server's threads are counted: the test thread, which plays
//! the clients, marks itself uncounted.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![allow(
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use tether_testkit as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{HttpConn, TestServer, config};
use tether_apps::Echo;
use tether_hub::{ConnectionMember, Hub, Member, Presence, Transport};
use tether_hub_app::{HubApp, HubSettings};

/// Size classes of 16 bytes up to this size; larger blocks share one.
const SMALL_LIMIT: usize = 1024;
const CLASSES: usize = SMALL_LIMIT / 16 + 1;

/// Live bytes and blocks, and live blocks by size class, allocated by the
/// threads that count.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
static BY_CLASS: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];
static LARGE_BYTES: AtomicIsize = AtomicIsize::new(0);
/// Live bytes of the blocks over [`SMALL_LIMIT`], by power of two.
static LARGE_BY_LOG2: [AtomicIsize; 64] = [const { AtomicIsize::new(0) }; 64];

thread_local! {
    static UNCOUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counts() -> bool {
    // During a thread's teardown the flag may be gone: count then.
    !UNCOUNTED.try_with(Cell::get).unwrap_or(false)
}

fn class(size: usize) -> usize {
    if size > SMALL_LIMIT {
        CLASSES - 1
    } else {
        size.div_ceil(16).saturating_sub(1)
    }
}

fn record(size: usize, sign: isize) {
    LIVE_BYTES.fetch_add(sign * size as isize, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(sign, Ordering::Relaxed);
    BY_CLASS[class(size)].fetch_add(sign, Ordering::Relaxed);
    if size > SMALL_LIMIT {
        LARGE_BYTES.fetch_add(sign * size as isize, Ordering::Relaxed);
        LARGE_BY_LOG2[size.ilog2() as usize].fetch_add(sign * size as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to `System` unchanged; only counters move.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && counts() {
            record(layout.size(), 1);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() && counts() {
            record(layout.size(), 1);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) };
        if counts() {
            record(layout.size(), -1);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() && counts() {
            record(layout.size(), -1);
            record(new_size, 1);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters at one moment.
#[derive(Clone)]
struct Snapshot {
    bytes: isize,
    blocks: isize,
    by_class: Vec<isize>,
    large: isize,
    large_by_log2: Vec<isize>,
}

impl Snapshot {
    fn now() -> Snapshot {
        Snapshot {
            bytes: LIVE_BYTES.load(Ordering::Relaxed),
            blocks: LIVE_BLOCKS.load(Ordering::Relaxed),
            by_class: BY_CLASS.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            large: LARGE_BYTES.load(Ordering::Relaxed),
            large_by_log2: LARGE_BY_LOG2.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        }
    }

    fn minus(&self, before: &Snapshot) -> Snapshot {
        Snapshot {
            bytes: self.bytes - before.bytes,
            blocks: self.blocks - before.blocks,
            by_class: self
                .by_class
                .iter()
                .zip(&before.by_class)
                .map(|(a, b)| a - b)
                .collect(),
            large: self.large - before.large,
            large_by_log2: (self.large_by_log2.iter().zip(&before.large_by_log2))
                .map(|(a, b)| a - b)
                .collect(),
        }
    }

    /// The size classes held about once per subscriber or more, as
    /// "(class) × blocks per subscriber", and the large blocks' bytes.
    fn classes(&self, n: usize) -> String {
        let mut out = Vec::new();
        for (i, &count) in self.by_class.iter().enumerate().take(CLASSES - 1) {
            if count.unsigned_abs() * 4 >= n {
                out.push(format!(
                    "{}-{} B × {:.2}",
                    i * 16 + 1,
                    (i + 1) * 16,
                    count as f64 / n as f64
                ));
            }
        }
        let large: Vec<String> = (self.large_by_log2.iter().enumerate())
            .filter(|&(_, &bytes)| bytes.unsigned_abs() >= n)
            .map(|(log2, &bytes)| {
                format!(
                    "{:.0} B in blocks of {} KiB to {} KiB",
                    bytes as f64 / n as f64,
                    (1usize << log2) / 1024,
                    (2usize << log2) / 1024
                )
            })
            .collect();
        out.push(format!(
            "blocks over {SMALL_LIMIT} B: {:.0} B a subscriber ({})",
            self.large as f64 / n as f64,
            large.join(", ")
        ));
        out.join(", ")
    }
}

/// Runs `build` on this thread with the counting on, and gives what it
/// left live.
fn counted<T>(build: impl FnOnce() -> T) -> (T, Snapshot) {
    UNCOUNTED.with(|u| u.set(false));
    let before = Snapshot::now();
    let built = build();
    let after = Snapshot::now();
    UNCOUNTED.with(|u| u.set(true));
    (built, after.minus(&before))
}

/// Waits until the server's live bytes stop moving (its loop has
/// finished the work the clients gave it).
fn settled() -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = Snapshot::now();
    loop {
        thread::sleep(Duration::from_millis(200));
        let now = Snapshot::now();
        if now.bytes == last.bytes && now.blocks == last.blocks || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// An open WebSocket to `target`, its `101` read; only the socket kept.
fn open(addr: SocketAddr, target: &str) -> TcpStream {
    let upgrade = common::Upgrade::new(addr, target);
    let mut stream = common::tcp(addr);
    stream.write_all(&upgrade.request).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the server hung up");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// Reads from each socket until `needle` came.
fn read_each(sockets: &mut [TcpStream], needle: &[u8]) {
    let mut buf = [0u8; 256];
    for socket in sockets {
        let mut got = Vec::new();
        while !got.windows(needle.len()).any(|w| w == needle) {
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "a subscriber was closed");
            got.extend_from_slice(&buf[..n]);
        }
    }
}

const TOKEN: &str = "memory-test-token";
const TOPIC: &str = "bench.fan";

fn subscribers() -> usize {
    std::env::var("TETHER_MEMORY_SUBSCRIBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(600)
}

/// What the server's live heap gained with `n` sockets open to `target`,
/// opened in two halves (`then` runs after each, given every socket so
/// far), and what the second half alone added: by then the loop's pools
/// are as full as they get, so that is what more subscribers cost.
fn server_with(
    server: &TestServer,
    n: usize,
    target: &str,
    mut then: impl FnMut(&mut [TcpStream]),
) -> (Snapshot, Snapshot) {
    let before = settled();
    let half = n / 2;
    let mut sockets: Vec<TcpStream> = (0..half).map(|_| open(server.addr, target)).collect();
    then(&mut sockets);
    let middle = settled();
    sockets.extend((half..n).map(|_| open(server.addr, target)));
    then(&mut sockets);
    let after = settled();
    drop(sockets);
    (after.minus(&before), after.minus(&middle))
}

/// The test's configuration: the process's open-file limit raised (the
/// test holds both ends of every connection).
fn memory_config() -> tether_server::Config {
    let mut config = config();
    config.raise_fd_limit = true;
    config
}

fn per(bytes: isize, n: usize) -> f64 {
    bytes as f64 / n as f64
}

#[test]
fn an_idle_hub_subscriber_s_heap_is_counted_by_what_holds_it() {
    UNCOUNTED.with(|u| u.set(true));
    let n = subscribers();

    let echo = TestServer::start(memory_config(), Echo::everywhere());
    let (connection, _) = server_with(&echo, n, "/echo", |_| {});
    drop(echo);

    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    let hub = TestServer::start(memory_config(), HubApp::new(settings));
    let addr = hub.addr;
    let target = format!("/topics/{TOPIC}/ws?format=raw");
    let (subscriber, more) = server_with(&hub, n, &target, |sockets| {
        // Every subscriber gets an event: each is registered, and each
        // output queue has been used and drained.
        let body = "an event for every subscriber";
        let mut conn = HttpConn::connect(addr);
        conn.send(
            format!(
                "POST /topics/{TOPIC} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
        assert_eq!(conn.response().status, 200);
        read_each(sockets, body.as_bytes());
    });
    drop(hub);

    // The hub crate's part, built alone: a registration per subscriber
    // and its place in the topic's list, keyed as the server's ids are
    // (12 bytes).
    let (hub_crate, registration) = counted(|| {
        let mut hub: Hub<(u32, u32, u32)> = Hub::new(tether_hub::Config::default(), true);
        for i in 0..n {
            let _ = hub
                .subscribe(TOPIC, (i as u32, 1, 0), Transport::RawWebSocket, None)
                .unwrap();
        }
        hub
    });
    assert_eq!(
        hub_crate.topics().map(|(_, info)| info.websocket).sum::<usize>(),
        n
    );
    // The presence roster, built alone: the topic sequencer's set of
    // members, each connection one of its own (named only when shown).
    let (roster, presence) = counted(|| {
        let mut presence = Presence::new("n");
        let topic: Arc<str> = Arc::from(TOPIC);
        for i in 0..n {
            presence.join(
                &topic,
                &Member::Connection(ConnectionMember::new(0, i as u64 + 1)),
            );
        }
        presence
    });
    assert_eq!(roster.count(), n);

    let app = subscriber.minus(&connection);
    eprintln!("{n} idle subscribers (live heap bytes a subscriber, blocks a subscriber):");
    eprintln!(
        "  hub subscriber, all: {:.0} B, {:.2} blocks",
        per(subscriber.bytes, n),
        per(subscriber.blocks, n)
    );
    eprintln!(
        "  echo connection (the connection and its session): {:.0} B, {:.2} blocks; {}",
        per(connection.bytes, n),
        per(connection.blocks, n),
        connection.classes(n)
    );
    eprintln!(
        "  the hub's part (subscriber less connection): {:.0} B, {:.2} blocks; {}",
        per(app.bytes, n),
        per(app.blocks, n),
        app.classes(n)
    );
    eprintln!(
        "    of which the hub crate's registration and topic list (alone): {:.0} B; {}",
        per(registration.bytes, n),
        registration.classes(n)
    );
    eprintln!(
        "    of which the presence roster (alone): {:.0} B; {}",
        per(presence.bytes, n),
        presence.classes(n)
    );
    assert!(subscriber.bytes > 0 && connection.bytes > 0);
    assert!(registration.bytes > 0 && presence.bytes > 0);
    // An idle subscriber's own blocks, past the first half: none (its
    // state lives in its maps' slots, and the member it is present as is
    // its connection's number). A name made for its member, its topic
    // name, its boxed state or a queue kept after its event would each
    // add one a subscriber.
    let blocks = per(more.blocks, n - n / 2);
    eprintln!("  heap blocks the second half's subscribers added, a subscriber: {blocks:.2}");
    assert!(blocks < 0.5, "{blocks:.2} heap blocks a subscriber");
}
