//! Encoding a cursor into a buffer that has room allocates nothing, and
//! decoding one allocates nothing at all: counted by this test binary's
//! allocator, on this thread only (and the file holds one test, so that
//! nothing else runs while it counts).

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tether_hub::{Cursor, EventId};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call goes to the system allocator unchanged; the count is
// a thread-local `Cell` with a const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: a pointer this allocator gave, with its layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: as given by the caller, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn encoding_into_a_reused_buffer_and_decoding_allocate_nothing() {
    let topics: Vec<String> = (0..100).map(|i| format!("room.{i}")).collect();
    let mut cursor = Cursor::new(&topics);
    let mut reader = Cursor::new(&topics);
    let mut out = Vec::new();
    cursor.encode(&mut out);
    let before = allocations();
    for round in 0..1_000u64 {
        for (i, p) in cursor.positions_mut().iter_mut().enumerate() {
            // Now and then a far id, for the longest encodings.
            let ms = if (round + i as u64).is_multiple_of(17) {
                u64::MAX - round
            } else {
                1_718_000_000_000 + round
            };
            *p = (!i.is_multiple_of(5)).then_some(EventId::new(ms, round * 31 + i as u64));
        }
        out.clear();
        cursor.encode(&mut out);
        reader.decode(&out).unwrap();
        assert_eq!(reader.positions(), cursor.positions());
    }
    assert_eq!(allocations() - before, 0);
}
