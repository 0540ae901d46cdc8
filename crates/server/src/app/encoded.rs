//! A message encoded once for every session it goes to: the WebSocket
//! frame or event-stream bytes, and the compressed twin made when a
//! session takes it.

use std::sync::Arc;

use tether_ws::MessageRef;

/// An encoded WebSocket frame or SSE event, shared by every connection it
/// is sent to: encoded once, never copied per subscriber.
///
/// # Compressed fan-out
///
/// A WebSocket frame may carry a compressed twin (permessage-deflate, RFC
/// 7692): the same message compressed once on its own, with RSV1 set.
/// Each WebSocket session it is sent to gets the twin if its handshake
/// agreed on permessage-deflate with `server_no_context_takeover` (what
/// the server's `DeflateConfig` answers by default) and a
/// `server_max_window_bits` large enough for the message
/// (`tether_deflate::window_bits_for`, 15 takes any); every other session
/// gets the plain frame, as does a session that negotiated context
/// takeover (its peer's window must follow the server's own compressor,
/// which a frame compressed elsewhere would break). Nothing is compressed
/// per session, and neither frame is copied.
///
/// # Compressed event streams
///
/// An event stream that negotiated a content coding
/// (`Config::sse_compression`) is sent SSE bytes as deflate blocks that
/// stand alone: the shared piece [`Encoded::with_sse_piece_lazy`] adds,
/// made once for every stream, or else a piece made for each stream.
/// Other event streams get the plain bytes.
///
#[cfg_attr(
    feature = "deflate",
    doc = "[`Encoded::ws_deflated`] makes both at once (feature `deflate`);"
)]
#[cfg_attr(
    not(feature = "deflate"),
    doc = "`Encoded::ws_deflated` makes both at once (feature `deflate`);"
)]
/// [`Encoded::with_deflated`] adds a twin made elsewhere, and
/// [`Encoded::with_deflated_lazy`] one made only if some session needs it
/// (the hub compresses each event this way).
///
/// ```
/// # #[cfg(feature = "deflate")] {
/// use tether_server::{ConnId, Ctx, Encoded, Message};
///
/// /// Sends one quote to every subscriber: compressed once for those that
/// /// can take it, plain for the others.
/// fn broadcast(ctx: &mut Ctx<'_>, subscribers: &[ConnId], quote: &str) {
///     let encoded = Encoded::ws_deflated(&Message::text(quote));
///     ctx.send_encoded(subscribers.iter().copied(), &encoded);
/// }
///
/// let quote = "{\"symbol\":\"ACME\",\"bid\":101.25,\"ask\":101.5}".repeat(10);
/// let encoded = Encoded::ws_deflated(&Message::text(quote.as_str()));
/// assert_eq!(encoded.as_bytes()[0], 0x81); // the plain frame
/// assert_eq!(encoded.deflated().expect("it shrinks")[0], 0xC1); // FIN, RSV1, text
/// # let _ = broadcast;
/// # }
/// ```
#[derive(Clone)]
pub struct Encoded {
    pub(crate) bytes: Arc<[u8]>,
    deflated: Option<Deflated>,
    /// Makes the compressed piece of event-stream bytes.
    #[cfg(feature = "deflate")]
    sse_piece: Option<Arc<LazyPiece>>,
}

/// What makes the shared compressed piece of event-stream bytes, given
/// the size below which they are stored rather than compressed.
#[cfg(feature = "deflate")]
type MakePiece = dyn Fn(usize) -> Arc<tether_deflate::Piece> + Send + Sync;

/// A piece made on first need, at most once per [`Encoded`] (and its
/// clones).
#[cfg(feature = "deflate")]
struct LazyPiece {
    piece: std::sync::OnceLock<Arc<tether_deflate::Piece>>,
    make: Box<MakePiece>,
}

/// The compressed twin of a plain frame.
#[derive(Clone)]
struct Deflated {
    /// The smallest `server_max_window_bits` it is valid under.
    window_bits: u8,
    frame: DeflatedFrame,
}

