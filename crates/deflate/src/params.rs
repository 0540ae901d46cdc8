//! What the two ends agreed on, and the window sizes RFC 7692 allows: what
//! the negotiation produces and the codec consumes, below both (the
//! negotiation's reading of a response, [`Params::from_response`], stays
//! with the rest of the negotiation).

/// The smallest LZ77 window RFC 7692 allows, as a base-2 logarithm (256
/// bytes).
pub const MIN_WINDOW_BITS: u8 = 8;
/// The largest LZ77 window, as a base-2 logarithm (32 KiB), and the one in
/// force when a window parameter is absent.
pub const MAX_WINDOW_BITS: u8 = 15;

/// What both ends agreed on for one connection (RFC 7692 section 7.1).
///
/// The server's negotiator and the client's response check produce it;
/// [`Deflate::new`](crate::codec::Deflate::new) takes it. The window sizes are base-2 logarithms from 8
/// to 15 (15 when the parameter was absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The server compresses every message on its own (empties its LZ77
    /// window after each).
    pub server_no_context_takeover: bool,
    /// The client compresses every message on its own.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window the server may compress with.
    pub server_max_window_bits: u8,
    /// The largest LZ77 window the client may compress with.
    pub client_max_window_bits: u8,
}

impl Default for Params {
    /// A bare `permessage-deflate`: context kept, 32 KiB windows.
    fn default() -> Params {
        Params {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
        }
    }
}
