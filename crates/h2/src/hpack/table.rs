//! The static table (RFC 7541 Appendix A) and the dynamic table (section
//! 4), shared by the decoder and the encoder so that both evict alike.

use std::collections::VecDeque;

/// The per-entry overhead of section 4.1, also used by the header-list size
/// of RFC 9113 section 6.5.2.
pub(crate) const ENTRY_OVERHEAD: usize = 32;

/// RFC 7541 Appendix A; index 1 is the first element.
pub(crate) static STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// One dynamic table entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

impl Entry {
    /// Section 4.1: name and value lengths plus 32.
    pub(crate) fn size(&self) -> usize {
        entry_size(&self.name, &self.value)
    }
}

/// The size of a field or entry (section 4.1, RFC 9113 section 6.5.2),
/// saturating instead of wrapping.
pub(crate) fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len()
        .saturating_add(value.len())
        .saturating_add(ENTRY_OVERHEAD)
}

/// The dynamic table: newest entry first, its total size never above its
/// capacity (the maximum size of section 4.2, as last set by a size update).
/// Since each entry takes at least 32 bytes of that capacity, the number of
/// entries is bounded too.
#[derive(Debug, Clone)]
pub(crate) struct DynamicTable {
    entries: VecDeque<Entry>,
    size: usize,
    capacity: usize,
}

impl DynamicTable {
    pub(crate) fn new(capacity: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            capacity,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries newest first (dynamic index 62 first).
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// A dynamic entry by its position (0 is the newest).
    pub(crate) fn get(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    /// Section 4.3: a new maximum size evicts from the old end until the
    /// table fits.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict_to(capacity);
    }

    /// Section 4.4: evicts until the new entry fits, then adds a copy; an
    /// entry larger than the capacity empties the table and is not copied.
    pub(crate) fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name, value);
        if size > self.capacity {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.capacity - size);
        self.size += size;
        self.entries.push_front(Entry {
            name: name.to_vec(),
            value: value.to_vec(),
        });
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(old) => self.size -= old.size(),
                None => {
                    // Unreachable while size is the sum of the entries'
                    // sizes; reset rather than loop.
                    self.size = 0;
                }
            }
        }
    }
}

/// Where a field can be found in the tables, for the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// Name and value at this index.
    Full(usize),
    /// The name at this index.
    Name(usize),
    None,
}

/// Looks a field up in the static table and then the dynamic one, with
/// HPACK indices (static 1 to 61, dynamic from 62). A full match wins over
/// a name match; among equals, the lowest index wins.
pub(crate) fn find(dynamic: &DynamicTable, name: &[u8], value: &[u8]) -> Match {
    let mut name_at = None;
    for (i, &(n, v)) in STATIC.iter().enumerate() {
        if n == name {
            if v == value {
                return Match::Full(i + 1);
            }
            name_at.get_or_insert(i + 1);
        }
    }
    for (i, e) in dynamic.entries().enumerate() {
        if e.name == name {
            if e.value == value {
                return Match::Full(STATIC.len() + 1 + i);
            }
            name_at.get_or_insert(STATIC.len() + 1 + i);
        }
    }
    name_at.map_or(Match::None, Match::Name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, value: &str) -> Entry {
        Entry {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn the_static_table_has_the_rfc_s_anchors() {
        assert_eq!(STATIC[0], (&b":authority"[..], &b""[..]));
        assert_eq!(STATIC[1], (&b":method"[..], &b"GET"[..]));
        assert_eq!(STATIC[15], (&b"accept-encoding"[..], &b"gzip, deflate"[..]));
        assert_eq!(STATIC[60], (&b"www-authenticate"[..], &b""[..]));
    }

    #[test]
    fn entries_are_sized_and_evicted_oldest_first() {
        let mut t = DynamicTable::new(100);
        t.insert(b"a", b"b"); // 34
        t.insert(b"cc", b"dd"); // 36
        assert_eq!((t.len(), t.size()), (2, 70));
        t.insert(b"eee", b"f"); // 36: evicts "a"
        assert_eq!((t.len(), t.size()), (2, 72));
        assert_eq!(t.get(0), Some(&entry("eee", "f")));
        assert_eq!(t.get(1), Some(&entry("cc", "dd")));
        assert_eq!(t.get(2), None);
    }

    #[test]
    fn an_entry_exactly_the_capacity_fits() {
        let mut t = DynamicTable::new(34);
        t.insert(b"a", b"b");
        assert_eq!((t.len(), t.size()), (1, 34));
    }

    #[test]
    fn an_entry_too_large_empties_the_table() {
        let mut t = DynamicTable::new(64);
        t.insert(b"a", b"b");
        t.insert(b"0123456789", b"01234567890123456789012");
        assert_eq!((t.len(), t.size()), (0, 0));
    }

    #[test]
    fn shrinking_evicts_and_zero_clears() {
        let mut t = DynamicTable::new(4096);
        t.insert(b"a", b"b");
        t.insert(b"cc", b"dd");
        t.set_capacity(40);
        assert_eq!((t.len(), t.size(), t.capacity()), (1, 36, 40));
        t.set_capacity(0);
        assert_eq!((t.len(), t.size()), (0, 0));
        t.insert(b"a", b"b");
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn find_prefers_full_matches_and_low_indices() {
        let mut t = DynamicTable::new(4096);
        assert_eq!(find(&t, b":method", b"GET"), Match::Full(2));
        assert_eq!(find(&t, b":method", b"PUT"), Match::Name(2));
        assert_eq!(find(&t, b"x-new", b"1"), Match::None);
        t.insert(b"x-new", b"1");
        t.insert(b":method", b"PUT");
        assert_eq!(find(&t, b"x-new", b"1"), Match::Full(63));
        assert_eq!(find(&t, b"x-new", b"2"), Match::Name(63));
        assert_eq!(find(&t, b":method", b"PUT"), Match::Full(62));
    }
}
