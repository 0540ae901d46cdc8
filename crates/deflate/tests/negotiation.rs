//! RFC 7692 section 7 negotiation rules, one table per side.

use tether_deflate::{
    ClientOffer, ClientWindow, DeflateConfig, Error, Params, accept_response, offer_header,
};
use tether_handshake::{ExtensionNegotiator, parse_extensions};

fn params(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> Params {
    Params {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: sbits,
        client_max_window_bits: cbits,
    }
}

/// With takeover allowed both ways, the response says only what the offer
/// forces.
fn permissive() -> DeflateConfig {
    DeflateConfig::new()
        .server_context_takeover(true)
        .client_context_takeover(true)
}

#[test]
fn server_accepts_or_declines_each_offer() {
    // (offer header, expected response params or None for declined, agreed params)
    let cases: &[(&str, Option<&str>, Params)] = &[
        ("permessage-deflate", Some(""), Params::default()),
        (
            "permessage-deflate; server_no_context_takeover",
            Some("server_no_context_takeover"),
            params(true, false, 15, 15),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            Some("client_no_context_takeover"),
            params(false, true, 15, 15),
        ),
        // A bare client_max_window_bits only says the client would accept a limit.
        (
            "permessage-deflate; client_max_window_bits",
            Some(""),
            params(false, false, 15, 15),
        ),
        // The client limits itself; nothing to answer.
        (
            "permessage-deflate; client_max_window_bits=10",
            Some("client_max_window_bits=10"),
            params(false, false, 15, 10),
        ),
        // server_max_window_bits must be echoed to be accepted, for every value 8..=15.
        (
            "permessage-deflate; server_max_window_bits=8",
            Some("server_max_window_bits=8"),
            params(false, false, 8, 15),
        ),
        (
            "permessage-deflate; server_max_window_bits=15",
            Some("server_max_window_bits=15"),
            params(false, false, 15, 15),
        ),
        // Quoted values are the same values (RFC 6455 section 9.1).
        (
            "permessage-deflate; server_max_window_bits=\"12\"",
            Some("server_max_window_bits=12"),
            params(false, false, 12, 15),
        ),
        // Parameter names are matched without regard to case.
        (
            "permessage-deflate; Server_No_Context_Takeover",
            Some("server_no_context_takeover"),
            params(true, false, 15, 15),
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9; client_max_window_bits=9",
            Some(
                "server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=9",
            ),
            params(true, true, 9, 9),
        ),
        // Declined: unknown parameter, duplicates, bad values.
        ("permessage-deflate; x", None, Params::default()),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; server_no_context_takeover=1",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; client_no_context_takeover=true",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; server_max_window_bits",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; server_max_window_bits=7",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; server_max_window_bits=16",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; server_max_window_bits=08",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; server_max_window_bits=010",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; server_max_window_bits=+9",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; server_max_window_bits=a",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; client_max_window_bits=0",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; client_max_window_bits=16",
            None,
            Params::default(),
        ),
        (
            "permessage-deflate; client_max_window_bits=1e1",
            None,
            Params::default(),
        ),
    ];
    let config = permissive();
    for (offer, response, agreed) in cases {
        let offers = parse_extensions(offer).unwrap();
        let got = config.choose(&offers);
        match response {
            None => assert_eq!(got, None, "{offer}"),
            Some(want) => {
                let (resp, p) = got.unwrap_or_else(|| panic!("declined {offer}"));
                assert_eq!(resp.as_str(), *want, "{offer}");
                assert_eq!(p, *agreed, "{offer}");
            }
        }
    }
}

