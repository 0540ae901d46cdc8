use core::fmt;

/// Everything that can go wrong, in one enum.
///
/// Most variants mean the peer broke HTTP/1.1; [`Error::status`] is then
/// the status a server answers a request with (after which it closes the
/// connection: once framing is in doubt, nothing that follows on the
/// connection can be trusted). A client that gets one of them from a
/// response drops the connection. [`Error::is_caller_error`] singles out
/// the variants that mean this program misused the API instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The head (request line or status line and the header section) is
    /// larger than [`Limits::max_head`](crate::limits::Limits::max_head). 431.
    HeadTooLarge,
    /// More header lines than the header array the caller passed holds.
    /// 431.
    TooManyHeaders,
    /// The head does not follow the grammar of RFC 9112 (this includes
    /// obs-fold, a header line continued on the next line, and a space
    /// before the colon); the text says where. 400.
    Malformed(&'static str),
    /// A well-formed `HTTP/x.y` version other than 1.0 and 1.1. 505.
    UnsupportedVersion,
    /// An HTTP/1.1 request without a `Host` header field. 400.
    MissingHost,
    /// A request with more than one `Host` field line, or one whose value
    /// is not a `host[:port]`. 400.
    BadHost,
    /// A request-target that is invalid, or whose form does not suit the
    /// method: `*` other than with `OPTIONS`, an authority other than with
    /// `CONNECT`, `CONNECT` with anything else, an absolute URI with a
    /// scheme other than http(s) or an empty host, a fragment. 400.
    BadTarget,
    /// A `Content-Length` that is not a decimal number, or a list of
    /// differing values. 400.
    BadContentLength,
    /// A request with both `Content-Length` and `Transfer-Encoding`: two
    /// framings, the classic request smuggling. 400, then close.
    ContentLengthWithTransferEncoding,
    /// A `Transfer-Encoding` whose framing cannot be determined: chunked
    /// not the final coding (RFC 9112 section 6.3 says 400 for a request),
    /// chunked applied twice, an empty list, or any `Transfer-Encoding` in
    /// an HTTP/1.0 message (section 6.1: "as if the framing is faulty").
    /// 400.
    BadTransferEncoding,
    /// Chunked is the final coding, but another coding it does not know
    /// (such as gzip) comes before it. 501.
    UnsupportedTransferCoding,
    /// The body is larger than [`Limits::max_body`](crate::limits::Limits::max_body), as declared by
    /// `Content-Length` (decided from the head, before any body is read)
    /// or as the chunks arrive. 413.
    BodyTooLarge,
    /// The chunked coding is broken; the text says how. 400.
    BadChunk(&'static str),
    /// A chunk size with more than 16 hex digits, or one that does not fit
    /// in 64 bits. 400.
    ChunkSizeOverflow,
    /// The trailer section is larger than [`Limits::max_head`](crate::limits::Limits::max_head).
    /// 431.
    TrailersTooLarge,
    /// An `Expect` header field with an expectation other than
    /// `100-continue`. 417.
    UnsupportedExpectation,
    /// The connection ended before the body did (a response body framed by
    /// `Content-Length` or chunked, cut short). No status: only a client
    /// sees this, from [`ResponseDecoder::finish`](crate::response::ResponseDecoder::finish).
    IncompleteBody,
    /// Caller error: a header name that is not a token, or a value with a
    /// CR, LF or NUL, given to a writer.
    InvalidHeader,
    /// Caller error: a header a writer sets itself (`Content-Length`,
    /// `Transfer-Encoding`, `Connection`) given to it as well.
    ReservedHeader,
    /// Caller error: a status code outside 100..=999, a method or target
    /// that cannot go on a request line, or a framing a request cannot
    /// have.
    InvalidArgument,
    /// Caller error: a decoder method called out of turn (a head while a
    /// body is still being read, or anything after the decoder stopped:
    /// after an error, after a message that closes the connection, after a
    /// `101 Switching Protocols`).
    WrongState,
}

impl Error {
    /// The status a server answers a request that caused this error with,
    /// or `None` for the errors a request cannot cause.
    ///
    /// ```
    /// assert_eq!(tether_http1::Error::HeadTooLarge.status(), Some(431));
    /// ```
    pub fn status(&self) -> Option<u16> {
        Some(match self {
            Error::HeadTooLarge | Error::TooManyHeaders | Error::TrailersTooLarge => 431,
            Error::Malformed(_)
            | Error::MissingHost
            | Error::BadHost
            | Error::BadTarget
            | Error::BadContentLength
            | Error::ContentLengthWithTransferEncoding
            | Error::BadTransferEncoding
            | Error::BadChunk(_)
            | Error::ChunkSizeOverflow => 400,
            Error::UnsupportedVersion => 505,
            Error::UnsupportedTransferCoding => 501,
            Error::BodyTooLarge => 413,
            Error::UnsupportedExpectation => 417,
            Error::IncompleteBody
            | Error::InvalidHeader
            | Error::ReservedHeader
            | Error::InvalidArgument
            | Error::WrongState => return None,
        })
    }

    /// Whether this program misused the API, rather than the peer
    /// breaking the protocol.
    pub fn is_caller_error(&self) -> bool {
        matches!(
            self,
            Error::InvalidHeader | Error::ReservedHeader | Error::InvalidArgument | Error::WrongState
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::HeadTooLarge => f.write_str("message head too large"),
            Error::TooManyHeaders => f.write_str("too many header fields"),
            Error::Malformed(what) => write!(f, "malformed message head: {what}"),
            Error::UnsupportedVersion => f.write_str("HTTP version not supported"),
            Error::MissingHost => f.write_str("HTTP/1.1 request without Host"),
            Error::BadHost => f.write_str("more than one Host, or an invalid one"),
            Error::BadTarget => f.write_str("invalid request-target for the method"),
            Error::BadContentLength => f.write_str("invalid Content-Length"),
            Error::ContentLengthWithTransferEncoding => {
                f.write_str("both Content-Length and Transfer-Encoding")
            }
            Error::BadTransferEncoding => f.write_str("Transfer-Encoding with undeterminable framing"),
            Error::UnsupportedTransferCoding => f.write_str("unsupported transfer coding"),
            Error::BodyTooLarge => f.write_str("body too large"),
            Error::BadChunk(what) => write!(f, "bad chunked coding: {what}"),
            Error::ChunkSizeOverflow => f.write_str("chunk size too large"),
            Error::TrailersTooLarge => f.write_str("trailer section too large"),
            Error::UnsupportedExpectation => f.write_str("unsupported expectation"),
            Error::IncompleteBody => f.write_str("connection closed before the body ended"),
            Error::InvalidHeader => f.write_str("invalid header name or value"),
            Error::ReservedHeader => f.write_str("header set by the writer itself"),
            Error::InvalidArgument => f.write_str("invalid argument"),
            Error::WrongState => f.write_str("decoder method called out of turn"),
        }
    }
}

impl core::error::Error for Error {}
