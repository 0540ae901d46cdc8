//! Per-connection output: a queue of byte chunks, some owned, some shared
//! among many connections (a broadcast frame is encoded once), written
//! with vectored writes.
//!
//! Broadcasts that pile up behind each other in one loop turn (a fan-out
//! whose loop is behind delivers several events to every subscriber before
//! it flushes) are joined: the queue's last unstarted shared chunk and the
//! new one become one shared chunk, joined once per loop for all the
//! subscribers that queue the same pair ([`Joins`]). A subscriber then
//! holds one chunk per turn, not one per event, and gets them in one plain
//! write.

use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSlice, Write};
use std::sync::Arc;

/// Bytes waiting to be written.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Bytes for this connection only.
    Owned(Vec<u8>),
    /// Bytes shared with other connections (an encoded broadcast).
    Shared(Arc<[u8]>),
    /// A message payload handed over whole (not copied): nothing is
    /// appended to it.
    Payload(Vec<u8>),
}

impl Chunk {
    fn as_slice(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) | Chunk::Payload(v) => v,
            Chunk::Shared(s) => s,
        }
    }
}

/// The most slices handed to one `writev`.
const MAX_IOV: usize = 64;

/// Owned chunks are recycled only up to this capacity, so one huge message
/// does not pin its buffer forever.
const RECYCLE_LIMIT: usize = 64 * 1024;

/// Shared chunks are joined only up to this many bytes: a join copies both
/// (and every join of a turn is kept until the turn ends), so long runs of
/// large messages go out as several chunks instead.
const JOIN_LIMIT: usize = 4 * 1024;

/// The most bytes of joins made in one loop turn: a connection that is
/// sent many small events alone in one turn (a long replay, say) would
/// otherwise have each join copied again into the next, all kept until the
/// turn ends. Past it, broadcasts are queued as they come.
const JOINS_PER_TURN: usize = 1024 * 1024;

/// A queue given back keeps room for this many chunks, no more: one burst
/// does not pin a long ring in every recycled queue.
const KEPT_CHUNKS: usize = 8;

/// Queued output for one connection. Exists only while there is output:
/// an idle connection holds none (see [`Pool`]).
#[derive(Debug, Default)]
pub(crate) struct OutQueue {
    chunks: Chunks,
    /// Bytes of the front chunk already written.
    offset: usize,
    /// Bytes still to write, over all chunks.
    len: usize,
}

/// A queue's chunks, in order: the first in place, the others in a ring
/// that is allocated only when a second one comes. In a fan-out every
/// subscriber holds a queue until the loop's turn ends, most of them with
/// one chunk (the turn's events joined): a ring of its own for each cost
/// more than the queue (10 000 rings of 128 bytes).
#[derive(Debug, Default)]
struct Chunks {
    /// `None` only when `rest` is empty too.
    first: Option<Chunk>,
    rest: VecDeque<Chunk>,
}

/// What [`Chunks::drain_from`] and [`Chunks::take`] hand over.
type Drained<I> = std::iter::Chain<std::option::IntoIter<Chunk>, I>;

impl Chunks {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn front(&self) -> Option<&Chunk> {
        self.first.as_ref()
    }

    fn back(&self) -> Option<&Chunk> {
        self.rest.back().or(self.first.as_ref())
    }

    fn back_mut(&mut self) -> Option<&mut Chunk> {
        match self.rest.back_mut() {
            Some(last) => Some(last),
            None => self.first.as_mut(),
        }
    }

    fn push_back(&mut self, chunk: Chunk) {
        if self.first.is_none() {
            self.first = Some(chunk);
        } else {
            self.rest.push_back(chunk);
        }
    }

    fn pop_front(&mut self) -> Option<Chunk> {
        let front = self.first.take();
        self.first = self.rest.pop_front();
        front
    }

    fn iter(&self) -> impl Iterator<Item = &Chunk> {
        self.first.iter().chain(self.rest.iter())
    }

    /// Takes out every chunk after the first `keep` (0 or 1).
    fn drain_from(&mut self, keep: usize) -> Drained<std::collections::vec_deque::Drain<'_, Chunk>> {
        if keep == 0 {
            self.first.take().into_iter().chain(self.rest.drain(..))
        } else {
            let from = (keep - 1).min(self.rest.len());
            None.into_iter().chain(self.rest.drain(from..))
        }
    }

    /// Takes out every chunk (the ring goes with them).
    fn take(&mut self) -> Drained<std::collections::vec_deque::IntoIter<Chunk>> {
        let rest = std::mem::take(&mut self.rest);
        self.first.take().into_iter().chain(rest)
    }
}

