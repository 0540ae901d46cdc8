//! Requests as a server must take them (RFC 9112, RFC 9110): each rule
//! with a case, each case decoded whole, one byte at a time, split at
//! every point, and followed by a pipelined request.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use common::{Outcome, Req, requests, same_however_split};
use tether_http1::{
    EMPTY_HEADER, Error, Framing, Limits, RequestDecoder, Status, TargetForm, Version, parse_request,
};

const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n";

fn limits() -> Limits {
    Limits::new().max_head(1024).max_body(4096)
}

fn decode(input: &[u8]) -> Outcome<Req> {
    same_however_split(input, |pieces| requests(limits(), pieces))
}

/// Decodes `input` alone and followed by a pipelined request: the first
/// request (or the error) must not change, and the next one must come out
/// intact when the connection stays open.
fn decode_first(input: &[u8]) -> Result<Req, Error> {
    let alone = decode(input);
    let followed = decode(&[input, NEXT].concat());
    match (&alone.error, alone.messages.first()) {
        (Some(e), _) => {
            assert_eq!(followed.error, Some(*e), "{:?}", String::from_utf8_lossy(input));
            Err(*e)
        }
        (None, Some(first)) => {
            assert!(!alone.partial && alone.rest.is_empty() && alone.messages.len() == 1);
            assert_eq!(followed.messages.first(), Some(first));
            if first.keep_alive {
                assert_eq!(followed.messages.get(1).map(|r| r.path.as_str()), Some("/next"));
            } else {
                // The decoder stops after a request that closes; the next
                // one is left unread.
                assert_eq!((followed.messages.len(), followed.rest.as_slice()), (1, NEXT));
            }
            Ok(first.clone())
        }
        (None, None) => panic!("incomplete: {:?}", String::from_utf8_lossy(input)),
    }
}

fn status(input: &[u8]) -> Option<u16> {
    decode_first(input)
        .err()
        .map(|e| e.status().expect("a peer error has a status"))
}

