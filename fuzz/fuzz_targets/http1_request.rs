//! Arbitrary bytes as the requests a server reads and as the responses a
//! client reads, whole and in two pieces: never a panic, the same messages
//! and the same error however the bytes are split, nothing consumed past
//! the input, bodies within the limit, and every error one a peer can
//! cause, with the status a server answers.
//!
//! Input layout: the first byte picks the split point (0 = at the start,
//! 255 = at the end), the rest is the connection's bytes. Seeds in
//! `seeds/http1_request/` start with one such byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_http1::{EMPTY_HEADER, Error, Limits, RequestDecoder, ResponseDecoder, Status};

/// Small limits, so that the fuzzer reaches them.
fn limits() -> Limits {
    Limits::new().max_head(512).max_body(1024)
}

/// What a decoder made of the bytes: per message, a summary of its head
/// and its body; and the error that stopped it.
#[derive(Debug, PartialEq)]
struct Outcome {
    messages: Vec<(String, Vec<u8>)>,
    error: Option<Error>,
}

fn requests(pieces: &[&[u8]]) -> Outcome {
    let mut decoder = RequestDecoder::new(limits());
    let mut buf: Vec<u8> = Vec::new();
    let mut messages = Vec::new();
    let mut body: Option<(String, Vec<u8>)> = None;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            if let Some((_, bytes)) = body.as_mut() {
                match decoder.decode_body(&buf, bytes) {
                    Ok((used, done)) => {
                        assert!(used <= buf.len());
                        assert!(bytes.len() <= 1024);
                        buf.drain(..used);
                        if !done {
                            break;
                        }
                        messages.extend(body.take());
                    }
                    Err(e) => {
                        return Outcome {
                            messages,
                            error: Some(e),
                        };
                    }
                }
            } else if decoder.is_idle() {
                let mut headers = [EMPTY_HEADER; 16];
                match decoder.decode_head(&buf, &mut headers) {
                    Ok(Status::Partial) => {
                        assert!(buf.len() < 512, "a partial head past the limit");
                        break;
                    }
                    Ok(Status::Complete((head, used))) => {
                        assert!(used <= buf.len() && used <= 512);
                        let summary = format!(
                            "{} {} {:?} {:?} {:?} {:?} {} {} {}",
                            head.method(),
                            head.target(),
                            head.form(),
                            head.path(),
                            head.query(),
                            head.framing(),
                            head.keep_alive(),
                            head.expect_continue(),
                            head.headers().len(),
                        );
                        buf.drain(..used);
                        body = Some((summary, Vec::new()));
                    }
                    Err(e) => {
                        return Outcome {
                            messages,
                            error: Some(e),
                        };
                    }
                }
            } else {
                // The last request closed the connection.
                break;
            }
        }
    }
    Outcome {
        messages,
        error: None,
    }
}

fn responses(pieces: &[&[u8]]) -> Outcome {
    let mut decoder = ResponseDecoder::new(limits());
    let methods = ["GET", "HEAD", "CONNECT", "POST"];
    let mut next = 0usize;
    let mut buf: Vec<u8> = Vec::new();
    let mut messages = Vec::new();
    let mut body: Option<(String, Vec<u8>)> = None;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            if let Some((_, bytes)) = body.as_mut() {
                match decoder.decode_body(&buf, bytes) {
                    Ok((used, done)) => {
                        assert!(used <= buf.len() && bytes.len() <= 1024);
                        buf.drain(..used);
                        if !done {
                            break;
                        }
                        messages.extend(body.take());
                    }
                    Err(e) => {
                        return Outcome {
                            messages,
                            error: Some(e),
                        };
                    }
                }
            } else if decoder.is_idle() {
                let method = methods[next % methods.len()];
                let mut headers = [EMPTY_HEADER; 16];
                match decoder.decode_head(&buf, &mut headers, method) {
                    Ok(Status::Partial) => break,
                    Ok(Status::Complete((head, used))) => {
                        let summary = format!(
                            "{} {:?} {:?} {} {}",
                            head.status(),
                            head.reason(),
                            head.framing(),
                            head.keep_alive(),
                            head.headers().len(),
                        );
                        let no_body_follows = head.is_interim() || head.status() == 101;
                        buf.drain(..used);
                        if no_body_follows {
                            messages.push((summary, Vec::new()));
                        } else {
                            next += 1;
                            body = Some((summary, Vec::new()));
                        }
                    }
                    Err(e) => {
                        return Outcome {
                            messages,
                            error: Some(e),
                        };
                    }
                }
            } else {
                // Closed after a response, or switched protocols.
                break;
            }
        }
    }
    if let Some(message) = body.take() {
        match decoder.finish() {
            Ok(()) => messages.push(message),
            Err(e) => {
                return Outcome {
                    messages,
                    error: Some(e),
                };
            }
        }
    }
    Outcome {
        messages,
        error: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    // Scaled, so that one byte reaches every split point of a long input.
    let split = usize::from(split) * input.len() / 255;
    let (a, b) = input.split_at(split);

    let whole = requests(&[input]);
    assert_eq!(requests(&[a, b]), whole);
    if let Some(e) = whole.error {
        assert!(!e.is_caller_error(), "{e}");
        assert!(
            matches!(e.status(), Some(400 | 413 | 417 | 431 | 501 | 505)),
            "{e}"
        );
    }

    let whole = responses(&[input]);
    assert_eq!(responses(&[a, b]), whole);
    if let Some(e) = whole.error {
        assert!(!e.is_caller_error(), "{e}");
    }
});
