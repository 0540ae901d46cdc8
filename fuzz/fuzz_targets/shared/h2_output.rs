//! What every HTTP/2 fuzz target checks of the bytes an endpoint wrote.

use tether_h2::frame::{Frame, FrameDecoder, MAX_FRAME_SIZE_LIMIT};

/// `bytes` (after any preface) decode as whole, valid frames, and no DATA
/// frame carries more than `peer_max`, the largest frame size the peer
/// allowed.
pub fn check_frames(bytes: &[u8], peer_max: u32) {
    let mut decoder = FrameDecoder::new();
    decoder.set_max_frame_size(MAX_FRAME_SIZE_LIMIT).unwrap();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (n, frame) = decoder.decode(rest);
        let frame = frame.expect("valid frames").expect("whole frames");
        if let Frame::Data(d) = frame {
            assert!(d.data.len() <= peer_max as usize);
        }
        rest = &rest[n..];
    }
}
