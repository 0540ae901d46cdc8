//! The connections that may have a datagram to send, in the order they
//! get to send one: a connection joins when something touched it (a
//! datagram in, a timer, a write, a close) and leaves when it has nothing
//! to send, so that asking for the next datagram never walks the idle
//! ones. One datagram per turn of the queue keeps the connections fair.

use std::collections::{BTreeSet, VecDeque};

/// Keys waiting their turn to send, each once.
#[derive(Debug)]
pub(crate) struct SendQueue<K> {
    order: VecDeque<K>,
    queued: BTreeSet<K>,
}

impl<K: Ord + Copy> SendQueue<K> {
    pub(crate) fn new() -> SendQueue<K> {
        SendQueue {
            order: VecDeque::new(),
            queued: BTreeSet::new(),
        }
    }

    /// `key` may have something to send: it joins the end of the queue
    /// unless it is in it already.
    pub(crate) fn push(&mut self, key: K) {
        if self.queued.insert(key) {
            self.order.push_back(key);
        }
    }

    /// The next key to ask, out of the queue until pushed again.
    pub(crate) fn pop(&mut self) -> Option<K> {
        let key = self.order.pop_front()?;
        self.queued.remove(&key);
        Some(key)
    }

    /// Keys queued.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_queued_once_in_the_order_it_first_came() {
        let mut queue = SendQueue::new();
        for key in [3u32, 1, 3, 2, 1] {
            queue.push(key);
        }
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.pop(), Some(3));
        // Back in after its turn: at the end, behind the others.
        queue.push(3);
        assert_eq!(
            [queue.pop(), queue.pop(), queue.pop()],
            [Some(1), Some(2), Some(3)]
        );
        assert_eq!(queue.pop(), None);
    }
}
