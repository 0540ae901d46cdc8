//! An event stream's content coding, the same for every carrier: chosen
//! from the request's `Accept-Encoding` when the stream opens, then every
//! byte written to the stream goes through it. Broadcast bytes go as a
//! piece compressed once and shared (see [`Encoded::with_sse_piece_lazy`]);
//! what only this stream is sent (its `retry:` hint, heartbeats, an event
//! sent to it alone) is compressed here, for it. The stream keeps only
//! its coding and the checksum of what it was sent, for the trailer
//! written when the server ends it.
//!
//! A stream cut short (a slow consumer, a reset, a dropped connection)
//! gets no trailer: its client sees a broken body, as it would without
//! compression, and reconnects; every event before the cut was flushed
//! whole and is read.

use std::sync::Arc;

use crate::app::Encoded;
use crate::config::Config;
use crate::request::Request;

#[cfg(feature = "deflate")]
pub(crate) use tether_deflate::StreamCoding as Coding;

/// Without the `deflate` feature no stream is compressed: there is no
/// coding to hold.
#[cfg(not(feature = "deflate"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {}

/// The coding of a stream opening for `request`, if the server
/// compresses event streams, the application lets this one be, and the
/// client accepts gzip or deflate; and the head's fields that say so
/// (`Vary: Accept-Encoding` whenever the server compresses streams, since
/// the answer depends on it).
pub(crate) fn negotiate(
    config: &Config,
    request: &Request<'_>,
    allowed: bool,
    headers: &mut Vec<(String, String)>,
) -> Option<Coding> {
    if !config.sse_compression {
        return None;
    }
    headers.push(("vary".to_owned(), "accept-encoding".to_owned()));
    choose(request, allowed, headers)
}

#[cfg(feature = "deflate")]
fn choose(request: &Request<'_>, allowed: bool, headers: &mut Vec<(String, String)>) -> Option<Coding> {
    if !allowed {
        return None;
    }
    let field = request.header_list("accept-encoding")?;
    let coding = tether_deflate::choose_coding(field.as_bytes())?;
    headers.push(("content-encoding".to_owned(), coding.name().to_owned()));
    Some(Coding::new(coding))
}

#[cfg(not(feature = "deflate"))]
fn choose(_: &Request<'_>, _: bool, _: &mut Vec<(String, String)>) -> Option<Coding> {
    None
}

/// A stream's first bytes: the format's header and `hint` (its `retry:`
/// line), for it alone.
pub(crate) fn opening(coding: &mut Coding, hint: &[u8]) -> Vec<u8> {
    #[cfg(feature = "deflate")]
    {
        let piece = tether_deflate::Piece::stored(hint);
        coding.add(&piece);
        [coding.header(), &piece.bytes()[..]].concat()
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = hint;
        match *coding {}
    }
}

/// The bytes of `encoded` for a stream in `coding`: its shared piece
/// (made by the first stream that needs it), or, for bytes sent without
/// one, a piece made now; bytes shorter than `min_size` go uncompressed
/// in stored blocks.
pub(crate) fn shared(coding: &mut Coding, encoded: &Encoded, min_size: usize) -> Arc<[u8]> {
    #[cfg(feature = "deflate")]
    {
        let piece = encoded.sse_piece(min_size);
        coding.add(&piece);
        Arc::clone(piece.bytes())
    }
    #[cfg(not(feature = "deflate"))]
    {
        let _ = (encoded, min_size);
        match *coding {}
    }
}

/// A heartbeat comment, the same bytes for every stream.
pub(crate) fn heartbeat(coding: &mut Coding) -> Arc<[u8]> {
    #[cfg(feature = "deflate")]
    {
        static HEARTBEAT: std::sync::OnceLock<tether_deflate::Piece> = std::sync::OnceLock::new();
        let piece = HEARTBEAT.get_or_init(|| {
            let mut comment = Vec::with_capacity(4);
            tether_sse::heartbeat(&mut comment);
            tether_deflate::Piece::stored(&comment)
        });
        coding.add(piece);
        Arc::clone(piece.bytes())
    }
    #[cfg(not(feature = "deflate"))]
    match *coding {}
}

/// The last bytes of a stream the server ends: the final block and the
/// checksum of all it was sent.
pub(crate) fn trailer(coding: &Coding) -> Vec<u8> {
    #[cfg(feature = "deflate")]
    {
        coding.trailer()
    }
    #[cfg(not(feature = "deflate"))]
    match *coding {}
}
