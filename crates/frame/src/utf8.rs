//! Incremental UTF-8 validation across frame and fragment boundaries.

use crate::error::Error;

/// Validates UTF-8 that arrives in pieces.
///
/// Each piece is checked as it comes, so an invalid text message is refused
/// at the first byte that can no longer start or continue a valid sequence,
/// before the rest of the message arrives (Autobahn's 6.4.x cases test
/// exactly this). A character split between pieces is carried over: at most
/// three bytes are held between calls.
///
/// Bulk checking uses the standard library's validator, which skips ASCII a
/// word at a time and checks every lead byte's allowed second-byte range (so
/// `F4 90`, past U+10FFFF, or `ED A0`, a surrogate, fail at once); with the
/// `simd` feature, `simdutf8`'s vectorised validator, which reports the same
/// two things (how far the input is valid, and whether it stops in a
/// sequence that could still complete), several times faster.
///
/// ```
/// use tether_frame::Utf8Validator;
/// let mut v = Utf8Validator::new();
/// let euro = "€".as_bytes(); // E2 82 AC
/// v.feed(&euro[..1])?;
/// v.feed(&euro[1..])?;
/// v.finish()?;
/// assert!(v.feed(b"\xed\xa0").is_err()); // a surrogate can never become valid
/// # Ok::<(), tether_frame::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// The start of an unfinished character: at most 3 bytes, since 4
    /// would finish it.
    pending: [u8; 3],
    pending_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub const fn new() -> Utf8Validator {
        Utf8Validator {
            pending: [0; 3],
            pending_len: 0,
        }
    }

    /// Checks the next piece. An error means the text is invalid whatever
    /// follows; the validator must then be [`reset`](Self::reset) before
    /// reuse.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        if self.pending_len > 0 {
            let pending = self
                .pending
                .get(..usize::from(self.pending_len))
                .unwrap_or_default();
            let want = pending
                .first()
                .map_or(0, |&b| sequence_len(b))
                .saturating_sub(pending.len());
            let (piece, rest) = bytes.split_at_checked(want).unwrap_or((bytes, &[]));
            let mut seq = [0; 4];
            for (slot, &byte) in seq.iter_mut().zip(pending.iter().chain(piece)) {
                *slot = byte;
            }
            let len = pending.len() + piece.len();
            match core::str::from_utf8(seq.get(..len).unwrap_or_default()) {
                Ok(_) => {
                    self.pending_len = 0;
                    bytes = rest;
                }
                Err(e) if e.error_len().is_some() => return Err(Error::InvalidUtf8),
                Err(_) => {
                    // Still a valid prefix (so shorter than 4 bytes), and
                    // the piece is used up.
                    for (slot, &byte) in self.pending.iter_mut().zip(&seq) {
                        *slot = byte;
                    }
                    self.pending_len = u8::try_from(len).map_err(|_| Error::InvalidUtf8)?;
                    return Ok(());
                }
            }
        }
        match validate(bytes) {
            Ok(()) => Ok(()),
            Err(Invalid { complete: true, .. }) => Err(Error::InvalidUtf8),
            Err(Invalid { valid_up_to, .. }) => {
                // The input ends inside a sequence that is valid so far:
                // keep it for the next piece.
                // At most 3 bytes: a longer prefix would be complete.
                let tail = bytes.get(valid_up_to..).unwrap_or_default();
                let Some(kept) = self.pending.get_mut(..tail.len()) else {
                    return Err(Error::InvalidUtf8);
                };
                kept.copy_from_slice(tail);
                self.pending_len = u8::try_from(tail.len()).map_err(|_| Error::InvalidUtf8)?;
                Ok(())
            }
        }
    }

    /// Ends the text: an error if it stops inside a character. Leaves the
    /// validator ready for the next text either way.
    pub fn finish(&mut self) -> Result<(), Error> {
        let complete = self.pending_len == 0;
        self.reset();
        if complete { Ok(()) } else { Err(Error::InvalidUtf8) }
    }

    /// Whether the text so far ends on a character boundary.
    pub const fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    /// Forgets any partial character.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }
}

/// Where bulk validation stopped.
struct Invalid {
    /// The input is valid up to here.
    valid_up_to: usize,
    /// The bytes there can never become valid (rather than ending early).
    complete: bool,
}

#[cfg(not(feature = "simd"))]
fn validate(bytes: &[u8]) -> Result<(), Invalid> {
    core::str::from_utf8(bytes).map(drop).map_err(|e| Invalid {
        valid_up_to: e.valid_up_to(),
        complete: e.error_len().is_some(),
    })
}

#[cfg(feature = "simd")]
fn validate(bytes: &[u8]) -> Result<(), Invalid> {
    simdutf8::compat::from_utf8(bytes).map(drop).map_err(|e| Invalid {
        valid_up_to: e.valid_up_to(),
        complete: e.error_len().is_some(),
    })
}

/// `bytes` as text if they are valid UTF-8, checked in one pass: with the
/// `simd` feature by `simdutf8` from 64 bytes on, otherwise
/// (and below that) by the standard library. For a text that arrived
/// whole; [`Utf8Validator`] is for one that comes in pieces.
///
/// ```
/// assert_eq!(tether_frame::str_from_utf8("grüße".as_bytes()), Some("grüße"));
/// assert_eq!(tether_frame::str_from_utf8(b"\xed\xa0\x80"), None);
/// ```
pub fn str_from_utf8(bytes: &[u8]) -> Option<&str> {
    #[cfg(feature = "simd")]
    if bytes.len() >= SIMD_FROM {
        return simdutf8::basic::from_utf8(bytes).ok();
    }
    core::str::from_utf8(bytes).ok()
}

