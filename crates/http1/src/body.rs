//! Body framing: a length, the chunked coding, or the end of the
//! connection, decoded incrementally.

use alloc::vec::Vec;

use crate::error::Error;

/// How a message body is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (a request with neither `Content-Length`
    /// nor `Transfer-Encoding`, and a response that cannot have a body,
    /// have `Length(0)`).
    Length(u64),
    /// The chunked transfer coding (RFC 9112 section 7.1).
    Chunked,
    /// Until the peer closes the connection (responses only).
    UntilClose,
}

/// The longest chunk-size line, extensions included, that is accepted.
const MAX_CHUNK_LINE: usize = 4096;

/// An incremental body decoder: feed it bytes, it says how many it used
/// and whether the body is complete. It never reads past the body's end,
/// so whatever follows (a pipelined request) stays in the caller's buffer.
///
/// [`RequestDecoder`](crate::request::RequestDecoder) and [`ResponseDecoder`](crate::response::ResponseDecoder) drive one; it
/// is public for callers that frame bodies on their own.
///
/// ```
/// use tether_http1::{BodyDecoder, Framing};
///
/// let mut body = BodyDecoder::new(Framing::Chunked, 1024, 16 * 1024);
/// let mut out = Vec::new();
/// let wire = b"5\r\nhello\r\n0\r\n\r\nGET /next HTTP/1.1\r\n";
/// let (used, done) = body.decode(wire, &mut out)?;
/// assert!(done);
/// assert_eq!(out, b"hello");
/// assert_eq!(&wire[used..], b"GET /next HTTP/1.1\r\n");
/// # Ok::<(), tether_http1::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyDecoder {
    state: State,
    /// Body bytes so far.
    total: u64,
    max_body: u64,
    max_trailers: usize,
    /// Whether a bare LF ends a chunk line (RFC 9112 section 2.2 allows
    /// it; a server refuses it, since two parsers that disagree on line
    /// ends disagree on where a request ends).
    bare_lf: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length {
        remaining: u64,
    },
    UntilClose,
    /// Reading the chunk size's hex digits.
    Size {
        size: u64,
        digits: u8,
    },
    /// After the size: whitespace and extensions up to the line end.
    Extension {
        size: u64,
        len: usize,
    },
    /// After the CR of the size line.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// In the trailer section: the bytes of the current line and of all.
    Trailer {
        line: usize,
        total: usize,
    },
    TrailerLf {
        line: usize,
        total: usize,
    },
    Done,
}

impl BodyDecoder {
    /// A decoder for a body framed by `framing`, refusing more than
    /// `max_body` body bytes (413) and a trailer section larger than
    /// `max_trailers` (431). Chunk lines must end in CRLF.
    pub fn new(framing: Framing, max_body: u64, max_trailers: usize) -> BodyDecoder {
        let state = match framing {
            Framing::Length(0) => State::Done,
            Framing::Length(remaining) => State::Length { remaining },
            Framing::Chunked => State::Size { size: 0, digits: 0 },
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder {
            state,
            total: 0,
            max_body,
            max_trailers,
            bare_lf: false,
        }
    }

    /// Accept a bare LF where the chunked coding has CRLF (what a client
    /// may do with a lax server's responses).
    pub fn allow_bare_lf(mut self, allow: bool) -> BodyDecoder {
        self.bare_lf = allow;
        self
    }

    /// Whether the whole body has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Body bytes decoded so far.
    pub fn decoded(&self) -> u64 {
        self.total
    }

    /// Decodes from the start of `input`, appending body bytes to `out`.
    /// Returns how many bytes of `input` it used and whether the body is
    /// complete; it stops at the body's end. Needs more input when it
    /// returns `(n, false)` (it then used all of `input`).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), Error> {
        self.decode_with(input, &mut |bytes| out.extend_from_slice(bytes))
    }

    /// [`BodyDecoder::decode`] handing each run of body bytes to `sink`
    /// instead: slices of `input`, no copy.
    pub fn decode_with(&mut self, input: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<(usize, bool), Error> {
        let mut rest = input;
        while self.state != State::Done {
            let Some(&b) = rest.first() else { break };
            let used = self.step(b, rest, sink)?;
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok((input.len().saturating_sub(rest.len()), self.state == State::Done))
    }

    /// Tells the decoder the connection has ended: fine for a body read
    /// until close (which is then complete), [`Error::IncompleteBody`] for
    /// one that is not complete.
    pub fn finish(&mut self) -> Result<(), Error> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(Error::IncompleteBody),
        }
    }

