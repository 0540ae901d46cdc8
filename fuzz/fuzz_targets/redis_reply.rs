//! Arbitrary trees of Redis replies (`redis::Value`, built from the
//! bytes), read as every reply the Redis bridge parses (stream entries
//! into the hub's events, publish answers, stream info, a sentinel's
//! master address and a `ROLE`): never a panic, an event keeps its entry's
//! id, and a master address taken is one a URL can hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis::Value;

/// How deep a tree goes, and how many values it holds at most.
const MAX_DEPTH: usize = 6;
const MAX_VALUES: usize = 512;

struct Bytes<'a> {
    data: &'a [u8],
    values: usize,
}

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.data.split_first() else {
            return 0;
        };
        self.data = rest;
        first
    }

    /// Up to 255 bytes, or (one in eight) a stream id, an id-like or a
    /// field name the bridge looks for, so that the parsers' paths are
    /// reached quickly.
    fn text(&mut self) -> Vec<u8> {
        let kind = self.byte();
        if kind % 8 == 0 {
            const WORDS: [&str; 15] = [
                "event",
                "data",
                "key",
                "length",
                "entries-added",
                "max-deleted-entry-id",
                "last-generated-id",
                "t:fuzz",
                "t:{fuzz}",
                "1-1",
                "18446744073709551615-0",
                "# Server\r\nrun_id:abc\r\n",
                "master",
                "6379",
                "::1",
            ];
            return WORDS[usize::from(kind / 8) % WORDS.len()].as_bytes().to_vec();
        }
        let len = usize::from(self.byte()).min(self.data.len());
        let (text, rest) = self.data.split_at(len);
        self.data = rest;
        text.to_vec()
    }

    fn value(&mut self, depth: usize) -> Value {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Value::Nil;
        }
        let kind = self.byte();
        let nested = depth < MAX_DEPTH;
        match kind % 10 {
            0 => Value::Nil,
            1 => Value::Int(i64::from(self.byte() as i8) * i64::from(self.byte())),
            2 | 3 => Value::BulkString(self.text()),
            4 => Value::SimpleString(String::from_utf8_lossy(&self.text()).into_owned()),
            5 => Value::Okay,
            6 if nested => {
                let n = usize::from(self.byte() % 8);
                Value::Array((0..n).map(|_| self.value(depth + 1)).collect())
            }
            7 if nested => {
                let n = usize::from(self.byte() % 6);
                Value::Map(
                    (0..n)
                        .map(|_| (self.value(depth + 1), self.value(depth + 1)))
                        .collect(),
                )
            }
            8 => Value::VerbatimString {
                format: redis::VerbatimFormat::Text,
                text: String::from_utf8_lossy(&self.text()).into_owned(),
            },
            _ => Value::Boolean(kind & 0x80 != 0),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut bytes = Bytes { data, values: 0 };
    while !bytes.data.is_empty() {
        let value = bytes.value(0);
        let _ = tether_redis::fuzz::replies(&value);
        if bytes.values > MAX_VALUES {
            break;
        }
    }
});
