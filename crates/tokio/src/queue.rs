//! The output queue of a WebSocket: the bytes the connection wrote, whole
//! payloads handed over by value, and frames echoed from where they lie in
//! the read buffer, written in order with vectored writes.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

/// At most this many pieces go into one vectored write (Linux takes 1024;
/// a few dozen is already many frames).
const MAX_SLICES: usize = 64;

/// The most capacity [`Queue::out`] keeps once empty: a large message
/// copied there once (an echo assembled from many reads, up to the
/// message limit) is not held for the rest of a connection that then
/// idles.
const KEEP_CAPACITY: usize = 64 << 10;

/// One piece of the output, in order.
#[derive(Debug)]
enum Segment {
    /// Bytes of [`Queue::out`].
    Out(Range<usize>),
    /// A payload sent by value (masked already for a client), of this
    /// length: the first of [`Queue::payloads`] not yet written.
    Payload(usize),
    /// A frame that lies in the read buffer (an echo framed in place): the
    /// read buffer is not refilled while one is queued.
    Read(Range<usize>),
}

impl Segment {
    fn len(&self) -> usize {
        match self {
            Segment::Out(r) | Segment::Read(r) => r.len(),
            Segment::Payload(len) => *len,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Queue {
    /// Where tether-ws writes frames (headers, small messages, pongs,
    /// close frames). Cleared, keeping its capacity, once all is written.
    pub(crate) out: Vec<u8>,
    /// Bytes of `out` already made segments.
    sealed: usize,
    segments: VecDeque<Segment>,
    /// The payloads of the [`Segment::Payload`]s, in order: apart, so
    /// that a segment is plain data and forgetting one costs nothing.
    payloads: VecDeque<Vec<u8>>,
    /// Bytes of the front segment already written.
    head: usize,
    /// Bytes in `segments`, the written part of the front one included.
    segment_bytes: usize,
    /// How many [`Segment::Read`] are queued.
    read_refs: usize,
    /// Where the last queued [`Segment::Read`] ends (0 with none queued):
    /// an echo framed in place must not write below it.
    read_floor: usize,
}

impl Queue {
    /// Bytes waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.segment_bytes - self.head + (self.out.len() - self.sealed)
    }

    /// Whether nothing is queued (nor kept in `out` to be cleared).
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.out.is_empty()
    }

    /// Whether a frame in the read buffer is still to be written.
    pub(crate) fn holds_read_buffer(&self) -> bool {
        self.read_refs > 0
    }

    /// The lowest index of the read buffer that no queued frame uses: a
    /// header written in place must start at or after it. (A client's
    /// masked header is 4 bytes longer than the unmasked one it replaces,
    /// so it reaches back into the frame before, which may be an echo
    /// still waiting to be written.)
    pub(crate) fn read_floor(&self) -> usize {
        self.read_floor
    }

    fn seal(&mut self) {
        if self.out.len() > self.sealed {
            self.segment_bytes += self.out.len() - self.sealed;
            self.segments.push_back(Segment::Out(self.sealed..self.out.len()));
            self.sealed = self.out.len();
        }
    }

    /// Queues a payload after what `out` holds.
    pub(crate) fn push_payload(&mut self, payload: Vec<u8>) {
        self.seal();
        self.segment_bytes += payload.len();
        self.segments.push_back(Segment::Payload(payload.len()));
        self.payloads.push_back(payload);
    }

    /// Queues `range` of the read buffer after what `out` holds.
    pub(crate) fn push_read(&mut self, range: Range<usize>) {
        self.seal();
        self.segment_bytes += range.len();
        self.read_refs += 1;
        self.read_floor = self.read_floor.max(range.end);
        self.segments.push_back(Segment::Read(range));
    }

    /// Forgets everything queued, keeping the allocations.
    fn clear(&mut self) {
        self.segments.clear();
        if !self.payloads.is_empty() {
            self.payloads.clear();
        }
        self.head = 0;
        self.segment_bytes = 0;
        self.read_refs = 0;
        self.read_floor = 0;
        self.out.clear();
        if self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        }
        self.sealed = 0;
    }

    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(front) = self.segments.front() else { break };
            let left = front.len() - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.segment_bytes -= front.len();
            match front {
                Segment::Read(_) => {
                    self.read_refs -= 1;
                    if self.read_refs == 0 {
                        self.read_floor = 0;
                    }
                }
                Segment::Payload(_) => drop(self.payloads.pop_front()),
                Segment::Out(_) => {}
            }
            self.segments.pop_front();
            self.head = 0;
        }
    }

    /// Writes until everything is written, or the writer pushes back.
    pub(crate) fn poll_flush<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        read_buffer: &[u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            self.seal();
            if self.segments.is_empty() {
                self.clear();
                return Poll::Ready(Ok(()));
            }
            // One segment (an echo, a message just queued): written as it
            // is, without filling an array of slices first.
            if self.segments.len() == 1 {
                let bytes = match self.segments.front() {
                    Some(Segment::Out(r)) => self.out.get(r.clone()),
                    Some(Segment::Read(r)) => read_buffer.get(r.clone()),
                    Some(Segment::Payload(_)) => self.payloads.front().map(Vec::as_slice),
                    None => None,
                }
                .unwrap_or_default();
                let bytes = bytes.get(self.head..).unwrap_or_default();
                let n = ready!(Pin::new(&mut *writer).poll_write(cx, bytes))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                if n == bytes.len() {
                    // All of it: the queue is empty again (`out` was all
                    // sealed above).
                    self.clear();
                    return Poll::Ready(Ok(()));
                }
                self.advance(n);
                continue;
            }
            let n = ready!(self.poll_write_vectored(writer, read_buffer, cx))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(n);
        }
    }

    /// One write of the first [`MAX_SLICES`] segments, vectored if the
    /// writer takes it so. Out of line: the array of slices would make
    /// every flush set up a kilobyte of stack.
    #[inline(never)]
    fn poll_write_vectored<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
        read_buffer: &[u8],
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let mut count = 0;
        let mut payloads = self.payloads.iter();
        for (i, segment) in self.segments.iter().take(MAX_SLICES).enumerate() {
            let bytes = match segment {
                Segment::Out(r) => self.out.get(r.clone()),
                Segment::Read(r) => read_buffer.get(r.clone()),
                Segment::Payload(_) => payloads.next().map(Vec::as_slice),
            }
            .unwrap_or_default();
            let bytes = if i == 0 {
                bytes.get(self.head..).unwrap_or_default()
            } else {
                bytes
            };
            if let Some(slot) = slices.get_mut(i) {
                *slot = IoSlice::new(bytes);
                count = i + 1;
            }
        }
        let used = slices.get(..count).unwrap_or_default();
        if count == 1 || !writer.is_write_vectored() {
            let first = used.first().map(|s| &**s).unwrap_or_default();
            Pin::new(&mut *writer).poll_write(cx, first)
        } else {
            Pin::new(&mut *writer).poll_write_vectored(cx, used)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call.
    struct Trickle {
        got: Vec<u8>,
        limit: usize,
        vectored: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.limit);
            self.got.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.limit;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.got.extend_from_slice(&b[..take]);
                left -= take;
                n += take;
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            self.vectored
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn writes_every_piece_in_order_in_any_split() {
        let read_buffer = b"..READ..".to_vec();
        for vectored in [false, true] {
            for limit in [1, 2, 3, 7, 100] {
                let mut q = Queue::default();
                q.out.extend_from_slice(b"ab");
                q.push_payload(b"cde".to_vec());
                q.out.extend_from_slice(b"f");
                q.push_read(2..6);
                q.out.extend_from_slice(b"gh");
                assert_eq!(q.len(), 12);
                assert!(q.holds_read_buffer());
                let mut w = Trickle {
                    got: Vec::new(),
                    limit,
                    vectored,
                };
                let waker = std::task::Waker::noop();
                let mut cx = Context::from_waker(waker);
                assert!(matches!(
                    q.poll_flush(&mut w, &read_buffer, &mut cx),
                    Poll::Ready(Ok(()))
                ));
                assert_eq!(w.got, b"abcdefREADgh", "limit {limit} vectored {vectored}");
                assert_eq!(q.len(), 0);
                assert!(!q.holds_read_buffer());
                assert!(q.out.is_empty());
            }
        }
    }

    #[test]
    fn a_large_output_is_not_kept_once_written() {
        let mut q = Queue::default();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for (size, kept) in [(1000, true), (KEEP_CAPACITY, true), (4 << 20, false)] {
            q.out.extend_from_slice(&vec![7u8; size]);
            let mut w = Trickle {
                got: Vec::new(),
                limit: usize::MAX,
                vectored: true,
            };
            assert!(matches!(q.poll_flush(&mut w, &[], &mut cx), Poll::Ready(Ok(()))));
            assert_eq!(w.got.len(), size);
            assert!(q.out.is_empty());
            // A small output keeps its room for the next; 4 MiB does not.
            assert_eq!(q.out.capacity() >= size, kept, "{size} bytes");
            assert!(q.out.capacity() <= KEEP_CAPACITY, "{size} bytes");
        }
    }
}