    fn add(&mut self, n: u64) -> Result<(), Error> {
        match self.total.checked_add(n) {
            Some(total) if total <= self.max_body => {
                self.total = total;
                Ok(())
            }
            _ => Err(Error::BodyTooLarge),
        }
    }

    /// One step on `rest`, which starts with `b`: how many bytes it used.
    fn step(&mut self, b: u8, rest: &[u8], sink: &mut dyn FnMut(&[u8])) -> Result<usize, Error> {
        use State::*;
        let bad = Error::BadChunk;
        self.state = match self.state {
            Length { remaining } | Data { remaining } => {
                let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(rest.len());
                let (bytes, _) = rest.split_at_checked(take).unwrap_or((rest, &[]));
                if matches!(self.state, Length { .. }) {
                    // A chunk's size was counted when it was announced.
                    self.add(take as u64)?;
                }
                sink(bytes);
                let remaining = remaining.saturating_sub(take as u64);
                self.state = match (self.state, remaining) {
                    (Length { .. }, 0) => Done,
                    (Length { .. }, remaining) => Length { remaining },
                    (_, 0) => DataCr,
                    (_, remaining) => Data { remaining },
                };
                return Ok(take);
            }
            UntilClose => {
                self.add(rest.len() as u64)?;
                sink(rest);
                return Ok(rest.len());
            }
            Size { size, digits } => match hex(b) {
                Some(d) => {
                    let size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(d))
                        .filter(|_| digits < 16)
                        .ok_or(Error::ChunkSizeOverflow)?;
                    Size {
                        size,
                        digits: digits.saturating_add(1),
                    }
                }
                None if digits == 0 => return Err(bad("no chunk size")),
                None => {
                    // The whole chunk counts against the limit before any of
                    // it is read.
                    self.add(size)?;
                    match b {
                        b';' | b' ' | b'\t' => Extension { size, len: 1 },
                        b'\r' => SizeLf { size },
                        b'\n' if self.bare_lf => self.after_size(size),
                        _ => return Err(bad("invalid byte after the chunk size")),
                    }
                }
            },
            // chunk-ext is accepted and ignored: any visible bytes,
            // whitespace and obs-text up to the line end.
            Extension { size, len } => match b {
                b'\r' => SizeLf { size },
                b'\n' if self.bare_lf => self.after_size(size),
                _ if len >= MAX_CHUNK_LINE => return Err(bad("chunk extension too long")),
                b'\t' | b' '..=b'~' | 0x80.. => Extension {
                    size,
                    len: len.saturating_add(1),
                },
                _ => return Err(bad("control byte in a chunk extension")),
            },
            SizeLf { size } => match b {
                b'\n' => self.after_size(size),
                _ => return Err(bad("CR without LF after the chunk size")),
            },
            DataCr => match b {
                b'\r' => DataLf,
                b'\n' if self.bare_lf => Size { size: 0, digits: 0 },
                _ => return Err(bad("no CRLF after the chunk data")),
            },
            DataLf => match b {
                b'\n' => Size { size: 0, digits: 0 },
                _ => return Err(bad("CR without LF after the chunk data")),
            },
            Trailer { line, total } => {
                let total = total.saturating_add(1);
                if total > self.max_trailers {
                    return Err(Error::TrailersTooLarge);
                }
                match b {
                    b'\r' => TrailerLf { line, total },
                    b'\n' if self.bare_lf && line == 0 => Done,
                    b'\n' if self.bare_lf => Trailer { line: 0, total },
                    b'\t' | b' '..=b'~' | 0x80.. => Trailer {
                        line: line.saturating_add(1),
                        total,
                    },
                    _ => return Err(bad("control byte in the trailer section")),
                }
            }
            TrailerLf { line, total } => match b {
                b'\n' if line == 0 => Done,
                b'\n' => Trailer { line: 0, total },
                _ => return Err(bad("CR without LF in the trailer section")),
            },
            Done => return Ok(0),
        };
        Ok(1)
    }

    fn after_size(&self, size: u64) -> State {
        if size == 0 {
            State::Trailer { line: 0, total: 0 }
        } else {
            State::Data { remaining: size }
        }
    }
}

fn hex(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}