#[test]
fn server_preferences_shape_the_response() {
    fn offers(s: &str) -> Vec<tether_handshake::Extension<'_>> {
        parse_extensions(s).unwrap()
    }
    // Defaults: no context takeover either way, added even when not asked.
    let (resp, p) = DeflateConfig::new()
        .choose(&offers("permessage-deflate"))
        .unwrap();
    assert_eq!(
        resp.as_str(),
        "server_no_context_takeover; client_no_context_takeover"
    );
    assert_eq!(p, params(true, true, 15, 15));
    // A smaller server window is announced unasked.
    let config = permissive().server_max_window_bits(10).unwrap();
    let (resp, p) = config.choose(&offers("permessage-deflate")).unwrap();
    assert_eq!(
        (resp.as_str(), p),
        ("server_max_window_bits=10", params(false, false, 10, 15))
    );
    // ... and the smaller of the two wins when the client asks too.
    let (resp, _) = config
        .choose(&offers("permessage-deflate; server_max_window_bits=12"))
        .unwrap();
    assert_eq!(resp.as_str(), "server_max_window_bits=10");
    let (resp, _) = config
        .choose(&offers("permessage-deflate; server_max_window_bits=9"))
        .unwrap();
    assert_eq!(resp.as_str(), "server_max_window_bits=9");
    // The client's window is limited only when it offered client_max_window_bits.
    let config = permissive().client_max_window_bits(11).unwrap();
    let (resp, p) = config.choose(&offers("permessage-deflate")).unwrap();
    assert_eq!((resp.as_str(), p.client_max_window_bits), ("", 15));
    let (resp, p) = config
        .choose(&offers("permessage-deflate; client_max_window_bits"))
        .unwrap();
    assert_eq!(
        (resp.as_str(), p.client_max_window_bits),
        ("client_max_window_bits=11", 11)
    );
    let (resp, p) = config
        .choose(&offers("permessage-deflate; client_max_window_bits=9"))
        .unwrap();
    assert_eq!(
        (resp.as_str(), p.client_max_window_bits),
        ("client_max_window_bits=9", 9)
    );
    // Bad settings are the caller's error.
    for bits in [0, 7, 16] {
        assert!(
            DeflateConfig::new()
                .server_max_window_bits(bits)
                .unwrap_err()
                .is_caller_error()
        );
        assert!(DeflateConfig::new().client_max_window_bits(bits).is_err());
    }
    assert!(DeflateConfig::new().level(10).is_err());
}

#[test]
fn first_acceptable_offer_wins() {
    let offers = parse_extensions(
        "permessage-deflate; bogus, \
         permessage-deflate; server_max_window_bits=10, \
         permessage-deflate; server_max_window_bits=11",
    )
    .unwrap();
    let (resp, _) = permissive().choose(&offers).unwrap();
    assert_eq!(resp.as_str(), "server_max_window_bits=10");
    let all_bad =
        parse_extensions("permessage-deflate; a, permessage-deflate; server_max_window_bits=99").unwrap();
    assert_eq!(permissive().choose(&all_bad), None);
    // Through the handshake negotiator interface.
    let accepted = permissive().negotiate(&offers).unwrap();
    assert_eq!(
        accepted.map(|(p, _)| p.as_str().to_owned()).as_deref(),
        Some("server_max_window_bits=10")
    );
    assert!(permissive().negotiate(&all_bad).unwrap().is_none());
}

#[test]
fn handshake_writes_the_response_header() {
    let handshake: tether_handshake::ServerConfig<Box<dyn tether_ws::Extension>> =
        tether_handshake::ServerConfig::new().negotiator(permissive());
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
        Sec-WebSocket-Extensions: x-other, permessage-deflate; client_max_window_bits=16\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n\r\n";
    let tether_handshake::Status::Complete((req, _)) = tether_handshake::parse_request(request).unwrap()
    else {
        panic!("partial");
    };
    let accepted = handshake.accept(req.head()).unwrap();
    let mut out = Vec::new();
    accepted.write_response(&mut out, &[]).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("\r\nSec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"),
        "{text}"
    );
    assert_eq!(accepted.into_extension_values().len(), 1);
}