#[derive(Clone)]
enum DeflatedFrame {
    Ready(Arc<[u8]>),
    Lazy(Arc<LazyFrame>),
}

/// A twin made on first need, at most once per [`Encoded`] (and its
/// clones).
struct LazyFrame {
    frame: std::sync::OnceLock<Option<Arc<[u8]>>>,
    make: Box<dyn Fn() -> Option<Arc<[u8]>> + Send + Sync>,
}

impl std::fmt::Debug for Encoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let deflated = self.deflated.as_ref().map(|d| match &d.frame {
            DeflatedFrame::Ready(frame) => format!("{} bytes", frame.len()),
            DeflatedFrame::Lazy(lazy) => match lazy.frame.get() {
                None => "not yet made".to_owned(),
                Some(None) => "none (does not shrink)".to_owned(),
                Some(Some(frame)) => format!("{} bytes", frame.len()),
            },
        });
        f.debug_struct("Encoded")
            .field("len", &self.bytes.len())
            .field("deflated", &deflated)
            .finish()
    }
}

/// The window a frame's payload needs when compressed on its own; the
/// frame's whole length stands for its payload's (a bound, never less).
fn window_bits_for(frame_len: usize) -> u8 {
    (8u8..15).find(|&bits| frame_len <= 1usize << bits).unwrap_or(15)
}

