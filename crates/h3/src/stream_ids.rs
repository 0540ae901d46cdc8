//! Which of the peer's stream IDs of one kind were seen, in bounded
//! memory.
//!
//! A QUIC stream opens every lower-numbered stream of its kind (RFC 9000
//! §2.1), but the lower ones' bytes may come later, or never. What is kept
//! is the lowest ID not seen yet and, below it, the ranges of IDs opened
//! that way but not seen: each range holds at least one stream that QUIC
//! counts as open, so there are no more ranges than the peer may have open
//! streams.

/// The seen IDs of one kind of stream (IDs step by 4).
#[derive(Debug, Clone, Default)]
pub(crate) struct StreamIds {
    /// The lowest ID above every seen one.
    next: u64,
    /// `[start, end)` ranges below `next` never seen.
    unseen: Vec<(u64, u64)>,
}

impl StreamIds {
    /// IDs of the kind whose first is `first` (0 for client bidirectional
    /// streams, 2 for client unidirectional ones).
    pub(crate) const fn new(first: u64) -> StreamIds {
        StreamIds {
            next: first,
            unseen: Vec::new(),
        }
    }

    /// The lowest ID above every seen one.
    pub(crate) const fn next(&self) -> u64 {
        self.next
    }

    /// Whether `id` is seen for the first time, noting it as seen.
    pub(crate) fn first_seen(&mut self, id: u64) -> bool {
        if id >= self.next {
            if id > self.next {
                self.unseen.push((self.next, id));
            }
            self.next = id.saturating_add(4);
            return true;
        }
        let Some(i) = self
            .unseen
            .iter()
            .position(|&(start, end)| start <= id && id < end)
        else {
            return false;
        };
        let (start, end) = self.unseen.swap_remove(i);
        if start < id {
            self.unseen.push((start, id));
        }
        if id.saturating_add(4) < end {
            self.unseen.push((id.saturating_add(4), end));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_is_new_once_in_any_order() {
        let mut ids = StreamIds::new(0);
        assert!(ids.first_seen(12));
        assert_eq!(ids.next(), 16);
        for id in [4, 0, 8] {
            assert!(ids.first_seen(id), "{id}");
        }
        for id in [0, 4, 8, 12] {
            assert!(!ids.first_seen(id), "{id}");
        }
        assert!(ids.unseen.is_empty());
        let mut uni = StreamIds::new(2);
        assert!(uni.first_seen(10));
        assert!(uni.first_seen(2));
        assert!(!uni.first_seen(2));
        assert!(uni.first_seen(6));
        assert!(uni.unseen.is_empty());
        // A huge jump is one range, not one entry per ID.
        assert!(uni.first_seen(1 << 60));
        assert_eq!(uni.unseen.len(), 1);
    }
}
