//! Responses: writing them as a server, reading them as a client (RFC 9112
//! section 6.3), each read whole, one byte at a time and split at every
//! point.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use common::{Outcome, Res, responses, same_however_split};
use tether_http1::{
    ChunkedEncoder, EMPTY_HEADER, Error, Framing, Limits, Response, ResponseDecoder, Status, Version,
    reason_phrase, write_continue, write_request,
};

fn read(methods: &[&str], input: &[u8]) -> Outcome<Res> {
    same_however_split(input, |pieces| {
        responses(Limits::default(), false, methods, pieces)
    })
}

fn only(methods: &[&str], input: &[u8]) -> Result<Res, Error> {
    let outcome = read(methods, input);
    match outcome.error {
        Some(e) => Err(e),
        None => {
            assert_eq!(outcome.messages.len(), 1, "{:?}", String::from_utf8_lossy(input));
            Ok(outcome.messages[0].clone())
        }
    }
}

/// The request's method, the response, and its framing, body and
/// keep-alive.
type FramingCase = (&'static str, &'static [u8], Framing, &'static [u8], bool);

#[test]
fn framing_by_status_method_and_fields() {
    let cases: &[FramingCase] = &[
        ("GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", Framing::Length(5), b"hello", true),
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
            Framing::Chunked,
            b"hello",
            true,
        ),
        // Section 6.3 item 3: Transfer-Encoding wins, and the connection
        // is not reused.
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            Framing::Chunked,
            b"hello",
            false,
        ),
        // A response may be gzip, chunked: the body is framed by chunked.
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nzz\r\n0\r\n\r\n",
            Framing::Chunked,
            b"zz",
            true,
        ),
        // Chunked not final: read until close (item 5).
        (
            "GET",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nuntil the end",
            Framing::UntilClose,
            b"until the end",
            false,
        ),
        ("GET", b"HTTP/1.1 200 OK\r\n\r\nuntil the end", Framing::UntilClose, b"until the end", false),
        ("GET", b"HTTP/1.0 200 OK\r\n\r\nold", Framing::UntilClose, b"old", false),
        ("GET", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", Framing::Length(2), b"ok", true),
        ("GET", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", Framing::Length(2), b"ok", false),
        // No body whatever the fields say (items 1 and 2).
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Framing::Length(0), b"", true),
        ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", Framing::Length(0), b"", true),
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", Framing::Length(0), b"", true),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", Framing::Length(0), b"", true),
        ("CONNECT", b"HTTP/1.1 200 OK\r\n\r\n", Framing::Length(0), b"", true),
        ("CONNECT", b"HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\nno", Framing::Length(2), b"no", true),
    ];
    for &(method, input, framing, body, keep_alive) in cases {
        let res =
            only(&[method], input).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(input)));
        assert_eq!(
            (res.framing, res.body.as_slice(), res.keep_alive),
            (framing, body, keep_alive),
            "{method} {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn bad_responses() {
    let cases: &[(&[u8], Error)] = &[
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            Error::BadContentLength,
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            Error::BadContentLength,
        ),
        (
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            Error::BadTransferEncoding,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
            Error::BadChunk("no chunk size"),
        ),
        (b"HTTP/2.0 200 OK\r\n\r\n", Error::UnsupportedVersion),
        (
            b"HTTP/1.1 2000 OK\r\n\r\n",
            Error::Malformed("invalid response head"),
        ),
        (b"garbage\r\n\r\n", Error::Malformed("invalid HTTP version")),
        // Cut short: the connection ends inside the body.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
            Error::IncompleteBody,
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            Error::IncompleteBody,
        ),
    ];
    for &(input, error) in cases {
        assert_eq!(
            only(&["GET"], input),
            Err(error),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn interim_responses_come_before_the_final_one() {
    let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
        HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let outcome = read(&["POST"], input);
    let statuses: Vec<u16> = outcome.messages.iter().map(|r| r.status).collect();
    assert_eq!((statuses, outcome.error), (vec![100, 103, 200], None));
    assert_eq!(outcome.messages[2].body, b"ok");
}

#[test]
fn switching_protocols_leaves_the_rest_to_the_new_protocol() {
    let input = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi";
    let outcome = read(&["GET"], input);
    assert_eq!(outcome.messages.len(), 1);
    assert_eq!(
        (outcome.messages[0].status, outcome.rest.as_slice()),
        (101, &b"\x81\x02hi"[..])
    );
}

#[test]
fn keep_alive_responses_follow_each_other() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\
        HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\nHTTP/1.1 20";
    let outcome = read(&["GET", "HEAD", "GET", "GET"], input);
    let got: Vec<(u16, &[u8])> = outcome
        .messages
        .iter()
        .map(|r| (r.status, r.body.as_slice()))
        .collect();
    assert_eq!(got, vec![(200, &b"a"[..]), (200, &b""[..]), (404, &b"b"[..])]);
    // The start of a fourth response stays unread.
    assert_eq!(outcome.rest, b"HTTP/1.1 20");
    assert_eq!(outcome.messages[2].reason, "Not Found");
    assert_eq!(outcome.messages[0].version, Version::Http11);
}

#[test]
fn bare_lf_in_chunks_only_when_allowed() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\n0123456789\n0\n\n";
    let strict = same_however_split(input, |p| responses(Limits::default(), false, &["GET"], p));
    assert!(matches!(strict.error, Some(Error::BadChunk(_))));
    let lax = same_however_split(input, |p| responses(Limits::default(), true, &["GET"], p));
    assert_eq!(
        (lax.error, lax.messages[0].body.as_slice()),
        (None, &b"0123456789"[..])
    );
}

