//! Client role: the request written, and every response rule, with the
//! response parser fed whole, one byte at a time, and with frame bytes
//! after the head.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_handshake::{ClientHandshake, ClientRequest, Error, Status, httparse};

const NONCE: [u8; 16] = *b"the sample nonce";

/// RFC 6455 section 1.3's response, for the key of `NONCE`.
const RFC_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n";

fn rfc_client() -> ClientHandshake {
    ClientRequest::new("server.example.com", "/chat", NONCE)
        .protocols(&["chat", "superchat"])
        .origin("http://example.com")
        .write(&mut Vec::new())
        .unwrap()
}

#[test]
fn writes_the_request() {
    let mut out = b"previous bytes stay|".to_vec();
    let handshake = ClientRequest::new("server.example.com:8080", "/chat?x=1", NONCE)
        .protocols(&["chat", "superchat"])
        .extensions("permessage-deflate; client_max_window_bits, x-other")
        .origin("http://example.com")
        .headers(&[("Authorization", "Basic YTpi"), ("Cookie", "a=1")])
        .write(&mut out)
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "previous bytes stay|GET /chat?x=1 HTTP/1.1\r\n\
Host: server.example.com:8080\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-other\r\n\
Authorization: Basic YTpi\r\n\
Cookie: a=1\r\n\r\n"
    );
    assert_eq!(handshake.expected_accept(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    let mut out = Vec::new();
    ClientRequest::new("h", "/", [0; 16]).write(&mut out).unwrap();
    assert_eq!(
        out,
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
}

#[test]
fn refuses_arguments_that_would_make_a_bad_head() {
    type Build = fn(ClientRequest<'static>) -> ClientRequest<'static>;
    let cases: &[(&str, &str, Build)] = &[
        ("", "/", |r| r),
        ("a b", "/", |r| r),
        ("a\r\nX: y", "/", |r| r),
        ("h", "", |r| r),
        ("h", "chat", |r| r),
        ("h", "/a b", |r| r),
        ("h", "/\r\n", |r| r),
        ("h", "/", |r| r.protocols(&["a", "a"])),
        ("h", "/", |r| r.protocols(&["a b"])),
        ("h", "/", |r| r.protocols(&[""])),
        ("h", "/", |r| r.extensions("")),
        ("h", "/", |r| r.extensions(" , ")),
        ("h", "/", |r| r.extensions("a;")),
        ("h", "/", |r| r.extensions("a\r\nX: y")),
        ("h", "/", |r| r.origin("http://a\r\nX: y")),
        ("h", "/", |r| r.headers(&[("Bad Name", "v")])),
        ("h", "/", |r| r.headers(&[("X", "v\n")])),
        ("h", "/", |r| r.headers(&[("sec-websocket-key", "v")])),
        ("h", "/", |r| r.headers(&[("Host", "v")])),
        ("h", "/", |r| r.headers(&[("Origin", "v")])),
    ];
    for (host, target, f) in cases {
        let mut out = b"kept".to_vec();
        let err = f(ClientRequest::new(host, target, NONCE))
            .write(&mut out)
            .unwrap_err();
        assert!(err.is_caller_error(), "{host:?} {target:?}: {err}");
        assert!(matches!(err, Error::InvalidArgument(_)));
        assert_eq!(out, b"kept", "{host:?} {target:?}");
    }
}

#[test]
fn rfc_example_response_is_accepted() {
    let Ok(Status::Complete((res, used))) = rfc_client().validate_response(RFC_RESPONSE) else {
        panic!("RFC response refused");
    };
    assert_eq!(used, RFC_RESPONSE.len());
    assert_eq!(res.protocol(), Some("chat"));
    assert!(res.extensions().is_empty());
    assert_eq!(res.header("upgrade"), Some(&b"websocket"[..]));
    assert_eq!(res.headers().len(), 4);
}

#[test]
fn response_parser_whole_byte_by_byte_and_with_trailing_bytes() {
    let client = rfc_client();
    let Ok(Status::Complete(whole)) = client.validate_response(RFC_RESPONSE) else {
        panic!("whole response refused");
    };
    // One byte at a time: every strict prefix needs more.
    for end in 0..RFC_RESPONSE.len() {
        assert_eq!(
            client.validate_response(&RFC_RESPONSE[..end]),
            Ok(Status::Partial),
            "prefix of {end} bytes"
        );
    }
    // Frame bytes right after the head are left for the WebSocket layer,
    // however many have arrived.
    let frames: &[u8] = b"\x81\x05hello\x89\x00\x88\x02\x03\xe8";
    for n in 0..=frames.len() {
        let mut buf = RFC_RESPONSE.to_vec();
        buf.extend_from_slice(&frames[..n]);
        assert_eq!(
            client.validate_response(&buf),
            Ok(Status::Complete(whole.clone()))
        );
    }
    // Even bytes that look like another HTTP head.
    let mut buf = RFC_RESPONSE.to_vec();
    buf.extend_from_slice(RFC_RESPONSE);
    assert_eq!(client.validate_response(&buf), Ok(Status::Complete(whole)));
}

fn response(lines: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for l in lines {
        v.extend_from_slice(l);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"\r\n");
    v
}

const STATUS: &[u8] = b"HTTP/1.1 101 Switching Protocols";
const UPGRADE: &[u8] = b"Upgrade: websocket";
const CONNECTION: &[u8] = b"Connection: Upgrade";
const ACCEPT: &[u8] = b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

#[test]
fn every_response_rule() {
    let client = ClientRequest::new("h", "/", NONCE)
        .protocols(&["v1", "v2"])
        .extensions("permessage-deflate; client_max_window_bits, x-b")
        .write(&mut Vec::new())
        .unwrap();
    let bare = ClientRequest::new("h", "/", NONCE)
        .write(&mut Vec::new())
        .unwrap();
    type Want = Result<(Option<&'static str>, Vec<&'static str>), Error>;
    let cases: Vec<(&str, &ClientHandshake, Vec<u8>, Want)> = vec![
        (
            "minimal",
            &client,
            response(&[STATUS, UPGRADE, CONNECTION, ACCEPT]),
            Ok((None, vec![])),
        ),
        (
            "names in any case, Connection list, Upgrade case",
            &client,
            response(&[
                b"HTTP/1.1 101 OK",
                b"UPGRADE: WebSocket",
                b"connection: keep-alive, upgrade",
                b"sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  ",
            ]),
            Ok((None, vec![])),
        ),
        (
            "protocol and extensions",
            &client,
            response(&[
                STATUS,
                UPGRADE,
                CONNECTION,
                ACCEPT,
                b"Sec-WebSocket-Protocol: v2",
                b"Sec-WebSocket-Extensions: x-b",
                b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"9\"",
            ]),
            Ok((
                Some("v2"),
                vec!["x-b", "permessage-deflate; client_max_window_bits=9"],
            )),
        ),
        (
            "a refusal",
            &client,
            response(&[b"HTTP/1.1 403 Forbidden", b"Content-Length: 0"]),
            Err(Error::UnexpectedStatus(403)),
        ),
        (
            "a success that is not a switch",
            &client,
            response(&[b"HTTP/1.1 200 OK", UPGRADE, CONNECTION, ACCEPT]),
            Err(Error::UnexpectedStatus(200)),
        ),
        (
            "version refused",
            &client,
            response(&[b"HTTP/1.1 426 Upgrade Required", b"Sec-WebSocket-Version: 13"]),
            Err(Error::UnexpectedStatus(426)),
        ),
        (
            "HTTP/1.0",
            &client,
            response(&[b"HTTP/1.0 101 Switching Protocols", UPGRADE, CONNECTION, ACCEPT]),
            Err(Error::HttpVersion),
        ),
        (
            "no Upgrade",
            &client,
            response(&[STATUS, CONNECTION, ACCEPT]),
            Err(Error::NotUpgrade),
        ),
        (
            "Upgrade to something else",
            &client,
            response(&[STATUS, b"Upgrade: h2c", CONNECTION, ACCEPT]),
            Err(Error::NotUpgrade),
        ),
        (
            "no Connection",
            &client,
            response(&[STATUS, UPGRADE, ACCEPT]),
            Err(Error::NotUpgrade),
        ),
        (
            "no accept",
            &client,
            response(&[STATUS, UPGRADE, CONNECTION]),
            Err(Error::MissingHeader("Sec-WebSocket-Accept")),
        ),
        (
            "wrong accept",
            &client,
            response(&[
                STATUS,
                UPGRADE,
                CONNECTION,
                b"Sec-WebSocket-Accept: C/0nmHhBztSRGR1CwL6Tf4ZjwpY=",
            ]),
            Err(Error::AcceptMismatch),
        ),
        (
            "accept in another case (base64 is case-sensitive)",
            &client,
            response(&[
                STATUS,
                UPGRADE,
                CONNECTION,
                b"Sec-WebSocket-Accept: S3PPLMBITXAQ9KYGZZHZRBK+XOO=",
            ]),
            Err(Error::AcceptMismatch),
        ),
        (
            "two accepts",
            &client,
            response(&[STATUS, UPGRADE, CONNECTION, ACCEPT, ACCEPT]),
            Err(Error::DuplicateHeader("Sec-WebSocket-Accept")),
        ),
        (
            "protocol not offered",
            &client,
            response(&[STATUS, UPGRADE, CONNECTION, ACCEPT, b"Sec-WebSocket-Protocol: v3"]),
            Err(Error::UnexpectedProtocol),
        ),
        (
            "protocol in another case",
            &client,
            response(&[STATUS, UPGRADE, CONNECTION, ACCEPT, b"Sec-WebSocket-Protocol: V1"]),
            Err(Error::UnexpectedProtocol),
        ),
        (
            "protocol when none was offered",
            &bare,
            response(&[STATUS, UPGRADE, CONNECTION, ACCEPT, b"Sec-WebSocket-Protocol: v1"]),
            Err(Error::UnexpectedProtocol),
        ),
        (
            "two protocols in one header",
            &client,
            response(&[
                STATUS,
                UPGRADE,
                CONNECTION,
                ACCEPT,
                b"Sec-WebSocket-Protocol: v1, v2",
            ]),
            Err(Error::InvalidHeader("Sec-WebSocket-Protocol")),
        ),
        (
            "two protocol headers",
            &client,
            response(&[
                STATUS,
                UPGRADE,
                CONNECTION,
                ACCEPT,
                b"Sec-WebSocket-Protocol: v1",
                b"Sec-WebSocket-Protocol: v1",
            ]),
            Err(Error::DuplicateHeader("Sec-WebSocket-Protocol")),
        ),
        (
            "extension not offered",
            &client,
            response(&[
                STATUS,
                UPGRADE,
                CONNECTION,
                ACCEPT,
                b"Sec-WebSocket-Extensions: x-c",
            ]),
            Err(Error::UnexpectedExtension),
        ),
        (
            "extension when none was offered",
            &bare,
            response(&[
                STATUS,
                UPGRADE,
                CONNECTION,
                ACCEPT,
                b"Sec-WebSocket-Extensions: x-b",
            ]),
            Err(Error::UnexpectedExtension),
        ),
        (
            "malformed extensions",
            &client,
            response(&[
                STATUS,
                UPGRADE,
                CONNECTION,
                ACCEPT,
                b"Sec-WebSocket-Extensions: x-b; =1",
            ]),
            Err(Error::InvalidHeader("Sec-WebSocket-Extensions")),
        ),
        (
            "extensions not UTF-8",
            &client,
            response(&[
                STATUS,
                UPGRADE,
                CONNECTION,
                ACCEPT,
                b"Sec-WebSocket-Extensions: x-b; a=\xff",
            ]),
            Err(Error::InvalidHeader("Sec-WebSocket-Extensions")),
        ),
        (
            "not HTTP",
            &client,
            response(&[b"SSH-2.0-OpenSSH_9.6"]),
            Err(Error::Http(httparse::Error::Version)),
        ),
    ];
    for (what, handshake, buf, want) in cases {
        let got = match handshake.validate_response(&buf) {
            Ok(Status::Complete((res, used))) => {
                assert_eq!(used, buf.len(), "{what}");
                Ok((
                    res.protocol(),
                    res.extensions()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                ))
            }
            Ok(Status::Partial) => panic!("{what}: partial"),
            Err(e) => {
                assert!(!e.is_caller_error(), "{what}");
                Err(e)
            }
        };
        let want = want.map(|(p, e)| (p, e.into_iter().map(String::from).collect::<Vec<_>>()));
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn a_refusal_is_reported_once_its_head_is_complete() {
    let client = rfc_client();
    let refusal = response(&[b"HTTP/1.1 404 Not Found", b"Content-Length: 3"]);
    for end in 0..refusal.len() {
        assert_eq!(client.validate_response(&refusal[..end]), Ok(Status::Partial));
    }
    let mut with_body = refusal.clone();
    with_body.extend_from_slice(b"no\n");
    assert_eq!(
        client.validate_response(&with_body),
        Err(Error::UnexpectedStatus(404))
    );
}

#[test]
fn header_count_limit() {
    let buf = response(&[STATUS, UPGRADE, CONNECTION, ACCEPT, b"X-A: 1"]);
    let client = rfc_client().with_max_headers(3);
    assert_eq!(
        client.validate_response(&buf),
        Err(Error::Http(httparse::Error::TooManyHeaders))
    );
    assert!(
        rfc_client()
            .with_max_headers(4)
            .validate_response(&buf)
            .unwrap()
            .is_complete()
    );
}
