//! Arbitrary bytes as the cursor a client resumes a multi-topic stream
//! from (`Last-Event-ID`, a poll's `since`), for a list of 0 to 8 topics
//! chosen by the first byte: Ok or an error, never a panic, never more
//! memory than the list's positions; what decodes encodes back to the
//! same text. The same bytes as positions: encoded, they decode to
//! themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_hub::{Cursor, EventId};

const TOPICS: [&str; 8] = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"];

fuzz_target!(|data: &[u8]| {
    let Some((&first, text)) = data.split_first() else {
        return;
    };
    let list = &TOPICS[..usize::from(first % 9)];
    let mut cursor = Cursor::new(list);
    let before = cursor.clone();
    match cursor.decode(text) {
        Ok(()) => {
            let mut again = Vec::new();
            cursor.encode(&mut again);
            assert_eq!(again, text, "one spelling");
        }
        Err(_) => assert_eq!(cursor, before, "a refused cursor changes nothing"),
    }

    // Positions of every kind: 17 bytes each (a flag, ms, seq).
    let mut positions = Cursor::new(data.chunks(17).map(|_| "p"));
    for (slot, chunk) in positions.positions_mut().iter_mut().zip(data.chunks(17)) {
        let mut bytes = [0; 17];
        bytes[..chunk.len()].copy_from_slice(chunk);
        let ms = u64::from_le_bytes(bytes[1..9].try_into().unwrap());
        let seq = u64::from_le_bytes(bytes[9..17].try_into().unwrap());
        *slot = (bytes[0] & 1 == 1).then_some(EventId::new(ms, seq));
    }
    let mut text = Vec::new();
    positions.encode(&mut text);
    let mut back = Cursor::new(data.chunks(17).map(|_| "p"));
    match back.decode(&text) {
        Ok(()) => assert_eq!(back, positions),
        // Only a cursor of many far-apart positions is longer than the
        // limit a decoder reads.
        Err(_) => assert!(text.len() > tether_hub::MAX_CURSOR_LEN),
    }
});
