//! What nodes exchange besides events — each node's open connections per
//! subject, and revoked tokens — in one encoding whatever the bus carries
//! it (a Redis string or sorted-set member, a NATS key-value entry).
//!
//! Sans-IO: values to bytes and bytes to values, nothing else. The bytes
//! come from other nodes (or whoever can write to the bus), so a decoder
//! takes any input: it is bounded ([`MAX_COUNTS_LEN`],
//! [`MAX_SUBJECT_LEN`], [`MAX_ENTRY_LEN`]), checks every number, and
//! refuses what is not one of its forms with a [`WireError`]; it never
//! panics and never keeps part of a value it refused.
//!
//! The forms, each led by its kind and version:
//!
//! - counts: `c1`, then for each subject ` COUNT LEN SUBJECT` (decimal
//!   numbers; `LEN` is the subject's length in bytes, so a subject may
//!   hold any character, spaces included): `c1 2 5 alice 1 3 bob`;
//! - a revocation: `r1 UNTIL ENTRY` (`UNTIL` in Unix seconds; the entry
//!   is the rest, 1 to [`MAX_ENTRY_LEN`] bytes): `r1 1800000000 jti:abc`.
//!
//! Version skew: the decoders also take the forms of the release before,
//! over Redis (counts as ` COUNT LEN SUBJECT` runs with no tag, a
//! revocation as `UNTIL:ENTRY`), so that nodes of both releases read each
//! other's; the nodes of the release before do not read these forms, so
//! during a rolling upgrade they count no connections of upgraded nodes
//! and miss the revocations those add. The old forms are read for this
//! release only. (The NATS bridge reads its old JSON values itself, for
//! the same one release.)
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use tether_bus::wire;
//!
//! let (bytes, left_out) = wire::encode_counts(&[(Arc::from("alice"), 2)]);
//! assert_eq!((&bytes[..], left_out), (&b"c1 2 5 alice"[..], 0));
//! let mut counts = HashMap::new();
//! wire::decode_counts(&bytes, &mut counts)?;
//! assert_eq!(counts.get("alice"), Some(&2));
//! assert!(wire::decode_counts(b"c1 2 99 alice", &mut counts).is_err());
//!
//! let bytes = wire::encode_revocation("jti:abc", 1_800_000_000)?;
//! assert_eq!(wire::decode_revocation(&bytes)?, ("jti:abc".to_owned(), 1_800_000_000));
//! # Ok::<(), wire::WireError>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::limits::add_count;

/// The longest counts value read or written (8 MiB: some 300 000
/// subjects of 16 bytes); a node with more leaves the rest out.
pub const MAX_COUNTS_LEN: usize = 8 << 20;

/// The longest subject in counts (longer ones are left out when writing
/// and refused when reading).
pub const MAX_SUBJECT_LEN: usize = 2048;

/// The longest revocation entry.
pub const MAX_ENTRY_LEN: usize = 2048;

/// The most digits a number may have (`u64::MAX` has 20).
const MAX_DIGITS: usize = 20;

/// Why bytes are not a value of this encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Longer than the bound of its kind.
    TooLong,
    /// Not led by a tag this release reads (another kind, or a newer
    /// version).
    UnknownForm,
    /// A number that is missing, not decimal, or too large.
    BadNumber,
    /// A subject or entry that is empty, too long, shorter than its
    /// length says, or not UTF-8.
    BadText,
    /// A separator that is not where the form puts one.
    BadSeparator,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::TooLong => "longer than its bound",
            WireError::UnknownForm => "not a form this release reads",
            WireError::BadNumber => "a number is missing, not decimal or too large",
            WireError::BadText => "a subject or entry is empty, too long, cut short or not UTF-8",
            WireError::BadSeparator => "a separator is missing",
        })
    }
}

impl std::error::Error for WireError {}

const COUNTS_TAG: &[u8] = b"c1";
const REVOCATION_TAG: &[u8] = b"r1 ";

