//! The encoder: copies of the source found through a hash of its
//! 16-byte blocks, the bytes between them sent as they are.
//!
//! The output is Fossil's: the target's length and `\n`; then commands,
//! `COUNT@OFFSET,` (copy from the source) and `COUNT:BYTES` (insert);
//! last `CHECKSUM;`, every number in base-64 digits.

use alloc::vec;
use alloc::vec::Vec;

use crate::checksum::checksum;
use crate::int;

/// The block a copy is found from: shorter copies are not worth their
/// command.
const BLOCK: usize = 16;

/// [`BLOCK`] as the rolling hash counts.
const BLOCK_WEIGHT: u16 = 16;

/// How many source blocks with the same hash are tried at one place of
/// the target: a bound on the work a repetitive source can cause.
const MAX_TRIES: usize = 64;

/// No block in a hash chain.
const NONE: u32 = u32::MAX;

/// A delta that turns `source` into `target`, for [`crate::apply`].
///
/// The work is linear in the two lengths (each place of the target tries
/// a bounded number of source blocks); a target with little in common
/// with the source comes out a little longer than itself.
///
/// ```
/// let delta = tether_delta::encode(b"the quick brown fox jumps over the lazy dog", b"the quick brown cat jumps over the lazy dog");
/// assert_eq!(tether_delta::apply(b"the quick brown fox jumps over the lazy dog", &delta, 100)?, b"the quick brown cat jumps over the lazy dog");
/// # Ok::<(), tether_delta::Error>(())
/// ```
pub fn encode(source: &[u8], target: &[u8]) -> Vec<u8> {
    Encoder {
        source,
        target,
        text: false,
    }
    .run()
}

/// [`encode`] for text: every copy starts and ends on a character
/// boundary of `target`, so the bytes inserted are whole characters and
/// the delta is UTF-8 itself (it can travel in a JSON string).
///
/// ```
/// let (old, new) = ("prix: 10 € — stable, rien à signaler", "prix: 12 € — stable, rien à signaler");
/// let delta = tether_delta::encode_str(old, new);
/// let built = tether_delta::apply(old.as_bytes(), delta.as_bytes(), 1000)?;
/// assert_eq!(built, new.as_bytes());
/// # Ok::<(), tether_delta::Error>(())
/// ```
pub fn encode_str(source: &str, target: &str) -> alloc::string::String {
    let delta = Encoder {
        source: source.as_bytes(),
        target: target.as_bytes(),
        text: true,
    }
    .run();
    // Numbers and command letters are ASCII, and every insert is a run of
    // whole characters of `target`: the delta is UTF-8. Checked rather
    // than assumed, at the cost of one pass.
    alloc::string::String::from_utf8(delta).unwrap_or_else(|_| {
        let mut whole = Vec::new();
        write_whole(&mut whole, target.as_bytes());
        alloc::string::String::from_utf8(whole).unwrap_or_default()
    })
}

/// A delta that inserts all of `target`.
fn write_whole(out: &mut Vec<u8>, target: &[u8]) {
    int::write(out, target.len() as u64);
    out.push(b'\n');
    insert(out, target);
    int::write(out, u64::from(checksum(target)));
    out.push(b';');
}

fn insert(out: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.is_empty() {
        int::write(out, bytes.len() as u64);
        out.push(b':');
        out.extend_from_slice(bytes);
    }
}

fn copy(out: &mut Vec<u8>, count: usize, offset: usize) {
    int::write(out, count as u64);
    out.push(b'@');
    int::write(out, offset as u64);
    out.push(b',');
}

/// The rolling hash of a [`BLOCK`]-byte window (an Adler-like pair of
/// sums): moved one byte along in constant time.
#[derive(Clone, Copy)]
struct Rolling {
    a: u16,
    b: u16,
}

impl Rolling {
    fn new(window: &[u8]) -> Rolling {
        let (mut a, mut b) = (0u16, 0u16);
        for &byte in window {
            a = a.wrapping_add(u16::from(byte));
            b = b.wrapping_add(a);
        }
        Rolling { a, b }
    }

    /// Drops `out` (the window's first byte) and takes `inn` at its end.
    fn roll(&mut self, out: u8, inn: u8) {
        self.a = self.a.wrapping_sub(u16::from(out)).wrapping_add(u16::from(inn));
        self.b = self
            .b
            .wrapping_sub(BLOCK_WEIGHT.wrapping_mul(u16::from(out)))
            .wrapping_add(self.a);
    }

    fn value(self) -> u32 {
        u32::from(self.a) | (u32::from(self.b) << 16)
    }
}

struct Encoder<'a> {
    source: &'a [u8],
    target: &'a [u8],
    /// Copies only between character boundaries of the target.
    text: bool,
}

/// The best copy found at one place of the target.
#[derive(Clone, Copy, Default)]
struct Copy {
    /// Where it starts in the target and in the source, and its length.
    at: usize,
    from: usize,
    len: usize,
}

