//! Drives the decoders the way a server and a client do: bytes arrive in
//! pieces, are appended to a buffer, and what a decoder used is dropped
//! from its front.
#![allow(dead_code)]

use tether_http1::{
    EMPTY_HEADER, Error, Framing, Limits, RequestDecoder, ResponseDecoder, Status, TargetForm, Version,
};

/// A decoded request, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Req {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) form: TargetForm,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) authority: Option<String>,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
    pub(crate) body: Vec<u8>,
}

/// Everything a run of the decoder produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome<T> {
    /// The complete messages, in order.
    pub(crate) messages: Vec<T>,
    /// The error that stopped the decoder, if one did.
    pub(crate) error: Option<Error>,
    /// Whether a message was begun but not finished.
    pub(crate) partial: bool,
    /// The bytes left in the buffer, unread (none after an error: the
    /// connection closes).
    pub(crate) rest: Vec<u8>,
}

/// Feeds `pieces` one after another to a request decoder, decoding every
/// request it can, the way a server would.
pub(crate) fn requests(limits: Limits, pieces: &[&[u8]]) -> Outcome<Req> {
    let mut decoder = RequestDecoder::new(limits);
    let mut buf = Vec::new();
    let mut current: Option<Req> = None;
    let mut messages = Vec::new();
    let mut stopped = false;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            if stopped {
                break;
            }
            if let Some(req) = current.as_mut() {
                match decoder.decode_body(&buf, &mut req.body) {
                    Ok((used, done)) => {
                        buf.drain(..used);
                        if !done {
                            break;
                        }
                        let req = current.take().unwrap();
                        stopped = !req.keep_alive;
                        messages.push(req);
                    }
                    Err(e) => return failed(messages, e),
                }
            } else {
                let mut headers = [EMPTY_HEADER; 32];
                match decoder.decode_head(&buf, &mut headers) {
                    Ok(Status::Partial) => break,
                    Ok(Status::Complete((head, used))) => {
                        let req = Req {
                            method: head.method().to_owned(),
                            target: head.target().to_owned(),
                            form: head.form(),
                            path: head.path().to_owned(),
                            query: head.query().map(str::to_owned),
                            authority: head.authority().map(str::to_owned),
                            version: head.version(),
                            headers: head
                                .headers()
                                .iter()
                                .map(|h| (h.name.to_owned(), h.value.to_vec()))
                                .collect(),
                            framing: head.framing(),
                            keep_alive: head.keep_alive(),
                            expect_continue: head.expect_continue(),
                            body: Vec::new(),
                        };
                        buf.drain(..used);
                        current = Some(req);
                    }
                    Err(e) => return failed(messages, e),
                }
            }
        }
    }
    Outcome {
        messages,
        error: None,
        partial: current.is_some() || (!stopped && !buf.is_empty()),
        rest: buf,
    }
}

/// A decoded response, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Res {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
    pub(crate) body: Vec<u8>,
}

/// Feeds `pieces` to a response decoder, as answers to requests with the
/// methods in `methods` (interim responses do not use one up), then tells
/// it the connection ended.
pub(crate) fn responses(limits: Limits, bare_lf: bool, methods: &[&str], pieces: &[&[u8]]) -> Outcome<Res> {
    let mut decoder = ResponseDecoder::new(limits).allow_bare_lf(bare_lf);
    let mut buf = Vec::new();
    let mut current: Option<Res> = None;
    let mut messages = Vec::new();
    let mut methods = methods.iter();
    let mut method = methods.next().copied();
    let mut stopped = false;
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            if stopped {
                break;
            }
            if let Some(res) = current.as_mut() {
                match decoder.decode_body(&buf, &mut res.body) {
                    Ok((used, done)) => {
                        buf.drain(..used);
                        if !done {
                            break;
                        }
                        let res = current.take().unwrap();
                        stopped = !res.keep_alive;
                        messages.push(res);
                    }
                    Err(e) => return failed(messages, e),
                }
            } else {
                let Some(m) = method else { break };
                let mut headers = [EMPTY_HEADER; 32];
                match decoder.decode_head(&buf, &mut headers, m) {
                    Ok(Status::Partial) => break,
                    Ok(Status::Complete((head, used))) => {
                        let res = Res {
                            status: head.status(),
                            reason: head.reason().to_owned(),
                            version: head.version(),
                            headers: head
                                .headers()
                                .iter()
                                .map(|h| (h.name.to_owned(), h.value.to_vec()))
                                .collect(),
                            framing: head.framing(),
                            keep_alive: head.keep_alive(),
                            body: Vec::new(),
                        };
                        let interim = head.is_interim();
                        let switched = head.status() == 101;
                        buf.drain(..used);
                        if interim {
                            messages.push(res);
                        } else if switched {
                            messages.push(res);
                            stopped = true;
                        } else {
                            method = methods.next().copied();
                            current = Some(res);
                        }
                    }
                    Err(e) => return failed(messages, e),
                }
            }
        }
    }
    if let Some(res) = current.take() {
        match decoder.finish() {
            Ok(()) => messages.push(res),
            Err(e) => return failed(messages, e),
        }
    }
    Outcome {
        messages,
        error: None,
        partial: false,
        rest: buf,
    }
}

/// The same input whole, one byte at a time, and split in two at every
/// point must give the same outcome; returns it.
pub(crate) fn same_however_split<T: PartialEq + std::fmt::Debug>(
    input: &[u8],
    run: impl Fn(&[&[u8]]) -> Outcome<T>,
) -> Outcome<T> {
    let whole = run(&[input]);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(
        run(&bytes),
        whole,
        "one byte at a time: {:?}",
        String::from_utf8_lossy(input)
    );
    for split in 0..input.len() {
        let (a, b) = input.split_at(split);
        assert_eq!(
            run(&[a, b]),
            whole,
            "split at {split}: {:?}",
            String::from_utf8_lossy(input)
        );
    }
    whole
}

fn failed<T>(messages: Vec<T>, error: Error) -> Outcome<T> {
    Outcome {
        messages,
        error: Some(error),
        partial: true,
        rest: Vec::new(),
    }
}
