//! Server role: every validation rule, the policy hook, subprotocol and
//! extension selection, and the responses written.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_handshake::{
    Error, Extension, ExtensionNegotiator, ExtensionParams, Rejection, Request, RequestHead, ServerConfig,
    Status, UpgradeRequest, httparse, parse_request, parse_request_with,
};

/// RFC 6455 section 1.2's sample handshake.
const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

const RFC_RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n";

const BASE: &[&[u8]] = &[
    b"Host: example.com",
    b"Upgrade: websocket",
    b"Connection: Upgrade",
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    b"Sec-WebSocket-Version: 13",
];

fn build(request_line: &[u8], lines: &[&[u8]]) -> Vec<u8> {
    let mut v = request_line.to_vec();
    v.extend_from_slice(b"\r\n");
    for l in lines {
        v.extend_from_slice(l);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"\r\n");
    v
}

/// The base request with the headers named in `drop` removed and `add` appended.
fn variant(drop: &[&str], add: &[&[u8]]) -> Vec<u8> {
    let mut lines: Vec<&[u8]> = BASE
        .iter()
        .copied()
        .filter(|l| {
            !drop.iter().any(|d| {
                l.len() > d.len() && l[..d.len()].eq_ignore_ascii_case(d.as_bytes()) && l[d.len()] == b':'
            })
        })
        .collect();
    lines.extend_from_slice(add);
    build(b"GET /chat HTTP/1.1", &lines)
}

fn parse(buf: &[u8]) -> Request<'_> {
    match parse_request(buf) {
        Ok(Status::Complete((req, used))) => {
            assert_eq!(used, buf.len());
            req
        }
        other => panic!("expected a complete head, got {other:?}"),
    }
}

fn accept(config: &ServerConfig, buf: &[u8]) -> Result<Vec<u8>, Rejection> {
    let req = parse(buf);
    let accepted = config.accept(req.head())?;
    let mut out = Vec::new();
    accepted.write_response(&mut out, &[]).unwrap();
    Ok(out)
}

#[test]
fn rfc_example_request_gives_rfc_example_response() {
    let config: ServerConfig = ServerConfig::new().protocol("chat");
    assert_eq!(accept(&config, RFC_REQUEST).unwrap(), RFC_RESPONSE);
}