/// A node's counts as bytes, and how many subjects were left out (empty
/// or longer than [`MAX_SUBJECT_LEN`], or past [`MAX_COUNTS_LEN`]).
pub fn encode_counts(counts: &[(Arc<str>, usize)]) -> (Vec<u8>, usize) {
    let mut out = COUNTS_TAG.to_vec();
    let mut left_out = 0;
    for (subject, count) in counts {
        let entry = format!(" {count} {} {subject}", subject.len());
        if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN || out.len() + entry.len() > MAX_COUNTS_LEN {
            left_out += 1;
            continue;
        }
        out.extend_from_slice(entry.as_bytes());
    }
    (out, left_out)
}

/// The counts in `bytes`, added into `into` (the counts of several
/// nodes add up, saturating). On an error nothing is added.
///
/// # Errors
///
/// `bytes` is not counts in this encoding or the release before's.
pub fn decode_counts(bytes: &[u8], into: &mut HashMap<Arc<str>, usize>) -> Result<(), WireError> {
    if bytes.len() > MAX_COUNTS_LEN {
        return Err(WireError::TooLong);
    }
    let mut read = Vec::new();
    if let Some(mut rest) = bytes.strip_prefix(COUNTS_TAG) {
        while !rest.is_empty() {
            rest = rest.strip_prefix(b" ").ok_or(WireError::BadSeparator)?;
            let (entry, after) = count_entry(rest)?;
            read.push(entry);
            rest = after;
        }
    } else if bytes.first().is_none_or(u8::is_ascii_digit) {
        // The release before's Redis form: entries back to back, no tag.
        let mut rest = bytes;
        while !rest.is_empty() {
            let (entry, after) = count_entry(rest)?;
            read.push(entry);
            rest = after;
        }
    } else {
        return Err(WireError::UnknownForm);
    }
    for (subject, count) in read {
        add_count(into, subject, count);
    }
    Ok(())
}

/// `COUNT LEN SUBJECT` at the start of `bytes`, and what follows.
fn count_entry(bytes: &[u8]) -> Result<((&str, usize), &[u8]), WireError> {
    let (count, rest) = number(bytes)?;
    let rest = rest.strip_prefix(b" ").ok_or(WireError::BadSeparator)?;
    let (len, rest) = number(rest)?;
    let rest = rest.strip_prefix(b" ").ok_or(WireError::BadSeparator)?;
    let len = usize::try_from(len).map_err(|_| WireError::BadText)?;
    if len == 0 || len > MAX_SUBJECT_LEN {
        return Err(WireError::BadText);
    }
    let subject = rest.get(..len).ok_or(WireError::BadText)?;
    let subject = std::str::from_utf8(subject).map_err(|_| WireError::BadText)?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    Ok(((subject, count), rest.get(len..).unwrap_or_default()))
}

/// A decimal number at the start of `bytes` (at least one digit, at
/// most [`MAX_DIGITS`], within `u64`), and what follows it.
fn number(bytes: &[u8]) -> Result<(u64, &[u8]), WireError> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > MAX_DIGITS {
        return Err(WireError::BadNumber);
    }
    let (digits, rest) = bytes.split_at_checked(digits).ok_or(WireError::BadNumber)?;
    let mut value: u64 = 0;
    for digit in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit - b'0')))
            .ok_or(WireError::BadNumber)?;
    }
    Ok((value, rest))
}

/// A revocation as bytes.
///
/// # Errors
///
/// [`WireError::BadText`]: the entry is empty or longer than
/// [`MAX_ENTRY_LEN`].
pub fn encode_revocation(entry: &str, until: u64) -> Result<Vec<u8>, WireError> {
    if entry.is_empty() || entry.len() > MAX_ENTRY_LEN {
        return Err(WireError::BadText);
    }
    let mut out = REVOCATION_TAG.to_vec();
    out.extend_from_slice(format!("{until} {entry}").as_bytes());
    Ok(out)
}

