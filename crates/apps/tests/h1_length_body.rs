//! A `Content-Length` request body arriving over many reads costs the
//! server work in proportion to the bytes each read brings, not to what
//! is already buffered: a body sent one byte per read is gathered with
//! O(body) bytes allocated (and so copied) in all, not O(body²).
//!
//! The count is of bytes the whole process allocates while the body
//! arrives, through a counting global allocator: each read is one byte,
//! paced by the server's `bytes_in` counter (a state, not a time), so the
//! count does not depend on how fast anything runs.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]

use tether_testkit as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use common::{HttpConn, TestServer, config};
use tether_server::{App, ConnId, Ctx, MessageRef, Reply, Request, Response, Route};

/// The system allocator, counting the bytes it hands out (a grown
/// buffer counts its new size: what a copy into it may move).
struct Counting;

static ALLOCATED: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call goes to `System` with the caller's own arguments;
// the counter is a side effect only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `POST /upload` answers with the length of the body it got and its
/// sum, so that the answer does not allocate in proportion to the body.
struct Sum;

impl App for Sum {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/upload" => Route::Handler(()),
            _ => Route::NotFound,
        }
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), _: MessageRef<'_>) {}

    fn on_request(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), _: &Request<'_>, body: &[u8]) -> Reply {
        let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
        Reply::Now(Response::text(200, format!("{} {sum}\n", body.len())))
    }
}

/// Waits until the server has read `total` bytes in all.
fn read_up_to(server: &TestServer, total: u64) {
    while server.stats().bytes_in < total {
        std::thread::yield_now();
    }
}

/// Sends a body of `len` bytes one byte per read on a new connection:
/// the bytes allocated meanwhile, once the answer is checked.
fn upload_byte_by_byte(server: &TestServer, len: usize) -> u64 {
    let mut conn = HttpConn::connect(server.addr);
    let body: Vec<u8> = (0..len).map(|i| b"0123456789abcdef"[i % 16]).collect();
    let head = format!("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n");
    let mut total = server.stats().bytes_in;
    conn.send(head.as_bytes());
    total += head.len() as u64;
    read_up_to(server, total);
    let before = ALLOCATED.load(Ordering::Relaxed);
    // Each byte is a read of its own: the next is sent once the server
    // has read this one.
    for byte in &body {
        conn.send(std::slice::from_ref(byte));
        total += 1;
        read_up_to(server, total);
    }
    let response = conn.response();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    let sum: u64 = body.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, format!("{len} {sum}\n").as_bytes());
    allocated
}

#[test]
fn a_body_sent_byte_by_byte_costs_its_length_not_its_square() {
    const BODY: usize = 16 * 1024;
    let server = TestServer::start(config(), Sum);
    let once = upload_byte_by_byte(&server, BODY);
    let twice = upload_byte_by_byte(&server, 2 * BODY);
    // Work in proportion to each read's bytes (gathering by doubling,
    // and whatever a read costs besides) doubles with the body; copying
    // what was buffered on every read, about len² / 2 bytes, would
    // quadruple.
    assert!(
        twice < 3 * once,
        "{once} bytes allocated for a body of {BODY} bytes, {twice} for twice that"
    );
    // And about len² / 2 would be 128 MiB for the smaller body.
    assert!(
        once < 64 * BODY as u64,
        "{once} bytes allocated for a body of {BODY} bytes"
    );
    server.shutdown();
}