#[test]
fn a_body_until_close_has_a_limit_too() {
    let input = b"HTTP/1.1 200 OK\r\n\r\n0123456789";
    let limits = Limits::new().max_body(9);
    assert_eq!(
        responses(limits, false, &["GET"], &[input]).error,
        Some(Error::BodyTooLarge)
    );
    let limits = Limits::new().max_body(10);
    assert_eq!(responses(limits, false, &["GET"], &[input]).error, None);
}

#[test]
fn the_response_decoder_keeps_its_turns() {
    let mut decoder = ResponseDecoder::new(Limits::default());
    let mut body = Vec::new();
    assert_eq!(decoder.decode_body(b"x", &mut body), Err(Error::WrongState));
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut headers = [EMPTY_HEADER; 4];
    let Ok(Status::Complete((head, used))) = decoder.decode_head(input, &mut headers, "GET") else {
        panic!("a head")
    };
    assert_eq!(head.header("content-length"), Some(&b"2"[..]));
    assert!(!head.is_interim());
    let mut headers = [EMPTY_HEADER; 4];
    assert_eq!(
        decoder.decode_head(input, &mut headers, "GET"),
        Err(Error::WrongState)
    );
    assert_eq!(decoder.decode_body(&input[used..], &mut body), Ok((2, true)));
    assert_eq!(decoder.finish(), Ok(()));
}

#[test]
fn writing_responses() {
    let mut out = Vec::new();
    Response::new(404).write(&mut out, b"no").unwrap();
    assert_eq!(out, b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno");

    // 204, 304 and 1xx carry neither framing fields nor a body.
    for status in [204, 304, 103] {
        out.clear();
        Response::new(status).write(&mut out, b"ignored").unwrap();
        let want = format!("HTTP/1.1 {status} {}\r\n\r\n", reason_phrase(status));
        assert_eq!(String::from_utf8_lossy(&out), want);
    }

    out.clear();
    Response::new(599)
        .reason("Custom")
        .close(true)
        .write(&mut out, b"")
        .unwrap();
    assert_eq!(
        out,
        b"HTTP/1.1 599 Custom\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    out.clear();
    Response::new(599).write(&mut out, b"").unwrap();
    assert_eq!(out, b"HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n");

    // HEAD: GET's head, chunked included, and no body.
    out.clear();
    let mut chunks = Response::new(200)
        .head_request(true)
        .write_chunked(&mut out)
        .unwrap();
    chunks.chunk(&mut out, b"hello");
    chunks.finish(&mut out);
    assert_eq!(out, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");

    out.clear();
    Response::new(200).write_until_close(&mut out).unwrap();
    assert_eq!(out, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");

    out.clear();
    Response::new(200).write_sized_head(&mut out, 1 << 40).unwrap();
    assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n");

    out.clear();
    write_continue(&mut out);
    assert_eq!(out, b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[test]
fn writers_refuse_what_would_break_the_message() {
    let mut out = b"kept".to_vec();
    let cases: &[(&[(&str, &str)], Error)] = &[
        (&[("X-Bad", "a\r\nInjected: yes")], Error::InvalidHeader),
        (&[("Bad Name", "x")], Error::InvalidHeader),
        (&[("", "x")], Error::InvalidHeader),
        (&[("Content-Length", "5")], Error::ReservedHeader),
        (&[("transfer-encoding", "chunked")], Error::ReservedHeader),
        (&[("Connection", "close")], Error::ReservedHeader),
    ];
    for &(headers, error) in cases {
        assert_eq!(
            Response::new(200).headers(headers).write(&mut out, b"x"),
            Err(error)
        );
        assert_eq!(
            write_request(&mut out, "GET", "/", "a", headers, Framing::Length(0)),
            Err(error)
        );
    }
    assert_eq!(
        Response::new(99).write(&mut out, b""),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        Response::new(1000).write(&mut out, b""),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        Response::new(200).reason("a\rb").write(&mut out, b""),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        write_request(&mut out, "G T", "/", "a", &[], Framing::Length(0)),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        write_request(&mut out, "GET", "/a b", "a", &[], Framing::Length(0)),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        write_request(&mut out, "GET", "/", "a", &[], Framing::UntilClose),
        Err(Error::InvalidArgument)
    );
    assert_eq!(
        write_request(&mut out, "GET", "/", "a\r\n", &[], Framing::Length(0)),
        Err(Error::InvalidHeader)
    );
    // Nothing half-written is left behind.
    assert_eq!(out, b"kept");
}

#[test]
fn chunked_encoder() {
    let mut out = Vec::new();
    let mut chunks = ChunkedEncoder::new();
    chunks.chunk(&mut out, b"");
    chunks.chunk(&mut out, &[b'x'; 26]);
    chunks.chunk_header(&mut out, 0x1234);
    chunks.chunk_end(&mut out);
    chunks.finish(&mut out);
    chunks.finish(&mut out);
    chunks.chunk(&mut out, b"late");
    let mut want = b"1a\r\n".to_vec();
    want.extend_from_slice(&[b'x'; 26]);
    want.extend_from_slice(b"\r\n1234\r\n\r\n0\r\n\r\n");
    assert_eq!(out, want);
}