impl OutQueue {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `bytes` straight to `socket` when nothing is queued ahead of
    /// them (one write, no copy), and queues what the socket does not take
    /// (all of them behind queued bytes). Returns how many were written. A
    /// write error leaves the bytes queued: the next flush meets it again
    /// and reports it.
    pub(crate) fn write_through<W: Write>(&mut self, socket: &mut W, bytes: &[u8], pool: &mut Pool) -> usize {
        let mut written = 0;
        if self.len == 0 {
            loop {
                match socket.write(bytes) {
                    Ok(n) => written = n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {}
                }
                break;
            }
        }
        if let Some(rest) = bytes.get(written..).filter(|rest| !rest.is_empty()) {
            self.write_with(pool, |out| out.extend_from_slice(rest));
        }
        written
    }

    /// Lets `write` append to the owned buffer at the back of the queue
    /// (taking a new one from `pool` when the back is shared or a payload),
    /// and counts what it appended.
    pub(crate) fn write_with<R>(&mut self, pool: &mut Pool, write: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        if !matches!(self.chunks.back(), Some(Chunk::Owned(_))) {
            self.chunks.push_back(Chunk::Owned(pool.buffer()));
        }
        let Some(Chunk::Owned(tail)) = self.chunks.back_mut() else {
            unreachable!("an owned chunk was just ensured")
        };
        let before = tail.len();
        let result = write(tail);
        self.len += tail.len() - before;
        result
    }

    /// Appends a payload without copying it.
    pub(crate) fn push_payload(&mut self, bytes: Vec<u8>) {
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Payload(bytes));
    }

    /// Appends shared bytes.
    pub(crate) fn push_shared(&mut self, bytes: Arc<[u8]>) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.chunks.push_back(Chunk::Shared(bytes));
    }

    /// Appends a broadcast's shared bytes, joined with the shared chunk
    /// queued last if that one has not begun to be written and the two are
    /// small (the join made once per loop turn for every queue that holds
    /// the same two, see [`Joins`]).
    pub(crate) fn push_broadcast(&mut self, bytes: &Arc<[u8]>, pool: &mut Pool) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        let started = self.offset > 0 && self.chunks.len() == 1;
        if let (false, Some(Chunk::Shared(last))) = (started, self.chunks.back_mut())
            && last.len() + bytes.len() <= JOIN_LIMIT
            && let Some(joined) = pool.joins.join(last, bytes)
        {
            *last = joined;
            return;
        }
        self.chunks.push_back(Chunk::Shared(Arc::clone(bytes)));
    }

    /// Drops every chunk not yet begun, keeping a partly written front
    /// chunk so that no frame or event is cut in half on the wire.
    pub(crate) fn keep_started(&mut self, pool: &mut Pool) {
        let keep = usize::from(self.offset > 0);
        for chunk in self.chunks.drain_from(keep) {
            if let Chunk::Owned(v) | Chunk::Payload(v) = chunk {
                pool.give_back(v);
            }
        }
        self.len = self
            .chunks
            .front()
            .map_or(0, |c| c.as_slice().len() - self.offset);
    }

    /// Takes every chunk out, in order (a queue that was never flushed:
    /// none is partly written), leaving the queue empty.
    pub(crate) fn take_chunks(&mut self) -> impl Iterator<Item = Chunk> + use<> {
        self.offset = 0;
        self.len = 0;
        self.chunks.take()
    }

    /// Drops everything queued.
    pub(crate) fn clear(&mut self, pool: &mut Pool) {
        for chunk in self.chunks.drain_from(0) {
            if let Chunk::Owned(v) | Chunk::Payload(v) = chunk {
                pool.give_back(v);
            }
        }
        self.offset = 0;
        self.len = 0;
    }

    /// Writes as much as the socket takes, in vectored writes. Returns
    /// `Ok(true)` when everything was written, `Ok(false)` when the socket
    /// would block with bytes left.
    pub(crate) fn flush<W: Write>(&mut self, socket: &mut W, pool: &mut Pool) -> io::Result<bool> {
        while self.len > 0 {
            let result = if let (1, Some(only)) = (self.chunks.len(), self.chunks.front()) {
                // The common case (one reply, one event): a plain write,
                // without building a slice array for one slice.
                socket.write(only.as_slice().get(self.offset..).unwrap_or_default())
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                let mut n = 0;
                for (i, chunk) in self.chunks.iter().take(MAX_IOV).enumerate() {
                    let bytes = chunk.as_slice();
                    let bytes = if i == 0 {
                        bytes.get(self.offset..).unwrap_or_default()
                    } else {
                        bytes
                    };
                    if let (false, Some(slot)) = (bytes.is_empty(), slices.get_mut(n)) {
                        *slot = IoSlice::new(bytes);
                        n += 1;
                    }
                }
                match slices.get(..n).unwrap_or_default() {
                    // One non-empty chunk among empty ones (a shared frame
                    // behind an owned buffer that got nothing, say): a plain
                    // write, `send` rather than `writev`.
                    [only] => socket.write(only),
                    several => socket.write_vectored(several),
                }
            };
            let written = match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => written,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.consume(written, pool);
        }
        // Owned tails that never received a byte may remain.
        self.clear(pool);
        Ok(true)
    }

    fn consume(&mut self, mut written: usize, pool: &mut Pool) {
        self.len -= written;
        while written > 0 {
            let front_len = self.chunks.front().map_or(0, |c| c.as_slice().len()) - self.offset;
            if written < front_len {
                self.offset += written;
                return;
            }
            written -= front_len;
            self.offset = 0;
            if let Some(Chunk::Owned(v) | Chunk::Payload(v)) = self.chunks.pop_front() {
                pool.give_back(v);
            }
        }
    }
}

