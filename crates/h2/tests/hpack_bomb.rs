//! The HPACK bomb costs the decoder little memory: a block of about 5 KB
//! that adds one 4000-byte entry and refers to it 1000 times (4 MB if
//! expanded) is refused under a 16 KiB header-list limit after a few
//! references, and every byte the decoder allocates on the way is counted.
//!
//! This file holds one test, so that no other test allocates while it
//! measures.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use tether_h2::hpack::{Decoder, Error};

/// Counts the bytes asked for, and forwards everything to the system
/// allocator.
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the arguments it was
// given, so `System`'s guarantees hold; counting has no effect on them.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc` or `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn bomb(value_len: usize, references: usize, huffman: bool) -> Vec<u8> {
    // Literal with incremental indexing, new name "x".
    let mut block = vec![0x40, 0x01, b'x'];
    let mut len = value_len;
    let mut value = vec![b'a'; value_len];
    if huffman {
        // '0' is 5 bits: 4000 of them in 2500 bytes.
        let mut bits = 0u64;
        let mut n = 0;
        let mut packed = Vec::new();
        for _ in 0..value_len {
            bits <<= 5;
            n += 5;
            while n >= 8 {
                n -= 8;
                packed.push((bits >> n) as u8);
            }
        }
        if n > 0 {
            packed.push(((bits << (8 - n)) as u8) | (0xff >> n));
        }
        value = packed;
        len = value.len();
    }
    // The length as a 7-bit prefix integer.
    let flag = if huffman { 0x80 } else { 0 };
    if len < 127 {
        block.push(flag | len as u8);
    } else {
        block.push(flag | 0x7f);
        let mut rest = len - 127;
        while rest >= 0x80 {
            block.push(0x80 | (rest & 0x7f) as u8);
            rest >>= 7;
        }
        block.push(rest as u8);
    }
    block.extend(value);
    // Index 62: the entry just added.
    block.extend(std::iter::repeat_n(0xbe, references));
    block
}

#[test]
fn the_hpack_bomb_is_refused_without_expanding() {
    for huffman in [false, true] {
        let block = bomb(4000, 1000, huffman);
        assert!(block.len() < 5100);
        let mut decoder = Decoder::new(4096).with_max_header_list_size(16 * 1024);

        let before = ALLOCATED.load(Ordering::Relaxed);
        let result = decoder.decode(&block);
        let allocated = ALLOCATED.load(Ordering::Relaxed) - before;

        assert_eq!(result.err(), Some(Error::HeaderListTooLarge));
        // The field and its table copy (4 KB each), three references to it
        // (12 KB) and the list's vector: under 32 KiB, against the 4 MB the
        // block describes.
        assert!(
            allocated < 32 * 1024,
            "{allocated} bytes allocated (huffman: {huffman})"
        );

        // The same block cut after three references is a valid list.
        let mut decoder = Decoder::new(4096).with_max_header_list_size(16 * 1024);
        let fields = decoder.decode(&block[..block.len() - 997]).unwrap();
        assert_eq!(fields.len(), 4);
        assert!(fields.iter().all(|f| f.value.len() == 4000));
    }
}