#[test]
fn client_offers_are_formatted_in_rfc_order() {
    let cases: &[(ClientOffer, &str)] = &[
        (ClientOffer::new(), "permessage-deflate; client_max_window_bits"),
        (
            ClientOffer::new()
                .client_max_window_bits(ClientWindow::Omit)
                .unwrap(),
            "permessage-deflate",
        ),
        (
            ClientOffer::new()
                .client_no_context_takeover(true)
                .server_no_context_takeover(true)
                .server_max_window_bits(Some(8))
                .unwrap()
                .client_max_window_bits(ClientWindow::Max(12))
                .unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=8; client_max_window_bits=12",
        ),
    ];
    for (offer, want) in cases {
        assert_eq!(offer.element(), *want);
        // What we offer, our own server accepts.
        let parsed = parse_extensions(want).unwrap();
        assert!(permissive().choose(&parsed).is_some(), "{want}");
    }
    assert_eq!(
        offer_header(&[
            ClientOffer::new(),
            ClientOffer::new().server_no_context_takeover(true)
        ]),
        "permessage-deflate; client_max_window_bits, permessage-deflate; server_no_context_takeover; client_max_window_bits"
    );
    assert!(ClientOffer::new().server_max_window_bits(Some(7)).is_err());
    assert!(
        ClientOffer::new()
            .client_max_window_bits(ClientWindow::Max(16))
            .is_err()
    );
}

#[test]
fn client_checks_the_response_against_its_offer() {
    let plain = ClientOffer::new()
        .client_max_window_bits(ClientWindow::Omit)
        .unwrap();
    let negotiable = ClientOffer::new();
    let max10 = ClientOffer::new()
        .client_max_window_bits(ClientWindow::Max(10))
        .unwrap();
    let server10 = plain.server_max_window_bits(Some(10)).unwrap();
    let snct = plain.server_no_context_takeover(true);
    let cnct = plain.client_no_context_takeover(true);
    let cases: &[(ClientOffer, &str, Result<Params, Error>)] = &[
        (plain, "permessage-deflate", Ok(Params::default())),
        // The server may add either no_context_takeover unasked.
        (
            plain,
            "permessage-deflate; server_no_context_takeover",
            Ok(params(true, false, 15, 15)),
        ),
        (
            plain,
            "permessage-deflate; client_no_context_takeover",
            Ok(params(false, true, 15, 15)),
        ),
        // ... and server_max_window_bits too.
        (
            plain,
            "permessage-deflate; server_max_window_bits=9",
            Ok(params(false, false, 9, 15)),
        ),
        // Our own announcement holds without an echo.
        (cnct, "permessage-deflate", Ok(params(false, true, 15, 15))),
        // A requested server_no_context_takeover must be echoed.
        (
            snct,
            "permessage-deflate; server_no_context_takeover",
            Ok(params(true, false, 15, 15)),
        ),
        (
            snct,
            "permessage-deflate",
            Err(Error::Missing("server_no_context_takeover")),
        ),
        // server_max_window_bits: echoed, equal or smaller.
        (
            server10,
            "permessage-deflate; server_max_window_bits=10",
            Ok(params(false, false, 10, 15)),
        ),
        (
            server10,
            "permessage-deflate; server_max_window_bits=8",
            Ok(params(false, false, 8, 15)),
        ),
        (
            server10,
            "permessage-deflate; server_max_window_bits=11",
            Err(Error::WindowTooLarge("server_max_window_bits")),
        ),
        (
            server10,
            "permessage-deflate",
            Err(Error::Missing("server_max_window_bits")),
        ),
        // client_max_window_bits: only if offered, with a value, not above ours.
        (
            plain,
            "permessage-deflate; client_max_window_bits=10",
            Err(Error::NotOffered("client_max_window_bits")),
        ),
        (
            negotiable,
            "permessage-deflate; client_max_window_bits=10",
            Ok(params(false, false, 15, 10)),
        ),
        (
            negotiable,
            "permessage-deflate; client_max_window_bits",
            Err(Error::InvalidValue("client_max_window_bits")),
        ),
        (negotiable, "permessage-deflate", Ok(Params::default())),
        (max10, "permessage-deflate", Ok(params(false, false, 15, 10))),
        (
            max10,
            "permessage-deflate; client_max_window_bits=9",
            Ok(params(false, false, 15, 9)),
        ),
        (
            max10,
            "permessage-deflate; client_max_window_bits=11",
            Err(Error::WindowTooLarge("client_max_window_bits")),
        ),
        // Malformed responses.
        (
            plain,
            "permessage-deflate; foo",
            Err(Error::UnknownParameter("foo".into())),
        ),
        (
            plain,
            "permessage-deflate; foo=1",
            Err(Error::UnknownParameter("foo".into())),
        ),
        (
            plain,
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            Err(Error::DuplicateParameter("server_no_context_takeover")),
        ),
        (
            negotiable,
            "permessage-deflate; client_max_window_bits=9; client_max_window_bits=9",
            Err(Error::DuplicateParameter("client_max_window_bits")),
        ),
        (
            plain,
            "permessage-deflate; server_no_context_takeover=x",
            Err(Error::InvalidValue("server_no_context_takeover")),
        ),
        (
            plain,
            "permessage-deflate; client_no_context_takeover=1",
            Err(Error::InvalidValue("client_no_context_takeover")),
        ),
        (
            plain,
            "permessage-deflate; server_max_window_bits",
            Err(Error::InvalidValue("server_max_window_bits")),
        ),
        (
            plain,
            "permessage-deflate; server_max_window_bits=7",
            Err(Error::InvalidValue("server_max_window_bits")),
        ),
        (
            plain,
            "permessage-deflate; server_max_window_bits=016",
            Err(Error::InvalidValue("server_max_window_bits")),
        ),
        (
            negotiable,
            "permessage-deflate; client_max_window_bits=16",
            Err(Error::InvalidValue("client_max_window_bits")),
        ),
    ];
    for (offer, response, want) in cases {
        let parsed = parse_extensions(response).unwrap();
        assert_eq!(
            &offer.accept(&parsed[0]),
            want,
            "{} -> {response}",
            offer.element()
        );
    }
}

