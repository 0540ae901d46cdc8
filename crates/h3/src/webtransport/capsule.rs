//! The capsules a WebTransport session's CONNECT stream carries in its
//! DATA frames (RFC 9297 §3.2: type, length, value), as a server reads
//! them.
//!
//! Only CLOSE_WEBTRANSPORT_SESSION (draft §5: a 32-bit code and a UTF-8
//! reason of at most 1024 bytes) is kept and parsed; every other capsule
//! (DRAIN_WEBTRANSPORT_SESSION, unknown and grease types) is skipped
//! without being buffered, so a reader holds at most the largest close
//! capsule.

use crate::error::{Error, ErrorCode, Misuse, Violation};
use crate::varint;
use crate::varint::VarintReader;

/// CLOSE_WEBTRANSPORT_SESSION (draft-ietf-webtrans-http3 §5).
pub const CLOSE_WEBTRANSPORT_SESSION: u64 = 0x2843;

/// DRAIN_WEBTRANSPORT_SESSION (draft-ietf-webtrans-http3 §4.7).
pub const DRAIN_WEBTRANSPORT_SESSION: u64 = 0x78ae;

/// The longest reason a CLOSE_WEBTRANSPORT_SESSION may carry.
pub const MAX_CLOSE_REASON: usize = 1024;

/// A session's close: the application's code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The application error code.
    pub code: u32,
    /// Why, UTF-8.
    pub reason: String,
}

/// What a capsule said that matters to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capsule {
    /// The peer closes the session (CLOSE_WEBTRANSPORT_SESSION).
    Close(Close),
    /// The peer asks that the session be wound down
    /// (DRAIN_WEBTRANSPORT_SESSION).
    Drain,
}

#[derive(Debug, Clone)]
enum State {
    Type,
    Length {
        capsule_type: u64,
    },
    /// The value of a close capsule, gathered.
    Close {
        remaining: usize,
    },
    /// The value of any other capsule, skipped.
    Skip {
        remaining: u64,
        drain: bool,
    },
}

/// Reads a CONNECT stream's capsules from its DATA payloads, in pieces of
/// any size.
#[derive(Debug, Clone)]
pub struct CapsuleReader {
    varint: VarintReader,
    state: State,
    value: Vec<u8>,
}

impl Default for CapsuleReader {
    fn default() -> CapsuleReader {
        CapsuleReader::new()
    }
}

fn malformed() -> Error {
    Error::new(ErrorCode::H3_MESSAGE_ERROR, Violation::MalformedCapsule)
}

impl CapsuleReader {
    /// A reader at the start of the stream's capsules.
    pub const fn new() -> CapsuleReader {
        CapsuleReader {
            varint: VarintReader::new(),
            state: State::Type,
            value: Vec::new(),
        }
    }

    /// Reads `src`, appending each capsule that matters to `out`. An `Err`
    /// (a close capsule too short or too long, a reason not UTF-8) is the
    /// CONNECT stream's error: the session is over.
    pub fn feed(&mut self, mut src: &[u8], out: &mut Vec<Capsule>) -> Result<(), Error> {
        while !src.is_empty() {
            match &mut self.state {
                State::Type => {
                    let (used, value) = self.varint.feed(src);
                    src = src.get(used..).unwrap_or_default();
                    if let Some(capsule_type) = value {
                        self.state = State::Length { capsule_type };
                    }
                }
                State::Length { capsule_type } => {
                    let capsule_type = *capsule_type;
                    let (used, value) = self.varint.feed(src);
                    src = src.get(used..).unwrap_or_default();
                    let Some(len) = value else { continue };
                    self.state = if capsule_type == CLOSE_WEBTRANSPORT_SESSION {
                        if !(4..=4 + MAX_CLOSE_REASON as u64).contains(&len) {
                            return Err(malformed());
                        }
                        State::Close {
                            remaining: usize::try_from(len).map_err(|_| malformed())?,
                        }
                    } else {
                        State::Skip {
                            remaining: len,
                            drain: capsule_type == DRAIN_WEBTRANSPORT_SESSION,
                        }
                    };
                    self.value_done(out)?;
                }
                State::Close { remaining } => {
                    let n = (*remaining).min(src.len());
                    self.value.extend_from_slice(src.get(..n).unwrap_or_default());
                    *remaining -= n;
                    src = src.get(n..).unwrap_or_default();
                    self.value_done(out)?;
                }
                State::Skip { remaining, .. } => {
                    let n = usize::try_from(*remaining).unwrap_or(usize::MAX).min(src.len());
                    *remaining -= n as u64;
                    src = src.get(n..).unwrap_or_default();
                    self.value_done(out)?;
                }
            }
        }
        Ok(())
    }