impl Encoded {
    /// Encodes a message as one unmasked WebSocket frame (server to
    /// client).
    pub fn ws<'m>(message: impl Into<MessageRef<'m>>) -> Encoded {
        let message = message.into();
        let opcode = if message.is_text() {
            tether_frame::OpCode::Text
        } else {
            tether_frame::OpCode::Binary
        };
        let payload = message.as_bytes();
        let header = tether_frame::FrameHeader::new(true, opcode, payload.len() as u64).to_bytes();
        let mut bytes = Vec::with_capacity(header.len() + payload.len());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(payload);
        Encoded::from(Arc::<[u8]>::from(bytes))
    }

    /// Encodes a message as [`Encoded::ws`] does, and compresses it once
    /// as its twin for sessions that can take it (see **Compressed
    /// fan-out** above; none if it does not shrink). The compression is
    /// done now, whoever it is sent to: to compress only when needed, use
    /// [`Encoded::with_deflated_lazy`].
    #[cfg(feature = "deflate")]
    pub fn ws_deflated<'m>(message: impl Into<MessageRef<'m>>) -> Encoded {
        let message = message.into();
        let opcode = if message.is_text() {
            tether_frame::OpCode::Text
        } else {
            tether_frame::OpCode::Binary
        };
        let deflated = tether_deflate::shared_frame(opcode, message.as_bytes());
        let encoded = Encoded::ws(message);
        match deflated {
            Some(frame) => encoded.with_deflated(frame.into()),
            None => encoded,
        }
    }

    /// The same frame with a compressed twin made elsewhere: one whole,
    /// final, unmasked frame with RSV1 set whose payload is this frame's
    /// payload compressed on its own, as RFC 7692 section 7.2.1 says (a
    /// fresh LZ77 window, the sync flush's `00 00 ff ff` removed), such as
    /// `tether_deflate::shared_frame` makes. It is sent as it is, unchecked.
    pub fn with_deflated(mut self, frame: Arc<[u8]>) -> Encoded {
        self.deflated = Some(Deflated {
            window_bits: window_bits_for(self.bytes.len()),
            frame: DeflatedFrame::Ready(frame),
        });
        self
    }

    /// The same frame with a compressed twin (as [`Encoded::with_deflated`]
    /// takes) that `make` returns the first time a session can take it:
    /// called at most once for this value and its clones, never if no
    /// such session is sent to. `None` from it sends the plain frame
    /// to all.
    pub fn with_deflated_lazy(
        mut self,
        make: impl Fn() -> Option<Arc<[u8]>> + Send + Sync + 'static,
    ) -> Encoded {
        self.deflated = Some(Deflated {
            window_bits: window_bits_for(self.bytes.len()),
            frame: DeflatedFrame::Lazy(Arc::new(LazyFrame {
                frame: std::sync::OnceLock::new(),
                make: Box::new(make),
            })),
        });
        self
    }

    /// The same event-stream bytes with their compressed piece for
    /// streams that negotiated a content coding (`Config::sse_compression`):
    /// `make` returns the bytes as deflate blocks standing alone
    /// ([`tether_deflate::Piece::new`], given the size below which the
    /// piece should be stored rather than compressed), and is called at
    /// most once for this value and its clones, by the first compressed
    /// stream it is sent to, never if none is. An application that sends
    /// the same bytes in many values (one per event loop, say) caches the
    /// piece itself, so that the bytes are compressed once in all. Bytes
    /// sent without a piece are compressed for each compressed stream
    /// they go to.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tether_server::Encoded;
    /// use tether_server::deflate::Piece;
    ///
    /// let event: Arc<[u8]> = Arc::from(&b"data: {\"bid\":101.25}\n\n"[..]);
    /// let bytes = Arc::clone(&event);
    /// let encoded = Encoded::from(event).with_sse_piece_lazy(move |min| Arc::new(Piece::new(&bytes, min)));
    /// # let _ = encoded;
    /// ```
    #[cfg(feature = "deflate")]
    pub fn with_sse_piece_lazy(
        mut self,
        make: impl Fn(usize) -> Arc<tether_deflate::Piece> + Send + Sync + 'static,
    ) -> Encoded {
        self.sse_piece = Some(Arc::new(LazyPiece {
            piece: std::sync::OnceLock::new(),
            make: Box::new(make),
        }));
        self
    }

    /// The compressed piece of these event-stream bytes: the shared one,
    /// or one made now.
    #[cfg(feature = "deflate")]
    pub(crate) fn sse_piece(&self, min_size: usize) -> Arc<tether_deflate::Piece> {
        match &self.sse_piece {
            Some(lazy) => Arc::clone(lazy.piece.get_or_init(|| (lazy.make)(min_size))),
            None => Arc::new(tether_deflate::Piece::new(&self.bytes, min_size)),
        }
    }

    /// Encodes an SSE event.
    pub fn sse(event: &tether_sse::Event<'_>) -> Result<Encoded, tether_sse::Error> {
        let mut bytes = Vec::new();
        event.encode(&mut bytes)?;
        Ok(Encoded::from(Arc::<[u8]>::from(bytes)))
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The compressed twin, if there is one (making it now if it is made
    /// lazily).
    pub fn deflated(&self) -> Option<&Arc<[u8]>> {
        match &self.deflated.as_ref()?.frame {
            DeflatedFrame::Ready(frame) => Some(frame),
            DeflatedFrame::Lazy(lazy) => lazy.frame.get_or_init(|| (lazy.make)()).as_ref(),
        }
    }

    /// The bytes for a WebSocket session that takes compressed twins made
    /// with windows up to `window_bits` (0: none), and whether they are
    /// the twin.
    pub(crate) fn for_session(&self, window_bits: u8) -> (&Arc<[u8]>, bool) {
        if self
            .deflated
            .as_ref()
            .is_some_and(|d| window_bits >= d.window_bits)
            && let Some(frame) = self.deflated()
        {
            return (frame, true);
        }
        (&self.bytes, false)
    }
}

/// Bytes encoded elsewhere (a hub event's frame, say), shared as they
/// are: no copy. They must be what the receiving connections expect: whole
/// server-to-client WebSocket frames, or whole SSE events.
///
/// ```
/// use std::sync::Arc;
/// use tether_server::Encoded;
///
/// let frame: Arc<[u8]> = Arc::from(&[0x81, 0x02, b'h', b'i'][..]);
/// let encoded = Encoded::from(frame.clone());
/// assert!(std::ptr::eq(encoded.as_bytes(), &frame[..]));
/// ```
impl From<Arc<[u8]>> for Encoded {
    fn from(bytes: Arc<[u8]>) -> Encoded {
        Encoded {
            bytes,
            deflated: None,
            #[cfg(feature = "deflate")]
            sse_piece: None,
        }
    }
}
