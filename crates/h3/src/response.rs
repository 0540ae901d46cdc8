//! The framing of a response on a request stream, as a client reads it
//! (RFC 9114 §4.1).
//!
//! A response is any number of informational (1xx) HEADERS frames, one
//! final HEADERS frame, any number of DATA frames, and optionally one more
//! HEADERS frame holding trailers, after which the stream ends. Frames of
//! unknown and reserved types may come anywhere and are skipped. Anything
//! else — DATA before the final HEADERS, a frame after the trailers, a
//! control-stream frame, a PUSH_PROMISE (this client never allows a push)
//! — is an H3_FRAME_UNEXPECTED.
//!
//! The framing cannot tell an informational head from the final one: the
//! caller decodes each head and, for a 1xx status, says so with
//! [`ResponseStream::informational`].

use crate::error::{Error, ErrorCode, Violation};
use crate::message::{MessageEvent, MessageFraming};

/// What a response stream carries: a head's encoded field section (an
/// informational one, then the final one), pieces of the body, the
/// encoded trailer section.
pub type ResponseEvent<'a> = MessageEvent<'a>;

/// The client's reader of one response.
///
/// ```
/// use tether_h3::response::{ResponseEvent, ResponseStream};
/// use tether_h3::ErrorCode;
///
/// let mut stream = ResponseStream::new(1024);
/// // DATA before the head is refused.
/// let err = stream.decode(&[0x00, 0x01, b'x']).unwrap_err();
/// assert_eq!(err.code, ErrorCode::H3_FRAME_UNEXPECTED);
///
/// let mut stream = ResponseStream::new(1024);
/// let (used, event) = stream.decode(&[0x01, 0x02, 0x00, 0x00, 0x00, 0x01, b'x'])?;
/// assert_eq!((used, event), (4, Some(ResponseEvent::Headers(vec![0, 0]))));
/// let (used, event) = stream.decode(&[0x00, 0x01, b'x'])?;
/// assert_eq!((used, event), (3, Some(ResponseEvent::Data(b"x"))));
/// stream.finish()?;
/// # Ok::<(), tether_h3::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResponseStream {
    framing: MessageFraming,
}

impl ResponseStream {
    /// A response whose HEADERS frames may be up to `max_payload` bytes.
    pub fn new(max_payload: usize) -> ResponseStream {
        ResponseStream {
            framing: MessageFraming::new(max_payload),
        }
    }

    /// Whether the final response head has arrived.
    pub fn has_head(&self) -> bool {
        self.framing.has_head()
    }

    /// The head just handed out was informational (1xx): another head
    /// follows, not the body.
    pub fn informational(&mut self) {
        self.framing.informational();
    }

    /// Takes bytes from `src` up to the next event: how many it took and
    /// the event, if any. It returns with no event only when it took all of
    /// `src`.
    pub fn decode<'a>(&mut self, src: &'a [u8]) -> Result<(usize, Option<ResponseEvent<'a>>), Error> {
        self.framing.decode(src)
    }

    /// The server ended the stream: an H3_FRAME_ERROR if it ended inside a
    /// frame, an H3_MESSAGE_ERROR if before the final response head.
    pub fn finish(&self) -> Result<(), Error> {
        self.framing
            .finish(|| Error::new(ErrorCode::H3_MESSAGE_ERROR, Violation::ResponseWithoutHeaders))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything `stream` makes of `wire` fed `step` bytes at a time,
    /// with the pieces of DATA joined.
    fn events(wire: &[u8], step: usize) -> Result<(Vec<ResponseEvent<'static>>, Vec<u8>), Error> {
        let mut stream = ResponseStream::new(1024);
        let (mut heads, mut body) = (Vec::new(), Vec::new());
        for piece in wire.chunks(step) {
            let mut rest = piece;
            loop {
                let (used, event) = stream.decode(rest)?;
                rest = rest.get(used..).unwrap_or_default();
                match event {
                    Some(ResponseEvent::Data(d)) => body.extend_from_slice(d),
                    Some(ResponseEvent::Headers(h)) => heads.push(ResponseEvent::Headers(h)),
                    Some(ResponseEvent::Trailers(t)) => heads.push(ResponseEvent::Trailers(t)),
                    None => break,
                }
            }
        }
        stream.finish()?;
        Ok((heads, body))
    }

    #[test]
    fn head_body_and_trailers_whole_and_byte_at_a_time() {
        // HEADERS [0,0], an unknown frame 0x21 of 1 byte, DATA "abc",
        // DATA "", HEADERS (trailers) [0,0,0xc0].
        let wire = [
            0x01, 0x02, 0x00, 0x00, 0x21, 0x01, 0xff, 0x00, 0x03, b'a', b'b', b'c', 0x00, 0x00, 0x01, 0x03,
            0x00, 0x00, 0xc0,
        ];
        let whole = events(&wire, wire.len()).unwrap();
        assert_eq!(
            whole.0,
            [
                ResponseEvent::Headers(vec![0, 0]),
                ResponseEvent::Trailers(vec![0, 0, 0xc0])
            ]
        );
        assert_eq!(whole.1, b"abc");
        assert_eq!(events(&wire, 1).unwrap(), whole);
    }

    #[test]
    fn frames_out_of_place_are_unexpected() {
        let code = |wire: &[u8]| events(wire, 1).unwrap_err().code;
        // A frame after the trailers.
        assert_eq!(
            code(&[0x01, 0x00, 0x01, 0x00, 0x01, 0x00]),
            ErrorCode::H3_FRAME_UNEXPECTED
        );
        // SETTINGS on a request stream.
        assert_eq!(code(&[0x04, 0x00]), ErrorCode::H3_FRAME_UNEXPECTED);
        // PUSH_PROMISE (push ID 0, empty section).
        assert_eq!(
            code(&[0x01, 0x00, 0x05, 0x01, 0x00]),
            ErrorCode::H3_FRAME_UNEXPECTED
        );
        // Ended before a head, or inside a frame.
        assert_eq!(code(&[]), ErrorCode::H3_MESSAGE_ERROR);
        assert_eq!(code(&[0x01, 0x02, 0x00]), ErrorCode::H3_FRAME_ERROR);
    }

    #[test]
    fn an_informational_head_is_followed_by_another() {
        let mut stream = ResponseStream::new(64);
        let wire = [0x01, 0x00, 0x01, 0x00, 0x00, 0x01, b'x'];
        let (used, event) = stream.decode(&wire).unwrap();
        assert_eq!(event, Some(ResponseEvent::Headers(vec![])));
        stream.informational();
        assert!(!stream.has_head());
        let (more, event) = stream.decode(&wire[used..]).unwrap();
        assert_eq!(event, Some(ResponseEvent::Headers(vec![])));
        assert!(stream.has_head());
        let (_, event) = stream.decode(&wire[used + more..]).unwrap();
        assert_eq!(event, Some(ResponseEvent::Data(b"x")));
    }
}