impl Encoder<'_> {
    fn run(&self) -> Vec<u8> {
        let (source, target) = (self.source, self.target);
        let mut out = Vec::with_capacity(target.len() / 4 + 16);
        if source.len() < BLOCK || target.len() < BLOCK {
            write_whole(&mut out, target);
            return out;
        }
        int::write(&mut out, target.len() as u64);
        out.push(b'\n');
        // The source's blocks by hash, each bucket a chain through `next`.
        let blocks = source.len() / BLOCK;
        let buckets = blocks.next_power_of_two();
        let mut heads = vec![NONE; buckets];
        let mut next = vec![NONE; blocks];
        for (block, chunk) in source.chunks_exact(BLOCK).enumerate() {
            // Past 2³² blocks (64 GiB), the rest of the source is not indexed.
            let Ok(number) = u32::try_from(block) else { break };
            let bucket = Rolling::new(chunk).value() as usize & (buckets - 1);
            if let (Some(head), Some(link)) = (heads.get_mut(bucket), next.get_mut(block)) {
                *link = *head;
                *head = number;
            }
        }
        // `base`: where the bytes not yet written start in the target.
        let mut base = 0;
        while base + BLOCK <= target.len() {
            let Some(found) = self.find(base, &heads, &next) else {
                break;
            };
            insert(&mut out, target.get(base..found.at).unwrap_or_default());
            copy(&mut out, found.len, found.from);
            base = found.at + found.len;
        }
        insert(&mut out, target.get(base..).unwrap_or_default());
        int::write(&mut out, u64::from(checksum(target)));
        out.push(b';');
        out
    }

    /// The first copy worth its command at or after `base`, the longest
    /// among the blocks tried there.
    fn find(&self, base: usize, heads: &[u32], next: &[u32]) -> Option<Copy> {
        let (source, target) = (self.source, self.target);
        let mut window = base;
        let mut hash = Rolling::new(target.get(window..window + BLOCK)?);
        loop {
            let mut best: Option<Copy> = None;
            let bucket = hash.value() as usize & (heads.len() - 1);
            let mut block = heads.get(bucket).copied().unwrap_or(NONE);
            for _ in 0..MAX_TRIES {
                if block == NONE {
                    break;
                }
                let from = block as usize * BLOCK;
                block = next.get(block as usize).copied().unwrap_or(NONE);
                // Forward from the window, backward into the bytes not
                // yet written.
                let ahead = common_prefix(source.get(from..)?, target.get(window..)?);
                if ahead < BLOCK {
                    continue;
                }
                let behind = common_suffix(source.get(..from)?, target.get(base..window)?);
                let candidate = self.aligned(Copy {
                    at: window - behind,
                    from: from - behind,
                    len: behind + ahead,
                });
                let Some(candidate) = candidate else { continue };
                let cost = int::len((candidate.at - base) as u64)
                    + int::len(candidate.len as u64)
                    + int::len(candidate.from as u64)
                    + 3;
                if candidate.len > cost && best.is_none_or(|b| candidate.len > b.len) {
                    best = Some(candidate);
                }
            }
            if best.is_some() {
                return best;
            }
            let (Some(&out), Some(&inn)) = (target.get(window), target.get(window + BLOCK)) else {
                return None;
            };
            hash.roll(out, inn);
            window += 1;
        }
    }

    /// `copy` shrunk to start and end on character boundaries of the
    /// target, for text; `None` if nothing is left.
    fn aligned(&self, copy: Copy) -> Option<Copy> {
        if !self.text {
            return Some(copy);
        }
        let boundary = |i: usize| self.target.get(i).is_none_or(|b| (*b as i8) >= -0x40);
        let mut start = copy.at;
        let mut end = copy.at + copy.len;
        while start < end && !boundary(start) {
            start += 1;
        }
        while end > start && !boundary(end) {
            end -= 1;
        }
        (end > start).then(|| Copy {
            at: start,
            from: copy.from + (start - copy.at),
            len: end - start,
        })
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply;

    #[test]
    fn the_format_is_fossils() {
        // Too short for a copy: one insert, then the checksum.
        assert_eq!(encode(b"", b"hi"), b"2\n2:hi1dQG00;");
        // A shared run becomes a copy: `c@0,` copies 39 bytes from 0,
        // `2:!!` inserts two.
        let old = b"abcdefghijklmnopqrstuvwxyz0123456789ABC";
        let mut new = old.to_vec();
        new.extend_from_slice(b"!!");
        let delta = encode(old, &new);
        let text = core::str::from_utf8(&delta).unwrap();
        assert!(text.starts_with("e\nc@0,2:!!"), "{text}");
        assert!(text.ends_with(';'));
        assert_eq!(apply(old, &delta, 100).unwrap(), new);
    }

    #[test]
    fn a_small_change_in_a_large_object_is_a_small_delta() {
        let old: alloc::string::String = (0..100).map(|i| alloc::format!("\"field{i}\":{i},")).collect();
        let new = old.replace("\"field50\":50", "\"field50\":51");
        let delta = encode_str(&old, &new);
        assert!(delta.len() < 40, "{} bytes: {delta}", delta.len());
        assert_eq!(
            apply(old.as_bytes(), delta.as_bytes(), 1 << 20).unwrap(),
            new.as_bytes()
        );
    }

    #[test]
    fn text_copies_never_split_a_character() {
        // Multi-byte characters where the copies' edges would fall.
        let old = "ééééééééééééééééééééééééééééééééééééééééé";
        let new = "ééééééééééééééééééééééèéééééééééééééééééé";
        let delta = encode_str(old, new);
        assert_eq!(
            apply(old.as_bytes(), delta.as_bytes(), 1000).unwrap(),
            new.as_bytes()
        );
        let bytes = encode(old.as_bytes(), new.as_bytes());
        // The byte encoder may split one (it shares the é's first byte);
        // the text one may not, and is still a copy, not the whole.
        assert!(delta.len() < new.len(), "{delta}");
        assert!(bytes.len() <= delta.len());
    }
}