#[test]
fn every_validation_rule() {
    type Want = Result<(), (u16, Error)>;
    let ok: Want = Ok(());
    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        ("base request", variant(&[], &[]), ok.clone()),
        (
            "POST",
            build(b"POST /chat HTTP/1.1", BASE),
            Err((405, Error::Method)),
        ),
        (
            "lowercase get is another method",
            build(b"get /chat HTTP/1.1", BASE),
            Err((405, Error::Method)),
        ),
        (
            "HTTP/1.0",
            build(b"GET /chat HTTP/1.0", BASE),
            Err((400, Error::HttpVersion)),
        ),
        (
            "no Host",
            variant(&["Host"], &[]),
            Err((400, Error::MissingHeader("Host"))),
        ),
        (
            "two Host",
            variant(&[], &[b"Host: other.example"]),
            Err((400, Error::DuplicateHeader("Host"))),
        ),
        (
            "empty Host",
            variant(&["Host"], &[b"Host:  "]),
            Err((400, Error::InvalidHeader("Host"))),
        ),
        (
            "Host not UTF-8",
            variant(&["Host"], &[b"Host: \xff"]),
            Err((400, Error::InvalidHeader("Host"))),
        ),
        (
            "no Upgrade",
            variant(&["Upgrade"], &[]),
            Err((426, Error::NotUpgrade)),
        ),
        (
            "Upgrade to another protocol",
            variant(&["Upgrade"], &[b"Upgrade: h2c"]),
            Err((426, Error::NotUpgrade)),
        ),
        (
            "Upgrade with websocket as a substring only",
            variant(&["Upgrade"], &[b"Upgrade: websockets"]),
            Err((426, Error::NotUpgrade)),
        ),
        (
            "Upgrade in another case",
            variant(&["Upgrade"], &[b"Upgrade: WebSocket"]),
            ok.clone(),
        ),
        (
            "Upgrade list",
            variant(&["Upgrade"], &[b"Upgrade: h2c ,\tWEBSOCKET "]),
            ok.clone(),
        ),
        (
            "Upgrade over two headers",
            variant(&["Upgrade"], &[b"Upgrade: h2c", b"Upgrade: websocket"]),
            ok.clone(),
        ),
        (
            "no Connection",
            variant(&["Connection"], &[]),
            Err((426, Error::NotUpgrade)),
        ),
        (
            "Connection without upgrade",
            variant(&["Connection"], &[b"Connection: keep-alive"]),
            Err((426, Error::NotUpgrade)),
        ),
        (
            "Connection: keep-alive, Upgrade",
            variant(&["Connection"], &[b"Connection: keep-alive, Upgrade"]),
            ok.clone(),
        ),
        (
            "Connection over two headers, lowercase",
            variant(
                &["Connection"],
                &[b"connection: keep-alive", b"CONNECTION: upgrade"],
            ),
            ok.clone(),
        ),
        (
            "header names in any case",
            build(
                b"GET /chat HTTP/1.1",
                &[
                    b"host: a",
                    b"UPGRADE: websocket",
                    b"connection: upgrade",
                    b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
                    b"SEC-WEBSOCKET-VERSION: 13",
                ],
            ),
            ok.clone(),
        ),
        (
            "no version",
            variant(&["Sec-WebSocket-Version"], &[]),
            Err((426, Error::UnsupportedVersion)),
        ),
        (
            "version 8",
            variant(&["Sec-WebSocket-Version"], &[b"Sec-WebSocket-Version: 8"]),
            Err((426, Error::UnsupportedVersion)),
        ),
        (
            "version list",
            variant(&["Sec-WebSocket-Version"], &[b"Sec-WebSocket-Version: 13, 8"]),
            Err((426, Error::UnsupportedVersion)),
        ),
        (
            "two versions",
            variant(&[], &[b"Sec-WebSocket-Version: 13"]),
            Err((400, Error::DuplicateHeader("Sec-WebSocket-Version"))),
        ),
        (
            "version checked before the key",
            variant(
                &["Sec-WebSocket-Version", "Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Version: 7"],
            ),
            Err((426, Error::UnsupportedVersion)),
        ),
        (
            "no key",
            variant(&["Sec-WebSocket-Key"], &[]),
            Err((400, Error::MissingHeader("Sec-WebSocket-Key"))),
        ),
        (
            "two keys",
            variant(&[], &[b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA=="]),
            Err((400, Error::DuplicateHeader("Sec-WebSocket-Key"))),
        ),
        (
            "key of 15 bytes",
            variant(
                &["Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4P"],
            ),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Key"))),
        ),
        (
            "key of 17 bytes",
            variant(
                &["Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEBE="],
            ),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Key"))),
        ),
        (
            "key without padding",
            variant(
                &["Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA"],
            ),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Key"))),
        ),
        (
            "key with non-canonical trailing bits",
            variant(
                &["Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEB=="],
            ),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Key"))),
        ),
        (
            "key not base64",
            variant(
                &["Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Key: !QIDBAUGBwgJCgsMDQ4PEA=="],
            ),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Key"))),
        ),
        (
            "key in the URL-safe alphabet",
            variant(
                &["Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Key: _-_-_-_-_-_-_-_-_-_-_w=="],
            ),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Key"))),
        ),
        (
            "key not UTF-8",
            variant(
                &["Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Key: \xc3\xa9QIDBAUGBwgJCgsMDQ4PEA="],
            ),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Key"))),
        ),
        (
            "key with surrounding whitespace",
            variant(
                &["Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Key: \t dGhlIHNhbXBsZSBub25jZQ== \t"],
            ),
            ok.clone(),
        ),
        (
            "two Origin",
            variant(&[], &[b"Origin: https://a.example", b"Origin: https://b.example"]),
            Err((400, Error::DuplicateHeader("Origin"))),
        ),
        (
            "Origin not UTF-8",
            variant(&[], &[b"Origin: https://\xfe.example"]),
            Err((400, Error::InvalidHeader("Origin"))),
        ),
        (
            "subprotocol with a space",
            variant(&[], &[b"Sec-WebSocket-Protocol: chat, super chat"]),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Protocol"))),
        ),
        (
            "subprotocol with a slash",
            variant(&[], &[b"Sec-WebSocket-Protocol: chat/1"]),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Protocol"))),
        ),
        (
            "subprotocol not UTF-8",
            variant(&[], &[b"Sec-WebSocket-Protocol: \xe9"]),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Protocol"))),
        ),
        (
            "subprotocol list with empty elements",
            variant(&[], &[b"Sec-WebSocket-Protocol: , chat,,"]),
            ok.clone(),
        ),
        (
            "malformed extensions",
            variant(&[], &[b"Sec-WebSocket-Extensions: foo; ;"]),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Extensions"))),
        ),
        (
            "malformed second extensions header",
            variant(
                &[],
                &[
                    b"Sec-WebSocket-Extensions: foo",
                    b"Sec-WebSocket-Extensions: bar=1",
                ],
            ),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Extensions"))),
        ),
        (
            "extensions not UTF-8",
            variant(&[], &[b"Sec-WebSocket-Extensions: f\xf0o"]),
            Err((400, Error::InvalidHeader("Sec-WebSocket-Extensions"))),
        ),
        (
            "unrelated header not UTF-8",
            variant(&[], &[b"X-Thing: \x80\xff", b"Cookie: a=\xff"]),
            ok.clone(),
        ),
    ];
    let config: ServerConfig = ServerConfig::new();
    for (what, buf, want) in cases {
        let got = accept(&config, &buf)
            .map(|_| ())
            .map_err(|r| (r.status(), r.error().cloned().expect("not a policy refusal")));
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn every_validation_rule_reports_the_right_error() {
    // Same as above but through the step-wise API, comparing the error.
    let cases: &[(&str, Vec<u8>, Error)] = &[
        ("PUT", build(b"PUT /chat HTTP/1.1", BASE), Error::Method),
        ("HTTP/1.0", build(b"GET /chat HTTP/1.0", BASE), Error::HttpVersion),
        ("no Host", variant(&["Host"], &[]), Error::MissingHeader("Host")),
        ("no Upgrade", variant(&["Upgrade"], &[]), Error::NotUpgrade),
        ("no Connection", variant(&["Connection"], &[]), Error::NotUpgrade),
        (
            "version 12",
            variant(&["Sec-WebSocket-Version"], &[b"Sec-WebSocket-Version: 12"]),
            Error::UnsupportedVersion,
        ),
        (
            "key of 15 bytes",
            variant(
                &["Sec-WebSocket-Key"],
                &[b"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4P"],
            ),
            Error::InvalidHeader("Sec-WebSocket-Key"),
        ),
        (
            "two keys",
            variant(&[], &[b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]),
            Error::DuplicateHeader("Sec-WebSocket-Key"),
        ),
    ];
    for (what, buf, want) in cases {
        let req = parse(buf);
        assert_eq!(
            UpgradeRequest::new(req.head()).err().as_ref(),
            Some(want),
            "{what}"
        );
        let rejection = Rejection::from(want.clone());
        assert_eq!(rejection.error(), Some(want), "{what}");
        assert!(!want.is_caller_error(), "{what}");
    }
}

#[test]
fn head_errors_from_the_parser() {
    let buf = variant(&[], &[b"A: 1", b"B: 2"]);
    assert_eq!(
        parse_request_with(&buf, 6),
        Err(Error::Http(httparse::Error::TooManyHeaders))
    );
    assert!(matches!(parse_request_with(&buf, 7), Ok(Status::Complete(_))));
    assert_eq!(
        Rejection::from(Error::Http(httparse::Error::TooManyHeaders)).status(),
        431
    );

    let bad = b"GET /chat HTTP/1.1\r\nBad Header: x\r\n\r\n";
    let err = parse_request(bad).unwrap_err();
    assert!(matches!(err, Error::Http(_)));
    assert_eq!(Rejection::from(err).status(), 400);
    assert!(matches!(
        parse_request(b"GET /chat HTTP/2.0\r\n\r\n"),
        Err(Error::Http(_))
    ));
}

#[test]
fn request_parser_whole_byte_by_byte_and_with_trailing_bytes() {
    let head = variant(&[], &[b"Sec-WebSocket-Extensions: permessage-deflate"]);
    // Whole.
    let whole = parse(&head);
    // One byte at a time: every strict prefix is Partial, never an error.
    for end in 0..head.len() {
        assert_eq!(
            parse_request(&head[..end]),
            Ok(Status::Partial),
            "prefix of {end} bytes"
        );
    }
    // With trailing bytes: the head length is reported, the rest is left.
    let mut with_frame = head.clone();
    with_frame.extend_from_slice(b"\x81\x85\x01\x02\x03\x04GET / HTTP/1.1\r\n\r\n");
    let Ok(Status::Complete((req, used))) = parse_request(&with_frame) else {
        panic!("trailing bytes made the head incomplete");
    };
    assert_eq!(used, head.len());
    assert_eq!(req, whole);
    let config: ServerConfig = ServerConfig::new();
    assert!(config.accept(req.head()).is_ok());
}

#[test]
fn from_an_already_parsed_httparse_request() {
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut headers);
    assert_eq!(
        RequestHead::from_httparse(&req).unwrap_err(),
        Error::IncompleteRequest
    );
    assert!(Error::IncompleteRequest.is_caller_error());
    let buf = variant(&[], &[]);
    assert_eq!(req.parse(&buf[..30]), Ok(Status::Partial));
    assert_eq!(
        RequestHead::from_httparse(&req).unwrap_err(),
        Error::IncompleteRequest
    );
    // Every header line but the final empty one: slots are left unused.
    assert_eq!(req.parse(&buf[..buf.len() - 2]), Ok(Status::Partial));
    assert_eq!(
        RequestHead::from_httparse(&req).unwrap_err(),
        Error::IncompleteRequest
    );
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut req = httparse::Request::new(&mut headers);
    assert!(req.parse(&buf).unwrap().is_complete());
    let head = RequestHead::from_httparse(&req).unwrap();
    let upgrade = UpgradeRequest::new(head).unwrap();
    // Borrowed, not copied: the key points into the request buffer.
    let key = upgrade.key().as_ptr() as usize;
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    assert!(range.contains(&key));
    assert_eq!(upgrade.head(), head);
    assert_eq!(
        (head.method(), head.target(), head.version()),
        ("GET", "/chat", 1)
    );
}

#[test]
fn what_the_policy_sees() {
    let buf = build(
        b"GET /rooms/7?user=ann&x= HTTP/1.1",
        &[
            b"Host: chat.example:8443",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            b"Sec-WebSocket-Version: 13",
            b"Origin: https://chat.example",
            b"Cookie: session=\"abc\"; theme = dark ;; bare",
            b"Cookie: \xffbroken=1",
            b"cookie: last=1",
            b"X-Token: t1",
            b"x-token: t2",
            b"Sec-WebSocket-Protocol: b, a",
            b"Sec-WebSocket-Protocol: c",
        ],
    );
    let req = parse(&buf);
    let up = UpgradeRequest::new(req.head()).unwrap();
    assert_eq!(up.host(), "chat.example:8443");
    assert_eq!(up.origin(), Some("https://chat.example"));
    assert_eq!(up.target(), "/rooms/7?user=ann&x=");
    assert_eq!(up.path(), "/rooms/7");
    assert_eq!(up.query(), Some("user=ann&x="));
    assert_eq!(up.key(), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(up.protocols(), ["b", "a", "c"]);
    assert_eq!(
        up.cookies().collect::<Vec<_>>(),
        [("session", "abc"), ("theme", "dark"), ("", "bare"), ("last", "1")]
    );
    assert_eq!(up.header("X-TOKEN"), Some(&b"t1"[..]));
    assert_eq!(up.header_values("x-token").collect::<Vec<_>>(), [b"t1", b"t2"]);
    assert_eq!(up.header("missing"), None);

    let no_query = parse(RFC_REQUEST);
    let up = UpgradeRequest::new(no_query.head()).unwrap();
    assert_eq!((up.path(), up.query()), ("/chat", None));
    assert_eq!(up.cookies().count(), 0);
}

#[test]
fn policy_refusal_is_403_with_the_reason() {
    let config: ServerConfig = ServerConfig::new().policy(|req: &UpgradeRequest<'_>| {
        if req.origin() == Some("http://example.com") && req.path() == "/chat" {
            Err(Rejection::forbidden("origin not allowed"))
        } else {
            Ok(())
        }
    });
    let rejection = accept(&config, RFC_REQUEST).unwrap_err();
    assert_eq!(
        (rejection.status(), rejection.reason()),
        (403, "origin not allowed")
    );
    assert_eq!(rejection.error(), None);
    let mut out = Vec::new();
    rejection.write_response(&mut out);
    assert_eq!(
        out,
        b"HTTP/1.1 403 Forbidden\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 19\r\n\
Connection: close\r\n\r\n\
origin not allowed\n"
    );
    // The policy does not run on a request that already failed validation.
    let bad = variant(&["Host"], &[]);
    assert_eq!(accept(&config, &bad).unwrap_err().status(), 400);
    // Nor does it block what it lets through.
    assert!(accept(&config, &variant(&[], &[])).is_ok());
}

struct Origins(&'static [&'static str]);

impl tether_handshake::Policy for Origins {
    fn check(&self, req: &UpgradeRequest<'_>) -> Result<(), Rejection> {
        match req.origin() {
            Some(o) if self.0.contains(&o) => Ok(()),
            _ => Err(Rejection::forbidden(format!("origin {:?} refused", req.origin()))),
        }
    }
}

#[test]
fn policy_as_a_trait_object() {
    let config: ServerConfig = ServerConfig::new().policy_object(Box::new(Origins(&["http://example.com"])));
    assert!(accept(&config, RFC_REQUEST).is_ok());
    let r = accept(&config, &variant(&[], &[])).unwrap_err();
    assert_eq!((r.status(), r.reason()), (403, "origin None refused"));
}

fn selected(server: &[&str], offer_lines: &[&[u8]]) -> Option<String> {
    let config: ServerConfig = ServerConfig::new().protocols(server.iter().copied());
    let buf = variant(&[], offer_lines);
    let req = parse(&buf);
    let accepted = config.accept(req.head()).unwrap();
    let mut out = Vec::new();
    accepted.write_response(&mut out, &[]).unwrap();
    let text = String::from_utf8(out).unwrap();
    let header = text
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Protocol: "))
        .map(str::to_string);
    assert_eq!(header.as_deref(), accepted.protocol());
    header
}

#[test]
fn subprotocol_selection_follows_the_server_preference() {
    /// Server preference, request header lines, selected subprotocol.
    type Case = (
        &'static [&'static str],
        &'static [&'static [u8]],
        Option<&'static str>,
    );
    let cases: &[Case] = &[
        (&["v2", "v1"], &[b"Sec-WebSocket-Protocol: v1, v2"], Some("v2")),
        (&["v1", "v2"], &[b"Sec-WebSocket-Protocol: v2, v1"], Some("v1")),
        (
            &["v3", "v1"],
            &[b"Sec-WebSocket-Protocol: v2", b"Sec-WebSocket-Protocol: v1"],
            Some("v1"),
        ),
        (&["v1"], &[], None),
        (&[], &[b"Sec-WebSocket-Protocol: v1"], None),
        (&["v3"], &[b"Sec-WebSocket-Protocol: v1, v2"], None),
        // Subprotocol names are case-sensitive (RFC 7936).
        (&["Chat"], &[b"Sec-WebSocket-Protocol: chat"], None),
    ];
    for (server, offer, want) in cases {
        assert_eq!(selected(server, offer).as_deref(), *want, "{server:?} {offer:?}");
    }
}