/// Recycled buffers and queues, shared by every connection of a loop, so
/// that steady traffic allocates nothing and idle connections own nothing.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    buffers: Vec<Vec<u8>>,
    /// Boxed because connections hold them boxed (a pointer, not the whole
    /// queue, in every connection), and recycling keeps the allocation.
    #[allow(clippy::vec_box)]
    queues: Vec<Box<OutQueue>>,
    /// Broadcasts joined in this loop turn.
    joins: Joins,
}

/// How many spare buffers and queues a pool keeps.
const POOL_KEEP: usize = 256;

impl Pool {
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        self.buffers.pop().unwrap_or_default()
    }

    pub(crate) fn give_back(&mut self, mut buffer: Vec<u8>) {
        if buffer.capacity() <= RECYCLE_LIMIT && self.buffers.len() < POOL_KEEP {
            buffer.clear();
            self.buffers.push(buffer);
        }
    }

    pub(crate) fn queue(&mut self) -> Box<OutQueue> {
        self.queues.pop().unwrap_or_default()
    }

    /// Takes back an empty queue, with no more room than a few chunks'.
    pub(crate) fn give_back_queue(&mut self, mut queue: Box<OutQueue>) {
        queue.clear(self);
        if self.queues.len() < POOL_KEEP {
            queue.chunks.rest.shrink_to(KEPT_CHUNKS - 1);
            self.queues.push(queue);
        }
    }

    /// Ends a loop turn: the joins made in it are let go (the queues that
    /// hold them keep them as long as they need them).
    pub(crate) fn end_turn(&mut self) {
        self.joins.clear();
    }
}

/// The shared chunks joined in this loop turn, by the two they joined: each
/// pair is joined once for all the queues that hold it. The pair is kept
/// with its join, so that neither address is reused by another chunk while
/// it is a key here.
#[derive(Debug, Default)]
pub(crate) struct Joins {
    /// The last join made or found (a fan-out asks for the same one for
    /// every subscriber in turn).
    last: Option<Join>,
    made: HashMap<(usize, usize), Join>,
    /// Bytes of the joins made this turn.
    bytes: usize,
}

#[derive(Debug, Clone)]
struct Join {
    front: Arc<[u8]>,
    back: Arc<[u8]>,
    joined: Arc<[u8]>,
}

impl Join {
    fn of(&self, front: &Arc<[u8]>, back: &Arc<[u8]>) -> bool {
        Arc::ptr_eq(&self.front, front) && Arc::ptr_eq(&self.back, back)
    }
}

