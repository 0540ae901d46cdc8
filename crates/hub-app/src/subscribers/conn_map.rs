//! A map by connection, kept in a `Vec` by the connection's slot in its
//! loop ([`ConnId::slot`]) where it has one, and in a hash map otherwise
//! (HTTP/2 and HTTP/3 streams, QUIC connections). With one entry for
//! most of a loop's connections (the hub's subscribers), the `Vec` holds
//! each in its own size, where a hash map keeps up to twice the room with
//! the key beside it: at 10 000 subscribers, 56 bytes a subscriber instead
//! of 105 (a 48-byte entry).

use std::collections::HashMap;
use std::hash::Hash;

use tether_server::ConnId;

/// A key with an optional small slot number, dense over the live keys.
pub(crate) trait Slotted: Copy + Eq + Hash {
    fn slot(self) -> Option<usize>;
}

impl Slotted for ConnId {
    fn slot(self) -> Option<usize> {
        ConnId::slot(self)
    }
}

#[cfg(test)]
impl Slotted for u32 {
    fn slot(self) -> Option<usize> {
        usize::try_from(self).ok()
    }
}

/// Slots from here on go to the hash map, so that no one key can make the
/// `Vec` large (a loop holds at most some tens of thousands of
/// connections: one process may open 20 000 descriptors here).
const MAX_SLOTS: usize = 1 << 20;

#[derive(Debug)]
pub(super) struct ConnMap<K, V> {
    /// By slot: the key that holds it (a later connection in the same slot
    /// has another) and its value.
    slots: Vec<Option<(K, V)>>,
    others: HashMap<K, V>,
    /// Entries in `slots`.
    in_slots: usize,
}

impl<K, V> Default for ConnMap<K, V> {
    fn default() -> ConnMap<K, V> {
        ConnMap {
            slots: Vec::new(),
            others: HashMap::new(),
            in_slots: 0,
        }
    }
}

impl<K: Slotted, V> ConnMap<K, V> {
    fn slot(key: K) -> Option<usize> {
        key.slot().filter(|&slot| slot < MAX_SLOTS)
    }

    /// Inserts `value` for `key`, returning the value `key` had. An entry
    /// of another key in the same slot (a connection gone without being
    /// removed) is dropped.
    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let Some(slot) = Self::slot(key) else {
            return self.others.insert(key, value);
        };
        if slot >= self.slots.len() {
            self.slots.resize_with(slot + 1, || None);
        }
        let entry = self.slots.get_mut(slot)?;
        match entry.replace((key, value)) {
            Some((old_key, old)) if old_key == key => Some(old),
            Some(_) => None,
            None => {
                self.in_slots += 1;
                None
            }
        }
    }

    pub(super) fn remove(&mut self, key: K) -> Option<V> {
        let Some(slot) = Self::slot(key) else {
            return self.others.remove(&key);
        };
        let entry = self.slots.get_mut(slot)?;
        if !entry.as_ref().is_some_and(|(k, _)| *k == key) {
            return None;
        }
        let (_, value) = entry.take()?;
        self.in_slots -= 1;
        // Slots freed at the end are given back as they go.
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        if self.slots.capacity() > 64 && self.slots.len() < self.slots.capacity() / 4 {
            self.slots.shrink_to(self.slots.capacity() / 2);
        }
        Some(value)
    }

    pub(super) fn get(&self, key: K) -> Option<&V> {
        match Self::slot(key) {
            Some(slot) => match self.slots.get(slot)? {
                Some((k, value)) if *k == key => Some(value),
                _ => None,
            },
            None => self.others.get(&key),
        }
    }

    pub(super) fn get_mut(&mut self, key: K) -> Option<&mut V> {
        match Self::slot(key) {
            Some(slot) => match self.slots.get_mut(slot)? {
                Some((k, value)) if *k == key => Some(value),
                _ => None,
            },
            None => self.others.get_mut(&key),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.in_slots + self.others.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        let slots = self.slots.iter().flatten().map(|(k, v)| (*k, v));
        slots.chain(self.others.iter().map(|(k, v)| (*k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_slots_and_beyond_them_are_kept_apart_and_found() {
        let far = u32::try_from(MAX_SLOTS).unwrap() + 5;
        let mut map = ConnMap::default();
        assert_eq!(map.insert(3u32, "three"), None);
        assert_eq!(map.insert(far, "far"), None);
        assert_eq!(map.insert(3, "III"), Some("three"));
        assert_eq!(
            (map.len(), map.get(3), map.get(far)),
            (2, Some(&"III"), Some(&"far"))
        );
        assert_eq!(map.get(2), None);
        *map.get_mut(3).unwrap() = "3";
        let mut all: Vec<_> = map.iter().collect();
        all.sort();
        assert_eq!(all, [(3, &"3"), (far, &"far")]);
        assert_eq!(map.remove(3), Some("3"));
        assert_eq!(map.remove(3), None);
        assert_eq!(map.remove(far), Some("far"));
        assert_eq!((map.len(), map.slots.len()), (0, 0));
    }

    #[test]
    fn a_connection_id_of_a_later_connection_in_the_same_slot_is_another_key() {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        struct Id(usize, u32);
        impl Slotted for Id {
            fn slot(self) -> Option<usize> {
                Some(self.0)
            }
        }
        let mut map = ConnMap::default();
        map.insert(Id(7, 1), 'a');
        assert_eq!(map.get(Id(7, 2)), None);
        assert_eq!(map.remove(Id(7, 2)), None);
        // A stale entry is replaced, not returned as the new key's.
        assert_eq!(map.insert(Id(7, 2), 'b'), None);
        assert_eq!(
            (map.len(), map.get(Id(7, 1)), map.get(Id(7, 2))),
            (1, None, Some(&'b'))
        );
    }

    #[test]
    fn the_slots_shrink_as_the_last_ones_go() {
        let mut map = ConnMap::default();
        for i in 0..10_000u32 {
            map.insert(i, i);
        }
        for i in (10..10_000u32).rev() {
            assert_eq!(map.remove(i), Some(i));
        }
        assert_eq!(map.len(), 10);
        assert!(map.slots.capacity() < 1000, "{}", map.slots.capacity());
    }
}
