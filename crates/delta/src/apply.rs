//! The applier: a delta from the network read with every number checked,
//! every copy inside its base, the output bounded, the checksum matched.

use alloc::vec::Vec;

use crate::Error;
use crate::checksum::checksum;
use crate::int;

/// The length of the target `delta` builds, as it declares it (the
/// first line), without applying it.
///
/// # Errors
///
/// [`Error::Malformed`] if the delta does not start with a length and
/// `\n`.
pub fn target_len(delta: &[u8]) -> Result<u64, Error> {
    match int::read(delta) {
        Some((len, [b'\n', ..])) => Ok(len),
        _ => Err(Error::Malformed),
    }
}

/// Builds the target of `delta` from `source`, the base it was made
/// from, refusing a target longer than `max_len` bytes before anything
/// is allocated for it.
///
/// Ok only if the commands build exactly the declared length from bytes
/// inside `source` and the result has the delta's checksum; trailing
/// bytes after the checksum are refused too. Memory used is at most the
/// declared length (at most `max_len`).
///
/// # Errors
///
/// The [`Error`] that says what did not hold.
pub fn apply(source: &[u8], delta: &[u8], max_len: usize) -> Result<Vec<u8>, Error> {
    let declared = target_len(delta)?;
    let len = usize::try_from(declared).map_err(|_| Error::TooLarge)?;
    if len > max_len {
        return Err(Error::TooLarge);
    }
    let (_, mut rest) = int::read(delta).ok_or(Error::Malformed)?;
    rest = rest.get(1..).ok_or(Error::Malformed)?;
    let mut out = Vec::with_capacity(len);
    loop {
        let (n, after) = int::read(rest).ok_or(Error::Malformed)?;
        let (&command, after) = after.split_first().ok_or(Error::Malformed)?;
        let count = usize::try_from(n).map_err(|_| Error::LengthMismatch)?;
        match command {
            b'@' => {
                let (offset, after) = int::read(after).ok_or(Error::Malformed)?;
                let after = after.strip_prefix(b",").ok_or(Error::Malformed)?;
                if count > len - out.len() {
                    return Err(Error::LengthMismatch);
                }
                let offset = usize::try_from(offset).map_err(|_| Error::CopyOutOfRange)?;
                let end = offset.checked_add(count).ok_or(Error::CopyOutOfRange)?;
                out.extend_from_slice(source.get(offset..end).ok_or(Error::CopyOutOfRange)?);
                rest = after;
            }
            b':' => {
                if count > len - out.len() {
                    return Err(Error::LengthMismatch);
                }
                let (bytes, after) = after.split_at_checked(count).ok_or(Error::Malformed)?;
                out.extend_from_slice(bytes);
                rest = after;
            }
            b';' => {
                if !after.is_empty() {
                    return Err(Error::Malformed);
                }
                if out.len() != len {
                    return Err(Error::LengthMismatch);
                }
                if u64::from(checksum(&out)) != n {
                    return Err(Error::ChecksumMismatch);
                }
                return Ok(out);
            }
            _ => return Err(Error::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    fn delta_of(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn hand_written_deltas() {
        let base = b"0123456789abcdef";
        // Copy 4 from 10, insert "XY", copy 2 from 0: "abcdXY01".
        let target = b"abcdXY01";
        let mut delta = delta_of("8\n4@A,2:XY2@0,");
        int::write(&mut delta, u64::from(checksum(target)));
        delta.push(b';');
        assert_eq!(apply(base, &delta, 100).unwrap(), target);
        assert_eq!(target_len(&delta), Ok(8));
    }

    #[test]
    fn a_delta_of_another_implementation_applies() {
        // Written by fossil-delta 2.0.0 (npm, the JavaScript implementation
        // Centrifugo's browser SDK uses), `createStringDelta(old, new)`.
        let old = r#"{"device":"pump-7","site":"north hall","firmware":"4.2.1","seq":41,"temperature":24.6,"status":"warm","note":"é ✓"}"#;
        let new = r#"{"device":"pump-7","site":"north hall","firmware":"4.2.1","seq":42,"temperature":24.7,"status":"ok","note":"é ✓"}"#;
        let theirs = "1p\n11@0,o:2,\"temperature\":24.7,\"status\":\"ok\",\"note\":\"é ✓\"}wOGrs;";
        assert_eq!(
            apply(old.as_bytes(), theirs.as_bytes(), 1000).unwrap(),
            new.as_bytes()
        );
        // And ours, the same edit: the same copy of the first 65 bytes.
        let ours = crate::encode_str(old, new);
        assert!(ours.starts_with("1p\n11@0,"), "{ours}");
        assert_eq!(
            apply(old.as_bytes(), ours.as_bytes(), 1000).unwrap(),
            new.as_bytes()
        );
    }

    #[test]
    fn every_broken_delta_is_an_error_that_says_why() {
        let base = b"0123456789abcdef";
        let good = encode(b"", b"hi");
        for (delta, error) in [
            (delta_of(""), Error::Malformed),
            (delta_of("2"), Error::Malformed),
            (delta_of("2\n"), Error::Malformed),
            (delta_of("2\n2:h"), Error::Malformed),
            (delta_of("2\n2?hi"), Error::Malformed),
            (delta_of("2\n2@0"), Error::Malformed),
            (delta_of("2\n2@0;"), Error::Malformed),
            (delta_of("2\n2@G,0;"), Error::CopyOutOfRange),
            (delta_of("2\n2@~~~~~~~~~~,0;"), Error::CopyOutOfRange),
            (delta_of("2\n3@0,0;"), Error::LengthMismatch),
            (delta_of("2\n3:hi!0;"), Error::LengthMismatch),
            (delta_of("2\n1:h0;"), Error::LengthMismatch),
            (delta_of("2\n2:hi0;"), Error::ChecksumMismatch),
            (delta_of("~~~~~~~~~~\n0;"), Error::TooLarge),
            (delta_of("11111111111111\n0;"), Error::Malformed),
        ] {
            assert_eq!(
                apply(base, &delta, 1000),
                Err(error),
                "{:?}",
                core::str::from_utf8(&delta)
            );
        }
        assert_eq!(apply(base, &good, 1000).unwrap(), b"hi");
        let mut trailing = good.clone();
        trailing.push(b'x');
        assert_eq!(apply(base, &trailing, 1000), Err(Error::Malformed));
        assert_eq!(apply(base, &good, 1), Err(Error::TooLarge));
    }

    #[test]
    fn a_changed_byte_of_the_base_is_caught() {
        let old: Vec<u8> = (0..400u32).map(|i| b'a' + (i * 31 % 26) as u8).collect();
        let mut new = old.clone();
        new[200] = b'!';
        let delta = encode(&old, &new);
        for i in 0..old.len() {
            let mut wrong = old.clone();
            wrong[i] ^= 0x20;
            match apply(&wrong, &delta, 1000) {
                // The byte the target replaced is never copied.
                Ok(built) => assert_eq!(built, new, "{i}"),
                Err(e) => assert_eq!(e, Error::ChecksumMismatch, "{i}"),
            }
        }
    }
}