impl Joins {
    /// `front` followed by `back`, as one shared chunk; `None` when this
    /// turn's joins have reached [`JOINS_PER_TURN`].
    fn join(&mut self, front: &Arc<[u8]>, back: &Arc<[u8]>) -> Option<Arc<[u8]>> {
        if let Some(last) = self.last.as_ref().filter(|j| j.of(front, back)) {
            return Some(Arc::clone(&last.joined));
        }
        let key = (front.as_ptr() as usize, back.as_ptr() as usize);
        let join = match self.made.get(&key).filter(|j| j.of(front, back)) {
            Some(join) => join.clone(),
            None => {
                if self.bytes + front.len() + back.len() > JOINS_PER_TURN {
                    return None;
                }
                self.bytes += front.len() + back.len();
                let mut bytes = Vec::with_capacity(front.len() + back.len());
                bytes.extend_from_slice(front);
                bytes.extend_from_slice(back);
                let join = Join {
                    front: Arc::clone(front),
                    back: Arc::clone(back),
                    joined: Arc::from(bytes),
                };
                self.made.insert(key, join.clone());
                join
            }
        };
        let joined = Arc::clone(&join.joined);
        self.last = Some(join);
        Some(joined)
    }

    fn clear(&mut self) {
        self.last = None;
        self.made.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `cap` bytes per call, then blocks once
    /// `budget` is used up.
    struct Throttled {
        written: Vec<u8>,
        cap: usize,
        budget: usize,
    }

    impl Write for Throttled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.cap - n).min(self.budget);
                self.written.extend_from_slice(&b[..take]);
                n += take;
                self.budget -= take;
                if n == self.cap || self.budget == 0 {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn mixed_chunks_come_out_in_order_through_partial_writes() {
        let mut pool = Pool::default();
        let mut q = OutQueue::default();
        let shared: Arc<[u8]> = Arc::from(&b"SHARED"[..]);
        q.write_with(&mut pool, |out| out.extend_from_slice(b"one "));
        q.push_shared(shared.clone());
        q.write_with(&mut pool, |out| out.extend_from_slice(b" two"));
        q.push_shared(shared);
        assert_eq!(q.len(), 20);
        let mut w = Throttled {
            written: Vec::new(),
            cap: 3,
            budget: 7,
        };
        assert!(!q.flush(&mut w, &mut pool).unwrap());
        assert_eq!(q.len(), 13);
        w.budget = usize::MAX;
        assert!(q.flush(&mut w, &mut pool).unwrap());
        assert_eq!(w.written, b"one SHARED twoSHARED");
        assert!(q.is_empty());
        assert_eq!(pool.buffers.len(), 2, "owned buffers are recycled");
    }

    #[test]
    fn a_write_through_goes_out_at_once_or_queues_what_the_socket_refuses() {
        let mut pool = Pool::default();
        let mut q = OutQueue::default();
        let mut w = Throttled {
            written: Vec::new(),
            cap: 4,
            budget: 100,
        };
        // Nothing queued: one write, the rest queued.
        assert_eq!(q.write_through(&mut w, b"abcdefg", &mut pool), 4);
        assert_eq!((w.written.as_slice(), q.len()), (&b"abcd"[..], 3));
        // Bytes queued ahead: no write, all of it queued behind them.
        assert_eq!(q.write_through(&mut w, b"hij", &mut pool), 0);
        assert_eq!((w.written.len(), q.len()), (4, 6));
        w.cap = 100;
        assert!(q.flush(&mut w, &mut pool).unwrap());
        assert_eq!(w.written, b"abcdefghij");
        // A socket that would block: all of it queued.
        w.budget = 0;
        assert_eq!(q.write_through(&mut w, b"kl", &mut pool), 0);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn a_write_through_that_fails_leaves_the_error_to_the_next_flush() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut pool = Pool::default();
        let mut q = OutQueue::default();
        assert_eq!(q.write_through(&mut Broken, b"lost?", &mut pool), 0);
        assert_eq!(q.len(), 5);
        let error = q.flush(&mut Broken, &mut pool).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
    }

    #[test]
    fn keep_started_drops_only_what_has_not_begun() {
        let mut pool = Pool::default();
        let mut q = OutQueue::default();
        q.push_shared(Arc::from(&b"first"[..]));
        q.push_shared(Arc::from(&b"second"[..]));
        let mut w = Throttled {
            written: Vec::new(),
            cap: 100,
            budget: 2,
        };
        assert!(!q.flush(&mut w, &mut pool).unwrap());
        q.keep_started(&mut pool);
        assert_eq!(q.len(), 3, "the rest of the started chunk stays");
        w.budget = usize::MAX;
        assert!(q.flush(&mut w, &mut pool).unwrap());
        assert_eq!(w.written, b"first");
        q.push_shared(Arc::from(&b"third"[..]));
        q.keep_started(&mut pool);
        assert_eq!(q.len(), 0, "nothing begun, nothing kept");
    }

    #[test]
    fn broadcasts_queued_in_one_turn_become_one_chunk_joined_once_for_all() {
        let mut pool = Pool::default();
        let events: Vec<Arc<[u8]>> = ["one ", "two ", "three"]
            .iter()
            .map(|e| Arc::from(e.as_bytes()))
            .collect();
        let mut queues: Vec<OutQueue> = (0..3).map(|_| OutQueue::default()).collect();
        for event in &events {
            for q in &mut queues {
                q.push_broadcast(event, &mut pool);
            }
        }
        let first = match queues[0].chunks.front() {
            Some(Chunk::Shared(bytes)) => bytes.clone(),
            other => panic!("one shared chunk expected, not {other:?}"),
        };
        for q in &queues {
            assert_eq!(q.chunks.len(), 1);
            assert_eq!(q.len(), 13);
            let Some(Chunk::Shared(bytes)) = q.chunks.front() else {
                panic!("a shared chunk")
            };
            assert!(Arc::ptr_eq(bytes, &first), "joined once, shared by every queue");
        }
        // Two joins made (one, then one+two with three), each once.
        assert_eq!(pool.joins.made.len(), 2);
        for q in &mut queues {
            let mut w = Throttled {
                written: Vec::new(),
                cap: 100,
                budget: 100,
            };
            assert!(q.flush(&mut w, &mut pool).unwrap());
            assert_eq!(w.written, b"one two three");
        }
        pool.end_turn();
        assert!(pool.joins.made.is_empty() && pool.joins.last.is_none());
    }

    #[test]
    fn a_broadcast_is_not_joined_to_a_chunk_begun_or_too_large_or_owned() {
        let mut pool = Pool::default();
        let mut q = OutQueue::default();
        let mut w = Throttled {
            written: Vec::new(),
            cap: 100,
            budget: 2,
        };
        q.push_broadcast(&Arc::from(&b"first"[..]), &mut pool);
        assert!(!q.flush(&mut w, &mut pool).unwrap());
        // The front chunk is partly written: the next one stands alone.
        q.push_broadcast(&Arc::from(&b"second"[..]), &mut pool);
        assert_eq!(q.chunks.len(), 2);
        // Behind an unstarted chunk, they join.
        q.push_broadcast(&Arc::from(&b"third"[..]), &mut pool);
        assert_eq!(q.chunks.len(), 2);
        // Past the limit, a chunk of its own.
        q.push_broadcast(&Arc::from(vec![b'x'; JOIN_LIMIT]), &mut pool);
        assert_eq!(q.chunks.len(), 3);
        // Behind owned bytes, a chunk of its own too.
        q.write_with(&mut pool, |out| out.extend_from_slice(b"own"));
        q.push_broadcast(&Arc::from(&b"last"[..]), &mut pool);
        assert_eq!(q.chunks.len(), 5);
        w.budget = usize::MAX;
        w.cap = usize::MAX;
        assert!(q.flush(&mut w, &mut pool).unwrap());
        let mut expected = b"firstsecondthird".to_vec();
        expected.extend(vec![b'x'; JOIN_LIMIT]);
        expected.extend_from_slice(b"ownlast");
        assert_eq!(w.written, expected);
    }

    #[test]
    fn joins_of_different_pairs_do_not_mix() {
        let mut pool = Pool::default();
        let [a, b, c]: [Arc<[u8]>; 3] = [b"a", b"b", b"c"].map(|x| Arc::from(&x[..]));
        let mut one = OutQueue::default();
        let mut two = OutQueue::default();
        // Interleaved topics: one gets a then c, two gets b then c, then
        // one more of each.
        one.push_broadcast(&a, &mut pool);
        two.push_broadcast(&b, &mut pool);
        one.push_broadcast(&c, &mut pool);
        two.push_broadcast(&c, &mut pool);
        one.push_broadcast(&a, &mut pool);
        two.push_broadcast(&b, &mut pool);
        for (q, expected) in [(&mut one, &b"aca"[..]), (&mut two, &b"bcb"[..])] {
            let mut w = Throttled {
                written: Vec::new(),
                cap: 100,
                budget: 100,
            };
            assert!(q.flush(&mut w, &mut pool).unwrap());
            assert_eq!(w.written, expected);
        }
    }

    #[test]
    fn joins_stop_for_the_turn_past_their_budget() {
        let mut pool = Pool::default();
        let mut q = OutQueue::default();
        // Events of their own (a join of a pair already joined is found,
        // not made again, and costs nothing).
        let event = || -> Arc<[u8]> { Arc::from(vec![b'e'; JOIN_LIMIT / 2]) };
        // A connection alone, sent many events in one turn: each join is
        // new, until the budget is spent.
        for _ in 0..4 * JOINS_PER_TURN / JOIN_LIMIT {
            q.push_broadcast(&event(), &mut pool);
        }
        assert!(pool.joins.bytes <= JOINS_PER_TURN);
        let chunks = q.chunks.len();
        q.push_broadcast(&event(), &mut pool);
        q.push_broadcast(&event(), &mut pool);
        assert_eq!(q.chunks.len(), chunks + 2, "no more joins this turn");
        pool.end_turn();
        assert_eq!(pool.joins.bytes, 0);
        let mut w = Throttled {
            written: Vec::new(),
            cap: usize::MAX,
            budget: usize::MAX,
        };
        let len = q.len();
        assert!(q.flush(&mut w, &mut pool).unwrap());
        assert_eq!(w.written.len(), len);
        assert!(w.written.iter().all(|&b| b == b'e'));
    }

    #[test]
    fn a_queue_given_back_keeps_room_for_a_few_chunks_only() {
        let mut pool = Pool::default();
        let mut q = pool.queue();
        for _ in 0..1000 {
            q.push_shared(Arc::from(&b"x"[..]));
        }
        assert!(q.chunks.rest.capacity() >= 999);
        pool.give_back_queue(q);
        let q = pool.queue();
        assert!(q.is_empty());
        assert!(
            q.chunks.rest.capacity() < 1000,
            "kept {}",
            q.chunks.rest.capacity()
        );
    }

    #[test]
    fn a_queue_of_one_chunk_allocates_no_ring_and_more_keep_their_order() {
        let size = std::mem::size_of::<OutQueue>();
        println!("an output queue: {size} bytes, its first chunk in place");
        assert!(size <= 80, "{size}");
        let mut pool = Pool::default();
        let mut q = pool.queue();
        q.push_broadcast(&Arc::from(&b"one"[..]), &mut pool);
        assert_eq!((q.chunks.len(), q.chunks.rest.capacity()), (1, 0));
        q.push_shared(Arc::from(&b"two"[..]));
        q.write_with(&mut pool, |out| out.extend_from_slice(b"three"));
        q.push_payload(b"four".to_vec());
        assert_eq!(q.chunks.len(), 4);
        // Two bytes of the first go, then the rest is dropped but for it.
        let mut w = Throttled {
            written: Vec::new(),
            cap: 2,
            budget: 2,
        };
        assert!(!q.flush(&mut w, &mut pool).unwrap());
        q.keep_started(&mut pool);
        assert_eq!((q.chunks.len(), q.len()), (1, 1));
        q.push_shared(Arc::from(&b"five"[..]));
        w.budget = usize::MAX;
        assert!(q.flush(&mut w, &mut pool).unwrap());
        assert_eq!(w.written, b"onefive");
        // Taken out whole, in order.
        let mut q = pool.queue();
        for piece in [&b"a"[..], b"b", b"c"] {
            q.push_shared(Arc::from(piece));
        }
        let taken: Vec<u8> = q.take_chunks().flat_map(|c| c.as_slice().to_vec()).collect();
        assert_eq!(taken, b"abc");
        assert!(q.is_empty() && q.chunks.front().is_none());
    }

    #[test]
    fn appending_to_the_tail_coalesces_owned_bytes() {
        let mut pool = Pool::default();
        let mut q = OutQueue::default();
        for _ in 0..3 {
            q.write_with(&mut pool, |out| out.extend_from_slice(b"ab"));
        }
        assert_eq!(q.chunks.len(), 1);
        let mut w = Throttled {
            written: Vec::new(),
            cap: 100,
            budget: 100,
        };
        assert!(q.flush(&mut w, &mut pool).unwrap());
        assert_eq!(w.written, b"ababab");
    }
}
