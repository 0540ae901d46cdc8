//! Arbitrary bytes as an upgrade request (server role) and as an upgrade
//! response (client role), whole and in two pieces: never a panic, the
//! same answer however the bytes are split, and output bounded by input.
//!
//! Input layout: the first byte picks the split point (0 = at the start,
//! 255 = at the end), the rest is the head. Seeds in
//! `seeds/handshake_request/` start with one such byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tether_handshake::{
    ClientHandshake, ClientRequest, Extension, ExtensionNegotiator, ExtensionParams, NegotiationResult,
    Rejection, ServerConfig, Status, UpgradeRequest, parse_extensions, parse_request_with,
};

const MAX_HEADERS: usize = 32;

/// Accepts the first offer of its name, echoing its parameters (which may
/// fail the builder: that is a 500, not a panic).
struct Echo(&'static str);

impl ExtensionNegotiator for Echo {
    type Value = usize;
    fn name(&self) -> &str {
        self.0
    }
    fn negotiate(&self, offers: &[Extension<'_>]) -> NegotiationResult<usize> {
        let Some(first) = offers.first() else {
            return Ok(None);
        };
        let mut params = ExtensionParams::new();
        for p in first.params() {
            params.push(p.name(), p.value())?;
        }
        Ok(Some((params, offers.len())))
    }
}

fn server_config() -> ServerConfig<usize> {
    ServerConfig::new()
        .protocols(["chat", "superchat"])
        .negotiator(Echo("permessage-deflate"))
        .negotiator(Echo("x-test"))
        .policy(|req: &UpgradeRequest<'_>| {
            let _ = (req.path(), req.query(), req.host(), req.header("user-agent"));
            if req.cookies().any(|(name, _)| name == "deny") || req.origin() == Some("null") {
                Err(Rejection::forbidden("refused"))
            } else {
                Ok(())
            }
        })
}

fn client() -> ClientHandshake {
    ClientRequest::new("server.example.com", "/chat", *b"the sample nonce")
        .protocols(&["chat", "superchat"])
        .extensions("permessage-deflate; client_max_window_bits, x-test")
        .write(&mut Vec::new())
        .expect("valid client request")
}

fn server(input: &[u8], split: usize, config: &ServerConfig<usize>) {
    let whole = parse_request_with(input, MAX_HEADERS);
    let prefix = parse_request_with(&input[..split], MAX_HEADERS);
    match (&whole, &prefix) {
        (Ok(Status::Complete((_, used))), _) if split >= *used => assert_eq!(whole, prefix),
        (Ok(Status::Complete(_)), _) => assert_eq!(prefix, Ok(Status::Partial)),
        // A prefix can only be complete if the whole is, with the same head.
        (_, Ok(Status::Complete(_))) => panic!("prefix complete, whole {whole:?}"),
        _ => {}
    }
    let Ok(Status::Complete((req, used))) = whole else {
        return;
    };
    assert!(used <= input.len());
    let mut out = Vec::new();
    match config.accept(req.head()) {
        Ok(accepted) => {
            accepted
                .write_response(&mut out, &[("X-Fuzz", "1")])
                .expect("valid extra header");
            assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
            assert!(accepted.extensions().len() <= 2);
            let _ = accepted.into_extension_values();
        }
        Err(rejection) => {
            assert!(matches!(rejection.status(), 400 | 403 | 405 | 426 | 431 | 500));
            // 500 only for the negotiator's own error, never for the peer.
            if rejection.status() == 500 {
                assert!(rejection.error().is_some_and(|e| e.is_caller_error()));
            }
            rejection.write_response(&mut out);
        }
    }
    // The answer never grows faster than the request that caused it.
    assert!(
        out.len() <= 2 * used + 512,
        "{} bytes out for {used} in",
        out.len()
    );
}

fn client_side(input: &[u8], split: usize, client: &ClientHandshake) {
    let whole = client.validate_response(input);
    let prefix = client.validate_response(&input[..split]);
    match (&whole, &prefix) {
        (Ok(Status::Complete((_, used))), _) if split >= *used => assert_eq!(whole, prefix),
        (Ok(Status::Complete(_)), _) => assert_eq!(prefix, Ok(Status::Partial)),
        (_, Ok(Status::Complete(_))) => panic!("prefix complete, whole {whole:?}"),
        _ => {}
    }
    if let Ok(Status::Complete((res, used))) = whole {
        assert!(used <= input.len());
        assert!(res.protocol().is_none_or(|p| p == "chat" || p == "superchat"));
        assert!(
            res.extensions()
                .iter()
                .all(|e| e.is("permessage-deflate") || e.is("x-test"))
        );
    }
    if let Err(e) = client.validate_response(input) {
        assert!(!e.is_caller_error(), "{e}");
    }
}

fn extensions(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(parsed) = parse_extensions(text) else {
        return;
    };
    let canonical: Vec<String> = parsed.iter().map(ToString::to_string).collect();
    let canonical = canonical.join(", ");
    assert_eq!(parse_extensions(&canonical).as_ref(), Ok(&parsed));
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    // Scaled, so that one byte reaches every split point of a long head.
    let split = usize::from(split) * input.len() / 255;
    server(input, split, &server_config());
    client_side(input, split, &client());
    extensions(input);
});
