//! Arbitrary bytes as a request's `Accept-Encoding`: a coding or none,
//! never a panic. The same bytes as an event stream's body, compressed as
//! a shared piece (the first byte a size floor): a gzip and a zlib stream
//! of it, twice over, inflate back to it, twice.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_deflate::{ContentCoding, Piece, StreamCoding, choose_coding};

fn inflate(coding: ContentCoding, body: &[u8], len: usize) -> Vec<u8> {
    let bits = match coding {
        ContentCoding::Gzip => 31,
        ContentCoding::Deflate => 15,
    };
    let mut out = vec![0; len + 1];
    let (plain, status) =
        zlib_rs::decompress_slice(&mut out, body, zlib_rs::InflateConfig { window_bits: bits });
    assert_eq!(status, zlib_rs::ReturnCode::Ok, "{coding:?}");
    plain.to_vec()
}

fuzz_target!(|data: &[u8]| {
    let _ = choose_coding(data);
    let Some((&floor, plain)) = data.split_first() else {
        return;
    };
    let piece = Piece::new(plain, usize::from(floor) * 4);
    for coding in [ContentCoding::Gzip, ContentCoding::Deflate] {
        let mut stream = StreamCoding::new(coding);
        let mut body = stream.header().to_vec();
        for _ in 0..2 {
            stream.add(&piece);
            body.extend_from_slice(piece.bytes());
        }
        body.extend_from_slice(&stream.trailer());
        assert_eq!(inflate(coding, &body, plain.len() * 2), [plain, plain].concat());
    }
});