/// The `(entry, until)` of a revocation's bytes.
///
/// # Errors
///
/// `bytes` is not a revocation in this encoding or the release before's
/// Redis form.
pub fn decode_revocation(bytes: &[u8]) -> Result<(String, u64), WireError> {
    if bytes.len() > REVOCATION_TAG.len() + MAX_DIGITS + 1 + MAX_ENTRY_LEN {
        return Err(WireError::TooLong);
    }
    let (until, entry) = if let Some(rest) = bytes.strip_prefix(REVOCATION_TAG) {
        let (until, rest) = number(rest)?;
        (until, rest.strip_prefix(b" ").ok_or(WireError::BadSeparator)?)
    } else if bytes.first().is_some_and(u8::is_ascii_digit) {
        // The release before's Redis member: `UNTIL:ENTRY`.
        let (until, rest) = number(bytes)?;
        (until, rest.strip_prefix(b":").ok_or(WireError::BadSeparator)?)
    } else {
        return Err(WireError::UnknownForm);
    };
    if entry.is_empty() || entry.len() > MAX_ENTRY_LEN {
        return Err(WireError::BadText);
    }
    let entry = std::str::from_utf8(entry).map_err(|_| WireError::BadText)?;
    Ok((entry.to_owned(), until))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decoded(bytes: &[u8]) -> Result<HashMap<Arc<str>, usize>, WireError> {
        let mut counts = HashMap::new();
        decode_counts(bytes, &mut counts).map(|()| counts)
    }

    #[test]
    fn counts_of_both_releases_are_read() {
        let counts = decoded(b"c1 2 5 alice 1 7 a b 3 c 7 2 \xc3\xa9").unwrap();
        assert_eq!(counts.get("alice"), Some(&2));
        assert_eq!(counts.get("a b 3 c"), Some(&1));
        assert_eq!(counts.get("é"), Some(&7));
        assert_eq!(decoded(b"c1").unwrap(), HashMap::new());
        // The release before's Redis text.
        let old = decoded(b"2 5 alice1 3 bob").unwrap();
        assert_eq!(old.get("alice"), Some(&2));
        assert_eq!(old.get("bob"), Some(&1));
        assert_eq!(decoded(b"").unwrap(), HashMap::new());
        // Several nodes add up, without overflowing.
        let mut sum = HashMap::new();
        decode_counts(b"c1 3 5 alice", &mut sum).unwrap();
        decode_counts(b"c1 18446744073709551615 5 alice", &mut sum).unwrap();
        assert_eq!(sum.get("alice"), Some(&usize::MAX));
    }

    #[test]
    fn hostile_counts_are_refused_whole() {
        let long_subject = format!("c1 1 {} {}", MAX_SUBJECT_LEN + 1, "x".repeat(MAX_SUBJECT_LEN + 1));
        let too_long = vec![b'c'; MAX_COUNTS_LEN + 1];
        let cases: &[(&[u8], WireError)] = &[
            (b"c1 2 99 alice", WireError::BadText),
            (b"c1 2 0 ", WireError::BadText),
            (b"c1 2 5 alice ", WireError::BadNumber),
            (b"c1 x 1 a", WireError::BadNumber),
            (b"c1 -1 1 a", WireError::BadNumber),
            (b"c1 1  a", WireError::BadNumber),
            (b"c1 1 1a", WireError::BadSeparator),
            (b"c12 1 a", WireError::BadSeparator),
            (b"c1 99999999999999999999 1 a", WireError::BadNumber),
            (b"c1 1 99999999999999999999999 a", WireError::BadNumber),
            (b"c1 1 2 \xff\xfe", WireError::BadText),
            (b"c1 1 1 \xc3", WireError::BadText),
            (b"c2 1 1 a", WireError::UnknownForm),
            (b"[[\"a\",1]]", WireError::UnknownForm),
            (b"1 9 short", WireError::BadText),
            (long_subject.as_bytes(), WireError::BadText),
            (&too_long, WireError::TooLong),
        ];
        for (bytes, error) in cases {
            let mut into = HashMap::new();
            into.insert(Arc::from("kept"), 1);
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
            assert_eq!(decode_counts(bytes, &mut into), Err(*error), "{shown}");
            assert_eq!(into.len(), 1, "nothing added: {shown}");
        }
    }

    #[test]
    fn what_cannot_be_written_is_left_out_and_counted() {
        let counts = [
            (Arc::from(""), 1),
            (Arc::from("x".repeat(MAX_SUBJECT_LEN + 1)), 1),
            (Arc::from("ok"), 3),
        ];
        let (bytes, left_out) = encode_counts(&counts);
        assert_eq!((&bytes[..], left_out), (&b"c1 3 2 ok"[..], 2));
    }

    #[test]
    fn revocations_of_both_releases_are_read_and_hostile_ones_refused() {
        let bytes = encode_revocation("sub:1700000000:a.b c", 1_800_000_000).unwrap();
        assert_eq!(bytes, b"r1 1800000000 sub:1700000000:a.b c");
        assert_eq!(
            decode_revocation(&bytes),
            Ok(("sub:1700000000:a.b c".to_owned(), 1_800_000_000))
        );
        assert_eq!(
            decode_revocation(b"1700000000:jti:a:b"),
            Ok(("jti:a:b".to_owned(), 1_700_000_000))
        );
        assert_eq!(encode_revocation("", 1), Err(WireError::BadText));
        assert_eq!(
            encode_revocation(&"x".repeat(MAX_ENTRY_LEN + 1), 1),
            Err(WireError::BadText)
        );
        let long = format!("r1 1 {}", "x".repeat(MAX_ENTRY_LEN + 100));
        let cases: &[(&[u8], WireError)] = &[
            (b"r1 1 ", WireError::BadText),
            (b"r1 1", WireError::BadSeparator),
            (b"r1  jti:a", WireError::BadNumber),
            (b"r1 -1 jti:a", WireError::BadNumber),
            (b"r1 99999999999999999999 jti:a", WireError::BadNumber),
            (b"r1 1 \xff", WireError::BadText),
            (b"r2 1 jti:a", WireError::UnknownForm),
            (b"{\"entry\":\"a\",\"until\":1}", WireError::UnknownForm),
            (b"nope", WireError::UnknownForm),
            (b"", WireError::UnknownForm),
            (b"1:", WireError::BadText),
            (b"1 jti:a", WireError::BadSeparator),
            (long.as_bytes(), WireError::TooLong),
        ];
        for (bytes, error) in cases {
            assert_eq!(
                decode_revocation(bytes),
                Err(*error),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    proptest! {
        #[test]
        fn counts_round_trip(counts in prop::collection::hash_map("\\PC{1,40}", 0usize..usize::MAX, 0..40)) {
            let list: Vec<(Arc<str>, usize)> = counts.iter().map(|(s, c)| (Arc::from(s.as_str()), *c)).collect();
            let (bytes, left_out) = encode_counts(&list);
            prop_assert_eq!(left_out, 0);
            let read = decoded(&bytes).unwrap();
            let expected: HashMap<Arc<str>, usize> = list.into_iter().collect();
            prop_assert_eq!(read, expected);
        }

        #[test]
        fn revocations_round_trip(entry in "\\PC{1,200}", until in any::<u64>()) {
            let bytes = encode_revocation(&entry, until).unwrap();
            prop_assert_eq!(decode_revocation(&bytes), Ok((entry, until)));
        }

        #[test]
        fn any_bytes_decode_or_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            // What decodes (in either release's form) writes back as this
            // release's form, which decodes the same.
            if let Ok(counts) = decoded(&bytes) {
                let list: Vec<(Arc<str>, usize)> = counts.iter().map(|(s, c)| (s.clone(), *c)).collect();
                prop_assert_eq!(decoded(&encode_counts(&list).0), Ok(counts));
            }
            if let Ok((entry, until)) = decode_revocation(&bytes) {
                let again = encode_revocation(&entry, until).unwrap();
                prop_assert_eq!(decode_revocation(&again), Ok((entry, until)));
            }
        }

        #[test]
        fn counts_in_the_old_form_decode_as_in_the_new(
            counts in prop::collection::vec(("\\PC{1,20}", 0usize..1000), 0..10),
        ) {
            let mut old = Vec::new();
            for (subject, count) in &counts {
                old.extend_from_slice(format!("{count} {} {subject}", subject.len()).as_bytes());
            }
            let list: Vec<(Arc<str>, usize)> = counts.iter().map(|(s, c)| (Arc::from(s.as_str()), *c)).collect();
            prop_assert_eq!(decoded(&old), decoded(&encode_counts(&list).0));
        }
    }
}
