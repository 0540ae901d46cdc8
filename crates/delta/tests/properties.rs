//! Round trips and wrong bases, for arbitrary inputs.

use proptest::prelude::*;
use tether_delta::{Error, apply, encode, encode_str};

/// A target made from the source by a few edits, as the hub's events are
/// (most of the time a delta is of something close).
fn edited() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (
        proptest::collection::vec(any::<u8>(), 0..2000),
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                0..20usize,
                proptest::collection::vec(any::<u8>(), 0..20),
            ),
            0..6,
        ),
    )
        .prop_map(|(source, edits)| {
            let mut target = source.clone();
            for (at, cut, put) in edits {
                let at = if target.is_empty() {
                    0
                } else {
                    at.index(target.len())
                };
                let end = (at + cut).min(target.len());
                target.splice(at..end, put);
            }
            (source, target)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_pairs_round_trip(a in proptest::collection::vec(any::<u8>(), 0..600), b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let delta = encode(&a, &b);
        prop_assert_eq!(apply(&a, &delta, b.len()).unwrap(), b);
    }

    #[test]
    fn edited_pairs_round_trip_and_shrink((a, b) in edited()) {
        let delta = encode(&a, &b);
        prop_assert_eq!(apply(&a, &delta, b.len()).unwrap(), b.clone());
        // Never much longer than the target itself.
        prop_assert!(delta.len() <= b.len() + 24, "{} > {}", delta.len(), b.len());
    }

    #[test]
    fn text_round_trips_as_text(a in "\\PC{0,300}", b in "\\PC{0,300}", keep in 0..300usize) {
        // Half the time, a target that shares much of the source.
        let b = if keep % 2 == 0 { format!("{}{b}", a.chars().take(keep).collect::<String>()) } else { b };
        let delta = encode_str(&a, &b);
        prop_assert_eq!(apply(a.as_bytes(), delta.as_bytes(), b.len()).unwrap(), b.into_bytes());
    }

    #[test]
    fn a_wrong_base_is_an_error_never_a_panic((a, b) in edited(), wrong in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let delta = encode(&a, &b);
        // Any base: an error or, where the copies read the same bytes, the
        // target itself; never a panic.
        if let Ok(built) = apply(&wrong, &delta, b.len()) {
            prop_assert_eq!(built, b.clone());
        }
    }

    #[test]
    fn a_changed_byte_in_what_a_copy_reads_is_always_caught((a, b) in edited(), at in any::<prop::sample::Index>(), flip in 1..=255u8) {
        let delta = encode(&a, &b);
        prop_assume!(!a.is_empty());
        let at = at.index(a.len());
        let mut wrong = a.clone();
        wrong[at] ^= flip;
        match apply(&wrong, &delta, b.len()) {
            Ok(built) => prop_assert_eq!(built, b, "the byte was not copied"),
            Err(e) => prop_assert_eq!(e, Error::ChecksumMismatch),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(base in proptest::collection::vec(any::<u8>(), 0..64), delta in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = apply(&base, &delta, 1 << 16);
    }
}