/// The length from which [`str_from_utf8`] hands a text to `simdutf8`
/// (with the `simd` feature). Below one 64-byte block, simdutf8 falls back
/// to the standard library's check itself, after choosing an
/// implementation: about 80 instructions per call more than asking the
/// standard library directly (callgrind, 20-byte messages through
/// tether-tokio's echo).
#[cfg(feature = "simd")]
const SIMD_FROM: usize = 64;

/// The length of the sequence a valid lead byte starts. Only called on
/// bytes the standard validator accepted as the start of a sequence.
const fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn a_validator_stays_small_and_carries_a_four_byte_character_across_every_split() {
        // Every WebSocket connection holds one.
        assert_eq!(core::mem::size_of::<Utf8Validator>(), 4);
        let rocket = "🚀".as_bytes();
        for first in 0..=rocket.len() {
            for second in first..=rocket.len() {
                let mut v = Utf8Validator::new();
                v.feed(&rocket[..first]).expect("a prefix");
                v.feed(&rocket[first..second]).expect("a prefix");
                v.feed(&rocket[second..]).expect("the rest");
                assert!(v.is_complete());
                v.finish().expect("whole");
            }
        }
    }

    #[test]
    fn a_whole_text_is_checked_as_the_standard_library_does() {
        let euros = "€".repeat(40);
        let cases: [&[u8]; 10] = [
            b"",
            b"plain ascii, long enough to take the vector path of a validator: 0123456789abcdef",
            "grüße, 東京, 🚀".as_bytes(),
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"ends inside a character \xe2\x82",
            b"\xff",
            b"valid then \x80 a stray continuation byte",
            euros.as_bytes(),
        ];
        for bytes in cases {
            assert_eq!(
                str_from_utf8(bytes),
                core::str::from_utf8(bytes).ok(),
                "{bytes:x?}"
            );
        }
        // Either side of the length where the check changes hands.
        for len in 60..70 {
            for bad in [len - 1, len / 2, 0] {
                let mut bytes = vec![b'a'; len];
                assert_eq!(str_from_utf8(&bytes), core::str::from_utf8(&bytes).ok(), "{len}");
                bytes[bad] = 0xff;
                assert_eq!(str_from_utf8(&bytes), None, "{len} bad at {bad}");
            }
        }
    }

    /// Feeds `bytes` in pieces of `size` and reports the byte offset of the
    /// first failing piece's end, or the result of `finish`.
    fn run(bytes: &[u8], size: usize) -> Result<(), usize> {
        let mut v = Utf8Validator::new();
        let mut fed = 0;
        for piece in bytes.chunks(size.max(1)) {
            fed += piece.len();
            v.feed(piece).map_err(|_| fed)?;
        }
        v.finish().map_err(|_| usize::MAX)
    }

    #[test]
    fn agrees_with_std_on_every_split() {
        let samples: &[&[u8]] = &[
            b"",
            b"hello",
            "κόσμε".as_bytes(),
            "\u{10FFFF}\u{FFFF}\u{E000}".as_bytes(),
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xf0\x9f\x98",
            b"abc\xff",
            b"\xf8\x88\x80\x80\x80",
        ];
        for &s in samples {
            let want = core::str::from_utf8(s).is_ok();
            for size in 1..=s.len().max(1) {
                assert_eq!(run(s, size).is_ok(), want, "{s:x?} in pieces of {size}");
            }
        }
    }

    #[test]
    fn fails_at_the_first_impossible_byte() {
        // Autobahn 6.4.1-style: a lead byte and one continuation that
        // already exceed U+10FFFF must fail when that byte arrives.
        let mut v = Utf8Validator::new();
        v.feed(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5").unwrap();
        assert!(v.feed(b"\xf4").is_ok());
        assert_eq!(v.feed(b"\x90"), Err(Error::InvalidUtf8));

        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xed\xa0"), Err(Error::InvalidUtf8), "surrogate half");
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xc1"), Err(Error::InvalidUtf8), "overlong lead");
    }

    #[test]
    fn every_split_of_every_char_class() {
        let text: Vec<u8> = "a\u{7f}\u{80}\u{7ff}\u{800}\u{d7ff}\u{e000}\u{ffff}\u{10000}\u{10ffff}"
            .as_bytes()
            .to_vec();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                let mut v = Utf8Validator::new();
                v.feed(&text[..a]).unwrap();
                v.feed(&text[a..b]).unwrap();
                v.feed(&text[b..]).unwrap();
                v.finish().unwrap();
            }
        }
    }

    #[test]
    fn truncated_text_fails_at_finish_and_resets() {
        let mut v = Utf8Validator::new();
        v.feed(b"\xe2\x82").unwrap();
        assert!(!v.is_complete());
        assert_eq!(v.finish(), Err(Error::InvalidUtf8));
        v.feed(b"ok").unwrap();
        assert_eq!(v.finish(), Ok(()));
    }
}