#[test]
fn client_picks_the_offer_the_response_fits() {
    let offers = [
        ClientOffer::new().server_max_window_bits(Some(10)).unwrap(),
        ClientOffer::new()
            .client_max_window_bits(ClientWindow::Omit)
            .unwrap(),
    ];
    let check = |header: &str| accept_response(&offers, &parse_extensions(header).unwrap());
    // Fits the first offer only.
    assert_eq!(
        check("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"),
        Ok(Some(params(false, false, 10, 9)))
    );
    // Fits the second only (no server_max_window_bits: the first is not it).
    assert_eq!(check("permessage-deflate"), Ok(Some(Params::default())));
    // Fits neither: the first offer's complaint.
    assert_eq!(
        check("permessage-deflate; client_max_window_bits=9"),
        Err(Error::Missing("server_max_window_bits"))
    );
    // Not accepted at all, or other extensions only.
    assert_eq!(check(""), Ok(None));
    assert_eq!(check("x-other"), Ok(None));
    assert_eq!(
        check("permessage-deflate, permessage-deflate"),
        Err(Error::DuplicateExtension)
    );
    // Through the handshake crate's response parsing.
    let request = tether_handshake::ClientRequest::new("h", "/", *b"the sample nonce");
    let header = offer_header(&offers);
    let handshake = request.extensions(&header).write(&mut Vec::new()).unwrap();
    let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n\r\n";
    let tether_handshake::Status::Complete((resp, _)) = handshake.validate_response(response).unwrap() else {
        panic!("partial");
    };
    assert_eq!(
        accept_response(&offers, resp.extensions()),
        Ok(Some(params(false, false, 9, 15)))
    );
}
