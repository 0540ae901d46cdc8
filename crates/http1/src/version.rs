//! The HTTP versions, which the heads carry and the framing rules depend
//! on.

/// The HTTP versions spoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// HTTP/1.0: no chunked coding, no keep-alive unless asked for.
    Http10,
    /// HTTP/1.1.
    Http11,
}