/// Each rule and the status it gives; `None` is a valid request.
#[test]
fn statuses() {
    let long_value = "x".repeat(1024);
    let head_too_large = format!("GET / HTTP/1.1\r\nHost: a\r\nX-Long: {long_value}\r\n\r\n");
    let many_headers: String = (0..40).map(|i| format!("X-{i}: {i}\r\n")).collect();
    let too_many_headers = format!("GET / HTTP/1.1\r\nHost: a\r\n{many_headers}\r\n");
    let long_trailer = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Long: {long_value}\r\n\r\n"
    );
    let cases: &[(&str, &[u8], Option<u16>)] = &[
        ("simple", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", None),
        ("head over the limit", head_too_large.as_bytes(), Some(431)),
        ("too many headers", too_many_headers.as_bytes(), Some(431)),
        ("space in a header name", b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n", Some(400)),
        ("space before the colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", Some(400)),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n", Some(400)),
        ("no target", b"GET HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("bad method", b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Some(505)),
        ("HTTP/0.9", b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", Some(505)),
        ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Some(505)),
        ("not a version", b"GET / HTTX/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("a version after junk", b"GET / HT\xac HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("a space after the version", b"GET / HTTP/2.0 \r\nHost: a\r\n\r\n", Some(400)),
        ("two-digit version", b"GET / HTTP/11.1\r\nHost: a\r\n\r\n", Some(400)),
        ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nX: y\r\n\r\n", Some(400)),
        ("two Host lines", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", Some(400)),
        ("two Host on 1.0", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", Some(400)),
        ("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Some(400)),
        ("Host with a path", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", Some(400)),
        ("HTTP/1.0 without Host", b"GET / HTTP/1.0\r\n\r\n", None),
        ("empty Host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", None),
        ("Host with a port and IPv6", b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", None),
        ("Content-Length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", None),
        ("identical list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", None),
        (
            "identical lines",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            None,
        ),
        ("differing list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello", Some(400)),
        (
            "differing lines",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
            Some(400),
        ),
        ("signed length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", Some(400)),
        ("negative length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", Some(400)),
        ("hex length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello", Some(400)),
        ("empty length", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", Some(400)),
        (
            "length past u64",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
            Some(400),
        ),
        ("length over the limit", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4097\r\n\r\n", Some(413)),
        ("Content-Length: 0", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", None),
        (
            "chunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            None,
        ),
        (
            "Content-Length and Transfer-Encoding",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n0\r\n\r\n",
            Some(400),
        ),
        (
            "Transfer-Encoding and Content-Length",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n\
              5\r\nhello\r\n0\r\n\r\n",
            Some(400),
        ),
        (
            "gzip, chunked",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            Some(501),
        ),
        (
            "gzip then chunked on two lines",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            Some(501),
        ),
        (
            "chunked, gzip: chunked not final",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
            Some(400),
        ),
        ("gzip alone", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", Some(400)),
        (
            "chunked twice",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            Some(400),
        ),
        ("empty Transfer-Encoding", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n", Some(400)),
        (
            "chunked on HTTP/1.0",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            Some(400),
        ),
        (
            "Chunked in capitals",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
            None,
        ),
        (
            "chunk size of 17 hex digits",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\nx\r\n0\r\n\r\n",
            Some(400),
        ),
        (
            "chunk size past u64 in 17 digits",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
            Some(400),
        ),
        (
            "16 hex digits: over the body limit",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n",
            Some(413),
        ),
        (
            "no chunk size",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
            Some(400),
        ),
        (
            "chunk size not hex",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            Some(400),
        ),
        (
            "chunk data too long",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n",
            Some(400),
        ),
        (
            "bare LF after the chunk size",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
            Some(400),
        ),
        (
            "chunk extensions",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;name=value;other=\"quoted; string\"\r\nhello\r\n0 ; last\r\n\r\n",
            None,
        ),
        (
            "trailers",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n",
            None,
        ),
        ("trailers over the head limit", long_trailer.as_bytes(), Some(431)),
        (
            "100-continue",
            b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
            None,
        ),
        ("another expectation", b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", Some(417)),
        ("OPTIONS *", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", None),
        ("GET *", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("CONNECT authority", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", None),
        ("CONNECT without a port", b"CONNECT example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", Some(400)),
        ("CONNECT with a path", b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("authority without CONNECT", b"GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("absolute-form", b"GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n", None),
        ("absolute-form, empty host", b"GET http:///a HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("absolute-form, other scheme", b"GET ftp://example.com/a HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("relative path", b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
        ("fragment", b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", Some(400)),
    ];
    for &(name, input, want) in cases {
        assert_eq!(status(input), want, "{name}");
    }
}

#[test]
fn the_head_limit_counts_the_whole_head() {
    let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let fits = Limits::new().max_head(head.len());
    let outcome = requests(fits, &[head]);
    assert_eq!((outcome.messages.len(), outcome.error), (1, None));
    let short = Limits::new().max_head(head.len() - 1);
    assert_eq!(requests(short, &[head]).error, Some(Error::HeadTooLarge));
    // A partial head is refused as soon as it reaches the limit.
    assert_eq!(
        requests(short, &[&head[..head.len() - 1]]).error,
        Some(Error::HeadTooLarge)
    );
    assert_eq!(requests(short, &[&head[..head.len() - 2]]).error, None);
}

#[test]
fn partial_input_is_not_an_error() {
    let input =
        b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x\r\nhello\r\n0\r\nT: 1\r\n\r\n";
    for end in 0..input.len() {
        let outcome = requests(limits(), &[&input[..end]]);
        assert_eq!((outcome.error, outcome.messages.len()), (None, 0), "{end}");
        assert_eq!(outcome.partial, end > 0, "{end}");
    }
    assert_eq!(requests(limits(), &[input]).messages.len(), 1);
}

#[test]
fn what_a_request_says() {
    let req =
        decode_first(b"POST /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap();
    assert_eq!((req.method.as_str(), req.form), ("POST", TargetForm::Origin));
    assert_eq!(
        (req.path.as_str(), req.query.as_deref()),
        ("/a/b", Some("x=1&y=%20"))
    );
    assert_eq!(
        (req.version, req.framing, req.body.as_slice()),
        (Version::Http11, Framing::Length(3), &b"abc"[..])
    );
    assert!(req.keep_alive && !req.expect_continue);

    let req = decode_first(b"GET http://example.com:8080?q HTTP/1.1\r\nHost: example.com\r\n\r\n").unwrap();
    assert_eq!(req.form, TargetForm::Absolute);
    assert_eq!((req.path.as_str(), req.query.as_deref()), ("/", Some("q")));
    assert_eq!(req.authority.as_deref(), Some("example.com:8080"));
    let req =
        decode_first(b"GET HTTPS://user@example.com/x/y HTTP/1.1\r\nHost: example.com\r\n\r\n").unwrap();
    assert_eq!(
        (req.path.as_str(), req.authority.as_deref()),
        ("/x/y", Some("user@example.com"))
    );

    let req = decode_first(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert_eq!((req.form, req.path.as_str()), (TargetForm::Asterisk, "*"));
    let req = decode_first(b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n").unwrap();
    assert_eq!(
        (req.form, req.authority.as_deref()),
        (TargetForm::Authority, Some("[::1]:443"))
    );

    let req = decode_first(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
        3\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
    )
    .unwrap();
    assert_eq!(
        (req.framing, req.body.as_slice()),
        (Framing::Chunked, &b"abc0123456789"[..])
    );
}

#[test]
fn keep_alive_by_version_and_connection() {
    let cases: &[(&[u8], bool)] = &[
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: closer\r\n\r\n", false),
        (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closer\r\n\r\n", true),
    ];
    for &(input, keep_alive) in cases {
        assert_eq!(
            decode_first(input).unwrap().keep_alive,
            keep_alive,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn expect_continue_is_reported_on_http11_only() {
    let req =
        decode_first(b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx")
            .unwrap();
    assert!(req.expect_continue);
    // RFC 9110 section 10.1.1: ignored on HTTP/1.0.
    let req = decode_first(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx").unwrap();
    assert!(!req.expect_continue);
    assert!(
        !decode_first(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .expect_continue
    );
}

#[test]
fn a_body_over_the_limit_is_refused_from_the_head() {
    // The head alone is enough: the server answers 413 before any body
    // arrives (and before sending 100 Continue).
    let mut decoder = RequestDecoder::new(limits());
    let mut headers = [EMPTY_HEADER; 8];
    let head = b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4097\r\n\r\n";
    assert_eq!(decoder.decode_head(head, &mut headers), Err(Error::BodyTooLarge));
    // And a chunked body when its chunks get there.
    let chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
        800\r\n";
    let outcome = requests(limits(), &[chunked, &[b'x'; 0x800], b"\r\n801\r\n"]);
    assert_eq!(outcome.error, Some(Error::BodyTooLarge));
    let fits = requests(
        limits(),
        &[
            chunked,
            &[b'x'; 0x800],
            b"\r\n800\r\n",
            &[b'y'; 0x800],
            b"\r\n0\r\n\r\n",
        ],
    );
    assert_eq!((fits.error, fits.messages.len()), (None, 1));
    assert_eq!(fits.messages[0].body.len(), 4096);
}

#[test]
fn the_decoder_keeps_its_turns() {
    let mut decoder = RequestDecoder::new(limits());
    let mut body = Vec::new();
    assert_eq!(decoder.decode_body(b"", &mut body), Err(Error::WrongState));
    let input = b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi";
    let mut headers = [EMPTY_HEADER; 8];
    let Ok(Status::Complete((_, used))) = decoder.decode_head(input, &mut headers) else {
        panic!("a head")
    };
    let mut headers = [EMPTY_HEADER; 8];
    assert_eq!(decoder.decode_head(input, &mut headers), Err(Error::WrongState));
    assert!(!decoder.is_idle());
    assert_eq!(decoder.decode_body(&input[used..], &mut body), Ok((2, true)));
    // Connection: close: no further request.
    let mut headers = [EMPTY_HEADER; 8];
    assert_eq!(decoder.decode_head(NEXT, &mut headers), Err(Error::WrongState));

    // Nor after an error.
    let mut decoder = RequestDecoder::new(limits());
    let mut headers = [EMPTY_HEADER; 8];
    assert_eq!(
        decoder.decode_head(b"GET / HTTP/1.1\r\n\r\n", &mut headers),
        Err(Error::MissingHost)
    );
    let mut headers = [EMPTY_HEADER; 8];
    assert_eq!(decoder.decode_head(NEXT, &mut headers), Err(Error::WrongState));
}

#[test]
fn errors_say_who_is_at_fault() {
    for e in [
        Error::WrongState,
        Error::InvalidHeader,
        Error::ReservedHeader,
        Error::InvalidArgument,
    ] {
        assert!(e.is_caller_error() && e.status().is_none(), "{e}");
    }
    for e in [
        Error::HeadTooLarge,
        Error::BadChunk("x"),
        Error::ContentLengthWithTransferEncoding,
    ] {
        assert!(!e.is_caller_error() && e.status().is_some(), "{e}");
    }
}

#[test]
fn parse_request_borrows_the_input() {
    let input = b"GET /x?y HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\nrest";
    let mut headers = [EMPTY_HEADER; 4];
    let Ok(Status::Complete((head, used))) = parse_request(input, &mut headers, &Limits::default()) else {
        panic!("a head")
    };
    assert_eq!(&input[used..], b"rest");
    assert_eq!(
        (head.path(), head.query(), head.host()),
        ("/x", Some("y"), &b"a"[..])
    );
    assert_eq!(head.header("x-a"), Some(&b"b"[..]));
    assert_eq!(head.headers().len(), 2);
    // The caller's array is the header limit.
    let mut one = [EMPTY_HEADER; 1];
    assert_eq!(
        parse_request(input, &mut one, &Limits::default()),
        Err(Error::TooManyHeaders)
    );
}