    /// A capsule whose value is complete is handed out, and the next one
    /// begins.
    fn value_done(&mut self, out: &mut Vec<Capsule>) -> Result<(), Error> {
        match self.state {
            State::Close { remaining: 0 } => {
                let value = std::mem::take(&mut self.value);
                let (code, reason) = value.split_at_checked(4).ok_or_else(malformed)?;
                let code = u32::from_be_bytes(code.try_into().map_err(|_| malformed())?);
                let reason = String::from_utf8(reason.to_vec()).map_err(|_| malformed())?;
                out.push(Capsule::Close(Close { code, reason }));
                self.state = State::Type;
            }
            State::Skip { remaining: 0, drain } => {
                if drain {
                    out.push(Capsule::Drain);
                }
                self.state = State::Type;
            }
            _ => {}
        }
        Ok(())
    }

    /// The stream ended: an `Err` if it ended inside a capsule.
    pub fn finish(&self) -> Result<(), Error> {
        match self.state {
            State::Type if self.varint.is_empty() => Ok(()),
            _ => Err(malformed()),
        }
    }
}

/// Appends a CLOSE_WEBTRANSPORT_SESSION capsule (its reason cut to 1024
/// bytes at a character boundary).
pub fn encode_close(close: &Close, dst: &mut Vec<u8>) -> Result<(), Misuse> {
    let mut end = close.reason.len().min(MAX_CLOSE_REASON);
    while !close.reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = close.reason.get(..end).unwrap_or_default();
    varint::encode(CLOSE_WEBTRANSPORT_SESSION, dst)?;
    varint::encode(4 + reason.len() as u64, dst)?;
    dst.extend_from_slice(&close.code.to_be_bytes());
    dst.extend_from_slice(reason.as_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_in_pieces(wire: &[u8], piece: usize) -> Result<Vec<Capsule>, Error> {
        let mut reader = CapsuleReader::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(piece) {
            reader.feed(chunk, &mut out)?;
        }
        reader.finish()?;
        Ok(out)
    }

    #[test]
    fn close_capsule_round_trips_in_any_pieces_and_others_are_skipped() {
        let mut wire = Vec::new();
        // A grease capsule first, a drain, then the close.
        varint::encode(0x1f * 7 + 0x21, &mut wire).unwrap();
        varint::encode(3, &mut wire).unwrap();
        wire.extend_from_slice(b"abc");
        varint::encode(DRAIN_WEBTRANSPORT_SESSION, &mut wire).unwrap();
        varint::encode(0, &mut wire).unwrap();
        let close = Close {
            code: 0xdead_beef,
            reason: "bye ✓".to_owned(),
        };
        encode_close(&close, &mut wire).unwrap();
        for piece in [1, 2, 3, 7, wire.len()] {
            assert_eq!(
                read_in_pieces(&wire, piece).unwrap(),
                [Capsule::Drain, Capsule::Close(close.clone())],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn long_reasons_are_cut_when_sent_and_refused_when_received() {
        let close = Close {
            code: 1,
            reason: "é".repeat(600),
        };
        let mut wire = Vec::new();
        encode_close(&close, &mut wire).unwrap();
        let got = read_in_pieces(&wire, 5).unwrap();
        let [Capsule::Close(got)] = &got[..] else {
            panic!("{got:?}")
        };
        assert_eq!(got.reason.len(), 1024);
        let mut too_long = Vec::new();
        varint::encode(CLOSE_WEBTRANSPORT_SESSION, &mut too_long).unwrap();
        varint::encode(4 + 1025, &mut too_long).unwrap();
        assert_eq!(
            read_in_pieces(&too_long, 1).unwrap_err().violation,
            Violation::MalformedCapsule
        );
        // Shorter than its code, a reason not UTF-8, and a stream ending
        // inside a capsule.
        for bad in [
            &[0x68, 0x43, 0x03, 0, 0, 0][..],
            &[0x68, 0x43, 0x05, 0, 0, 0, 0, 0xff][..],
            &[0x68, 0x43, 0x05, 0, 0][..],
            &[0x68][..],
        ] {
            assert!(read_in_pieces(bad, 1).is_err(), "{bad:?}");
        }
    }
}