#[test]
fn step_wise_api() {
    let buf = variant(&[], &[b"Sec-WebSocket-Protocol: a, b"]);
    let req = parse(&buf);
    let up = UpgradeRequest::new(req.head()).unwrap();
    assert_eq!(up.select_protocol(&["c", "b", "a"]), Some("b"));
    assert_eq!(up.select_protocol(&[String::from("a")]), Some("a"));
    assert_eq!(up.select_protocol::<&str>(&[]), None);
    assert_eq!(
        up.clone().accept::<()>(Some("z"), Vec::new()).unwrap_err(),
        Error::InvalidArgument("the selected subprotocol was not offered")
    );
    let accepted = up.accept::<()>(Some("a"), Vec::new()).unwrap();
    assert_eq!(accepted.protocol(), Some("a"));
    assert_eq!(accepted.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/// Accepts offers of its name that carry `ok`, answering with `ok` and the
/// offer's other parameters; records which offer it took.
struct Picky(&'static str);

impl ExtensionNegotiator for Picky {
    type Value = (&'static str, usize);
    fn name(&self) -> &str {
        self.0
    }
    fn negotiate(&self, offers: &[Extension<'_>]) -> tether_handshake::NegotiationResult<Self::Value> {
        for (i, offer) in offers.iter().enumerate() {
            assert!(offer.is(self.0));
            if offer.param("ok").is_some() {
                let mut params = ExtensionParams::new();
                for p in offer.params() {
                    params.push(p.name(), p.value())?;
                }
                return Ok(Some((params, (self.0, i))));
            }
        }
        Ok(None)
    }
}

/// A negotiator whose response parameters are not tokens.
struct Broken;

impl ExtensionNegotiator for Broken {
    type Value = (&'static str, usize);
    fn name(&self) -> &str {
        "broken"
    }
    fn negotiate(&self, _: &[Extension<'_>]) -> tether_handshake::NegotiationResult<Self::Value> {
        let mut params = ExtensionParams::new();
        params.push("x", Some("a b"))?;
        Ok(Some((params, ("broken", 0))))
    }
}

#[test]
fn extension_negotiation_in_server_order() {
    let config = ServerConfig::new()
        .negotiator(Picky("beta"))
        .negotiator(Picky("alpha"))
        .negotiator(Picky("gamma"));
    let buf = variant(
        &[],
        &[
            b"Sec-WebSocket-Extensions: alpha; ok; n=1, beta",
            b"Sec-WebSocket-Extensions: unknown; ok, beta ; ok ; w=\"1\\5\", Alpha; ok",
        ],
    );
    let req = parse(&buf);
    let accepted = config.accept(req.head()).unwrap();
    let elements: Vec<&str> = accepted.extensions().iter().map(|e| e.element()).collect();
    assert_eq!(elements, ["beta; ok; w=15", "alpha; ok; n=1"]);
    assert_eq!(accepted.request().extensions().len(), 5);
    let mut out = Vec::new();
    accepted.write_response(&mut out, &[]).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("\r\nSec-WebSocket-Extensions: beta; ok; w=15, alpha; ok; n=1\r\n"),
        "{text}"
    );
    assert_eq!(accepted.into_extension_values(), [("beta", 1), ("alpha", 0)]);

    // Nothing acceptable: no header.
    let buf = variant(&[], &[b"Sec-WebSocket-Extensions: alpha, gamma; no"]);
    let req = parse(&buf);
    let accepted = config.accept(req.head()).unwrap();
    assert!(accepted.extensions().is_empty());
    let mut out = Vec::new();
    accepted.write_response(&mut out, &[]).unwrap();
    assert!(!String::from_utf8(out).unwrap().contains("Extensions"));

    // A negotiator's own error is the server's fault: 500.
    let config = ServerConfig::new().negotiator(Broken);
    let buf = variant(&[], &[b"Sec-WebSocket-Extensions: broken"]);
    let r = accept_with(&config, &buf).unwrap_err();
    assert_eq!(r.status(), 500);
    assert!(r.error().unwrap().is_caller_error());
}

fn accept_with<T>(config: &ServerConfig<T>, buf: &[u8]) -> Result<(), Rejection> {
    let req = parse(buf);
    config.accept(req.head()).map(|_| ())
}

#[test]
fn extra_response_headers() {
    let config: ServerConfig = ServerConfig::new();
    let req = parse(RFC_REQUEST);
    let accepted = config.accept(req.head()).unwrap();
    let mut out = Vec::new();
    accepted
        .write_response(
            &mut out,
            &[("Set-Cookie", "a=1; Path=/"), ("X-Served-By", "tether")],
        )
        .unwrap();
    assert!(out.ends_with(b"\r\nSet-Cookie: a=1; Path=/\r\nX-Served-By: tether\r\n\r\n"));
    for extra in [
        ("Bad Name", "x"),
        ("", "x"),
        ("X", "a\r\nInjected: 1"),
        ("X", "nul\0"),
        ("sec-websocket-accept", "x"),
        ("Upgrade", "websocket"),
        ("Content-Length", "0"),
    ] {
        let mut out = b"kept".to_vec();
        let err = accepted.write_response(&mut out, &[extra]).unwrap_err();
        assert!(err.is_caller_error(), "{extra:?}");
        assert_eq!(out, b"kept", "{extra:?}");
    }
}

#[test]
fn rejection_responses() {
    let cases: &[(Error, &[u8])] = &[
        (
            Error::UnsupportedVersion,
            b"HTTP/1.1 426 Upgrade Required\r\n\
Upgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 40\r\n\
Connection: close\r\n\r\n\
unsupported WebSocket version (need 13)\n",
        ),
        (
            Error::NotUpgrade,
            b"HTTP/1.1 426 Upgrade Required\r\n\
Upgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 32\r\n\
Connection: close\r\n\r\n\
not a WebSocket upgrade request\n",
        ),
        (
            Error::Method,
            b"HTTP/1.1 405 Method Not Allowed\r\n\
Allow: GET\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 35\r\n\
Connection: close\r\n\r\n\
a WebSocket handshake must use GET\n",
        ),
        (
            Error::DuplicateHeader("Sec-WebSocket-Key"),
            b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Length: 39\r\n\
Connection: close\r\n\r\n\
more than one Sec-WebSocket-Key header\n",
        ),
    ];
    for (error, want) in cases {
        let mut out = Vec::new();
        Rejection::from(error.clone()).write_response(&mut out);
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want));
        // And it is a well-formed response whose Content-Length is the body.
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut res = httparse::Response::new(&mut headers);
        let Ok(Status::Complete(head)) = res.parse(&out) else {
            panic!("unparsable")
        };
        let len = res
            .headers
            .iter()
            .find(|h| h.name == "Content-Length")
            .map(|h| std::str::from_utf8(h.value).unwrap().parse::<usize>().unwrap());
        assert_eq!(len, Some(out.len() - head));
    }
}
