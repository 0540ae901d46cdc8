//! permessage-deflate (RFC 7692) for [tether-ws](tether_ws): the
//! negotiation in both roles and the extension that compresses outgoing
//! messages and inflates incoming ones.
//!
//! - **Server**: [`DeflateConfig`] holds the server's preferences (context
//!   takeover in each direction, window sizes, minimum message size,
//!   level) and is a `tether_handshake::ExtensionNegotiator`: register it
//!   with the handshake's `ServerConfig`, and every accepted upgrade hands
//!   back a boxed [`Deflate`] to install in the connection.
//! - **Client**: [`ClientOffer`] builds offers ([`offer_header`] joins
//!   several) and checks the server's answer ([`accept_response`]); the
//!   agreed [`Params`] make the client's [`Deflate`].
//!
//! Compression is zlib-rs (pure Rust, the zlib algorithms), chosen over
//! miniz_oxide by the comparison in `benches/README.md`: it is faster on
//! chat-sized messages and can honour every `server_max_window_bits` a
//! client asks for (8 through run-length-only compression, which refers back
//! one byte, since zlib refuses a raw 8-bit window).
//!
//! Inflating is bounded: output counts against tether-ws's message limit as
//! it is produced, so a few bytes that would inflate to gigabytes fail with
//! 1009 once the limit is reached, not after.
//!
//! ```
//! use tether_deflate::DeflateConfig;
//! use tether_handshake::{parse_request, ServerConfig, Status};
//!
//! let handshake: ServerConfig<Box<dyn tether_ws::Extension>> =
//!     ServerConfig::new().negotiator(DeflateConfig::new());
//! let request = b"GET / HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\
//!     Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
//! let Status::Complete((req, _)) = parse_request(request)? else { unreachable!() };
//! let accepted = handshake.accept(req.head()).expect("a valid upgrade");
//! let mut response = Vec::new();
//! accepted.write_response(&mut response, &[])?;
//! let response = String::from_utf8(response).unwrap();
//! assert!(response.contains(
//!     "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"
//! ));
//! // accepted.into_extension_values() now holds the Deflate to install.
//! # Ok::<(), tether_handshake::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod error;
mod negotiate;
mod shared;

pub use codec::{Deflate, MIN_SIZE_WITH_CONTEXT, MIN_SIZE_WITHOUT_CONTEXT, Role};
pub use error::Error;
pub use negotiate::{
    ClientOffer, ClientWindow, DeflateConfig, EXTENSION_NAME, MAX_WINDOW_BITS, MIN_WINDOW_BITS, Params,
    accept_response, offer_header,
};
pub use shared::{shared_frame, window_bits_for};
