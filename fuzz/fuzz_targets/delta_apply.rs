//! Arbitrary bytes as a delta (the first byte: how much of the rest is
//! the base), applied as the browser client or any peer would apply one
//! from the network: Ok or an error, never a panic, never more memory
//! than the limit; what applies has the declared length. The same bytes
//! split as two texts: their delta applies to its source, and to a
//! source with a byte changed it is an error or the same target.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// The applier's output limit here.
const LIMIT: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let split = (usize::from(first) * rest.len() / 255).min(rest.len());
    let (base, delta) = rest.split_at(split);
    if let Ok(built) = tether_delta::apply(base, delta, LIMIT) {
        assert!(built.len() <= LIMIT);
        assert_eq!(Ok(built.len() as u64), tether_delta::target_len(delta));
    }

    let (source, target) = rest.split_at(split);
    let encoded = tether_delta::encode(source, target);
    assert_eq!(
        tether_delta::apply(source, &encoded, target.len()).as_deref(),
        Ok(target)
    );
    if let (Ok(source), Ok(target)) = (std::str::from_utf8(source), std::str::from_utf8(target)) {
        let text = tether_delta::encode_str(source, target);
        assert_eq!(
            tether_delta::apply(source.as_bytes(), text.as_bytes(), target.len()).as_deref(),
            Ok(target.as_bytes())
        );
    }
    if let Some(byte) = source.len().checked_sub(1) {
        let mut wrong = source.to_vec();
        wrong[byte / 2] ^= first | 1;
        match tether_delta::apply(&wrong, &encoded, target.len()) {
            Ok(built) => assert_eq!(built, target),
            Err(e) => assert_eq!(e, tether_delta::Error::ChecksumMismatch),
        }
    }
});
