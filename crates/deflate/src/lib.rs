#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod accept;
mod codec;
mod error;
mod negotiate;
mod params;
mod quick;
mod shared;
mod stream;

pub use accept::{ContentCoding, MAX_ACCEPT_ENCODING_LEN, choose_coding};
pub use codec::{Deflate, MIN_SIZE_WITH_CONTEXT, MIN_SIZE_WITHOUT_CONTEXT, Role};
pub use error::Error;
pub use negotiate::{
    ClientOffer, ClientWindow, DeflateConfig, EXTENSION_NAME, accept_response, offer_header,
};
pub use params::{MAX_WINDOW_BITS, MIN_WINDOW_BITS, Params};
pub use shared::{shared_frame, window_bits_for};
pub use stream::{Piece, StreamCoding};
