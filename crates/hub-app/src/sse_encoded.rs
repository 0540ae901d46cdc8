//! An event's event-stream forms as the server sends them: the plain
//! bytes, and the piece a compressed stream takes instead, made once per
//! event (not once per event loop) by whichever stream needs it first.

use std::sync::Arc;

use tether_hub::Event;
use tether_server::Encoded;

/// [`Event::sse`], with [`Event::sse_piece`] for compressed streams.
pub(crate) fn sse(event: &Arc<Event>) -> Encoded {
    let lazy = Arc::clone(event);
    Encoded::from(Arc::clone(event.sse())).with_sse_piece_lazy(move |min| Arc::clone(lazy.sse_piece(min)))
}

/// [`Event::sse_multi`], with [`Event::sse_multi_piece`] for compressed
/// streams.
pub(crate) fn sse_multi(event: &Arc<Event>) -> Encoded {
    let lazy = Arc::clone(event);
    Encoded::from(Arc::clone(event.sse_multi()))
        .with_sse_piece_lazy(move |min| Arc::clone(lazy.sse_multi_piece(min)))
}
