//! An event's event-stream forms as pieces of a compressed stream: made
//! once, shared by every compressed stream the event goes to.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tether_deflate::Piece;

use super::Event;

/// Event-stream pieces compressed in this process.
static COMPRESSIONS: AtomicU64 = AtomicU64::new(0);

/// How many event-stream forms this process has compressed for sharing
/// ([`Event::sse_piece`], [`Event::sse_multi_piece`]): at most one per
/// event and form, however many streams received them; pieces stored
/// uncompressed (shorter than the floor) are not counted. A counter for
/// metrics.
pub fn shared_sse_compressions() -> u64 {
    COMPRESSIONS.load(Ordering::Relaxed)
}

impl Event {
    /// [`Event::sse`] as deflate blocks that stand alone (a fresh window,
    /// ending in a sync flush: see [`tether_deflate::Piece`]), which every
    /// event stream sent compressed (gzip or deflate) writes as they are;
    /// stored uncompressed when the event is shorter than `min_size` or
    /// does not shrink. Made the first time it is asked for, by whichever
    /// event loop needs it first (with its `min_size`); every later call,
    /// from any thread, returns the same shared piece, so an event is
    /// compressed at most once however many streams get it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tether_hub::{Event, EventId};
    ///
    /// let data = "{\"price\":101.25,\"symbol\":\"ACME\"}".repeat(20);
    /// let event = Event::new(Arc::from("quotes"), EventId::new(7, 1), "quote", &data)?;
    /// let piece = event.sse_piece(128);
    /// assert!(piece.bytes().len() < event.sse().len() / 4);
    /// assert_eq!(piece.plain_len(), event.sse().len() as u64);
    /// assert!(Arc::ptr_eq(piece, event.sse_piece(128)));
    /// # Ok::<(), tether_hub::Error>(())
    /// ```
    pub fn sse_piece(&self, min_size: usize) -> &Arc<Piece> {
        self.forms()
            .sse_piece
            .get_or_init(|| compress(self.sse(), min_size))
    }

    /// [`Event::sse_multi`] as [`Event::sse_piece`] is [`Event::sse`]:
    /// made at most once, shared. A multi-topic stream follows it with
    /// its own id line, compressed for it alone.
    pub fn sse_multi_piece(&self, min_size: usize) -> &Arc<Piece> {
        self.forms()
            .sse_multi_piece
            .get_or_init(|| compress(self.sse_multi(), min_size))
    }
}

fn compress(plain: &[u8], min_size: usize) -> Arc<Piece> {
    if plain.len() >= min_size {
        COMPRESSIONS.fetch_add(1, Ordering::Relaxed);
    }
    Arc::new(Piece::new(plain, min_size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::EventId;
    use tether_deflate::{ContentCoding, StreamCoding};

    /// A gzip body of the pieces, inflated.
    fn inflate(pieces: &[&Piece]) -> Vec<u8> {
        let mut stream = StreamCoding::new(ContentCoding::Gzip);
        let mut body = stream.header().to_vec();
        for piece in pieces {
            stream.add(piece);
            body.extend_from_slice(piece.bytes());
        }
        body.extend_from_slice(&stream.trailer());
        let mut inflater = zlib_rs::Inflate::new(true, 31);
        let mut out = vec![0; 1 << 16];
        inflater
            .decompress(&body, &mut out, zlib_rs::InflateFlush::Finish)
            .unwrap();
        out.truncate(usize::try_from(inflater.total_out()).unwrap());
        out
    }

    #[test]
    fn pieces_inflate_to_the_plain_forms_and_are_made_once() {
        let data = "{\"symbol\":\"ACME\",\"bid\":101.25,\"ask\":101.5}\n".repeat(8);
        let event = Event::new(Arc::from("quotes"), EventId::new(3, 9), "quote", &data).unwrap();
        let pieces: Vec<_> = (0..2)
            .map(|_| {
                let event = Arc::clone(&event);
                std::thread::spawn(move || Arc::clone(event.sse_piece(64)))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert!(Arc::ptr_eq(&pieces[0], &pieces[1]));
        assert!(pieces[0].bytes().len() < event.sse().len() / 3);
        let multi = event.sse_multi_piece(64);
        assert!(Arc::ptr_eq(multi, event.sse_multi_piece(64)));
        assert_eq!(
            inflate(&[&pieces[0], multi]),
            [&event.sse()[..], &event.sse_multi()[..]].concat()
        );
        // Below the floor: stored, five bytes more than the event.
        let short = Event::new(Arc::from("t"), EventId::new(1, 1), "x", "hi").unwrap();
        assert_eq!(short.sse_piece(128).bytes().len(), short.sse().len() + 5);
        assert_eq!(inflate(&[short.sse_piece(128)]), &short.sse()[..]);
    }
}
