//! What one node reads of what the others share over a bus (connection
//! counts, revocations: `tether_bus::wire`), from any bytes: Ok or an
//! error, never a panic; what decodes encodes back to what decodes the
//! same.
#![no_main]

use std::collections::HashMap;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use tether_bus::wire;

fuzz_target!(|data: &[u8]| {
    let mut counts = HashMap::new();
    counts.insert(Arc::from("before"), 1);
    match wire::decode_counts(data, &mut counts) {
        Ok(()) => {
            counts.remove("before");
            let list: Vec<(Arc<str>, usize)> = counts.iter().map(|(s, c)| (s.clone(), *c)).collect();
            let (bytes, left_out) = wire::encode_counts(&list);
            assert_eq!(left_out, 0);
            let mut again = HashMap::new();
            wire::decode_counts(&bytes, &mut again).expect("what was encoded decodes");
            assert_eq!(again, counts);
        }
        // Refused whole: nothing was added.
        Err(_) => assert_eq!(counts.len(), 1),
    }
    if let Ok((entry, until)) = wire::decode_revocation(data) {
        let bytes = wire::encode_revocation(&entry, until).expect("what was read can be written");
        assert_eq!(wire::decode_revocation(&bytes), Ok((entry, until)));
    }
});
