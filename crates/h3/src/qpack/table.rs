//! The decoder's dynamic table (RFC 9204 §3.2): bounded by the capacity
//! the encoder sets, which is bounded by the one we advertised.

use std::collections::VecDeque;

use crate::error::Violation;

/// What an entry costs beside its name and value (§3.2.1).
pub(crate) const ENTRY_OVERHEAD: u64 = 32;

/// The size an entry with this name and value counts for.
pub(crate) fn entry_size(name: &[u8], value: &[u8]) -> u64 {
    let len = |s: &[u8]| u64::try_from(s.len()).unwrap_or(u64::MAX);
    len(name)
        .saturating_add(len(value))
        .saturating_add(ENTRY_OVERHEAD)
}

/// A dynamic table addressed by absolute index: the first entry inserted
/// is 0, and evicted entries are gone for good.
#[derive(Debug, Clone)]
pub(crate) struct DynamicTable {
    /// Oldest first.
    entries: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: u64,
    capacity: u64,
    max_capacity: u64,
    inserted: u64,
}

impl DynamicTable {
    /// An empty table of capacity 0 that the encoder may grow to
    /// `max_capacity`.
    pub(crate) fn new(max_capacity: u64) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            capacity: 0,
            max_capacity,
            inserted: 0,
        }
    }

    pub(crate) fn max_capacity(&self) -> u64 {
        self.max_capacity
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// How many entries were ever inserted (the Insert Count).
    pub(crate) fn inserted(&self) -> u64 {
        self.inserted
    }

    /// Set Dynamic Table Capacity (§4.3.1): refused above the maximum;
    /// entries are evicted until the table fits.
    pub(crate) fn set_capacity(&mut self, capacity: u64) -> Result<(), Violation> {
        if capacity > self.max_capacity {
            return Err(Violation::TableCapacityTooLarge {
                capacity,
                max: self.max_capacity,
            });
        }
        self.capacity = capacity;
        self.evict_to(capacity);
        Ok(())
    }

    fn evict_to(&mut self, limit: u64) {
        while self.size > limit {
            let Some((name, value)) = self.entries.pop_front() else {
                break;
            };
            self.size -= entry_size(&name, &value);
        }
    }

    /// Inserts an entry, evicting the oldest ones to make room (§3.2.2);
    /// an entry larger than the capacity is refused.
    pub(crate) fn insert(&mut self, name: Vec<u8>, value: Vec<u8>) -> Result<(), Violation> {
        let size = entry_size(&name, &value);
        if size > self.capacity {
            return Err(Violation::EntryTooLarge(size));
        }
        self.evict_to(self.capacity - size);
        self.size += size;
        self.entries.push_back((name, value));
        self.inserted += 1;
        Ok(())
    }

    /// The entry with absolute index `index`, if it was inserted and not
    /// evicted.
    pub(crate) fn get(&self, index: u64) -> Option<(&[u8], &[u8])> {
        let len = u64::try_from(self.entries.len()).ok()?;
        let dropped = self.inserted - len;
        let offset = index.checked_sub(dropped)?;
        let (name, value) = self.entries.get(usize::try_from(offset).ok()?)?;
        Some((name, value))
    }

    /// The absolute index of an encoder-stream relative index (§3.2.5: 0
    /// is the newest entry), if there is such an entry.
    pub(crate) fn relative(&self, relative: u64) -> Option<u64> {
        self.inserted.checked_sub(relative)?.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_and_absolute_indexes() {
        let mut t = DynamicTable::new(100);
        assert_eq!(
            t.set_capacity(101),
            Err(Violation::TableCapacityTooLarge {
                capacity: 101,
                max: 100
            })
        );
        t.set_capacity(100).unwrap();
        // 34 bytes each: two fit, the third evicts the first.
        for v in [b"a", b"b", b"c"] {
            t.insert(b"x".to_vec(), v.to_vec()).unwrap();
        }
        assert_eq!(t.inserted(), 3);
        assert_eq!(t.size(), 68);
        assert_eq!(t.get(0), None);
        assert_eq!(t.get(1), Some((&b"x"[..], &b"b"[..])));
        assert_eq!(t.get(2), Some((&b"x"[..], &b"c"[..])));
        assert_eq!(t.get(3), None);
        assert_eq!(t.relative(0), Some(2));
        assert_eq!(t.relative(3), None);
        assert_eq!(
            t.insert(vec![0; 60], vec![0; 9]),
            Err(Violation::EntryTooLarge(101))
        );
        t.set_capacity(34).unwrap();
        assert_eq!(t.get(1), None);
        assert_eq!(t.size(), 34);
        t.set_capacity(0).unwrap();
        assert_eq!(t.size(), 0);
        assert_eq!(t.get(2), None);
    }
}
