//! Request and trailer field sections checked as RFC 9114 §4.2 and §4.3.1
//! ask, with the extended CONNECT of RFC 9220: the same rules as HTTP/2's
//! (RFC 9113 §8.2 and §8.3, RFC 8441), so the checks are tether-h2's,
//! named here for HTTP/3's callers.
//!
//! A malformed request is a stream error of type H3_MESSAGE_ERROR (RFC
//! 9114 §4.1.2): the request stream is reset, the connection goes on.
//! The result is tether-h2's [`Request`], so that both versions hand the
//! server the same type.
//!
//! ```
//! use tether_h2::hpack::Field;
//! use tether_h3::head::{Malformed, parse_request};
//!
//! let ws = vec![
//!     Field::new(":method", "CONNECT"),
//!     Field::new(":protocol", "websocket"),
//!     Field::new(":scheme", "https"),
//!     Field::new(":authority", "example.com"),
//!     Field::new(":path", "/ws"),
//! ];
//! // Without SETTINGS_ENABLE_CONNECT_PROTOCOL sent, `:protocol` is malformed.
//! assert_eq!(parse_request(ws.clone(), false), Err(Malformed::ConnectProtocolDisabled));
//! assert!(parse_request(ws, true).unwrap().is_extended_connect("websocket"));
//! ```

pub use tether_h2::connection::{Malformed, Request, check_trailers, content_length, parse_request};
