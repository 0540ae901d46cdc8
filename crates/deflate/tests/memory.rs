//! Memory held per connection in each mode, counted with a global allocator
//! that keeps a per-thread tally of live bytes. `cargo test -p
//! tether-deflate --test memory -- --nocapture` prints the table that
//! `benches/README.md` quotes; the assertions hold the shape of it.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;

use tether_deflate::{Deflate, Params, Role};
use tether_ws::{Config, Connection, Event};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(delta: isize) {
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

// SAFETY: every method forwards to the system allocator with the same
// arguments; the tally is a plain thread-local counter that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

const CHAT: &str = r#"{"type":"message","room":"general","user":"ada","text":"Has anyone tried the new build? The deploy finished at 10:42 and the dashboard looks fine.","ts":1718000000}"#;

/// Bytes a server connection still holds after it has received and sent
/// one compressed chat message, beyond what it held when new.
fn held_after_one_exchange(params: Option<Params>) -> isize {
    let now = Instant::now();
    let masks: tether_ws::MaskSource = Box::new(|| [9, 8, 7, 6]);
    // The client side, built first so that its state is not counted.
    let mut client = Connection::new(tether_ws::Role::Client(masks), Config::default(), now);
    if let Some(p) = params {
        client = client.with_extension(Box::new(Deflate::new(Role::Client, p).with_min_size(0)));
    }
    let mut wire = Vec::new();
    client.send_text(CHAT, &mut wire).unwrap();

    let before = live();
    let mut server = Connection::new(tether_ws::Role::Server, Config::default(), now);
    if let Some(p) = params {
        server = server.with_extension(Box::new(Deflate::new(Role::Server, p).with_min_size(0)));
    }
    let mut out = Vec::new();
    let (_, event) = server.receive(&wire, now, &mut out);
    let Some(Event::Message(message)) = event else {
        panic!("{event:?}")
    };
    server.send(&message, &mut out).unwrap();
    assert_eq!(out[0] & 0x40 != 0, params.is_some(), "compressed iff negotiated");
    drop((message, out));
    let held = live() - before;
    drop(server);
    held
}

#[test]
fn memory_per_connection() {
    let modes = [
        ("no extension", None),
        (
            "no context takeover either way (server default)",
            Some((true, true)),
        ),
        ("server keeps context, client does not", Some((false, true))),
        ("client keeps context, server does not", Some((true, false))),
        ("context takeover both ways", Some((false, false))),
    ];
    let params = |(s, c): (bool, bool)| Params {
        server_no_context_takeover: s,
        client_no_context_takeover: c,
        ..Params::default()
    };
    // Fill this thread's shared compression state and inflater first, and
    // measure what they cost once per thread.
    let before = live();
    held_after_one_exchange(Some(params((true, true))));
    let shared = live() - before;

    let mut rows = Vec::new();
    for (name, mode) in modes {
        let held = held_after_one_exchange(mode.map(params));
        rows.push((name, held));
    }
    println!("shared per thread (one inflater, one hash table): {shared} bytes");
    for (name, held) in &rows {
        println!("{name}: {held} bytes per connection");
    }
    let base = rows[0].1;
    let [_, none, server_ctx, client_ctx, both] = [0, 1, 2, 3, 4].map(|i| rows[i].1 - base);
    // The Box<dyn Extension> and the extension's own fields only.
    assert!(none < 512, "no takeover: {none} bytes beyond a plain connection");
    // An inflater with a 32 KiB window, and a hash table for short
    // messages: no zlib-rs compressor (about 130 KiB) for them.
    assert!(
        (30_000..100_000).contains(&shared),
        "the shared state is an inflater and a small table: {shared}"
    );
    // A compressor with a 32 KiB window and an inflater with one.
    assert!(server_ctx > 200_000, "{server_ctx}");
    assert!((30_000..100_000).contains(&client_ctx), "{client_ctx}");
    assert!(both > server_ctx && both > client_ctx);
}
