#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod accept;
mod client;
mod error;
mod extension;
mod http;
mod server;

pub use accept::{WEBSOCKET_GUID, WEBSOCKET_VERSION, accept_key};
pub use client::{ClientHandshake, ClientRequest, Response};
pub use error::Error;
pub use extension::{
    Extension, ExtensionNegotiator, ExtensionParam, ExtensionParams, NegotiatedExtension, NegotiationResult,
    parse_extensions,
};
pub use server::{
    Accepted, Cookies, DEFAULT_MAX_HEADERS, Policy, Rejection, Request, RequestHead, ServerConfig,
    UpgradeRequest, parse_request, parse_request_with,
};

/// The HTTP parser this crate reads heads with; its `Request` and `Header`
/// types appear in this crate's API.
pub use httparse;
/// `Complete` with a value, or `Partial` when more bytes are needed.
pub use httparse::Status;
