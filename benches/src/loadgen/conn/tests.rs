use super::*;

#[test]
fn event_stream_heads() {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: x\n\n";
    assert_eq!(event_stream_head(ok).unwrap(), Some(ok.len() - 9));
    assert_eq!(event_stream_head(&ok[..20]).unwrap(), None);
    assert!(event_stream_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").is_err());
    assert!(event_stream_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n").is_err());
    assert!(
        event_stream_head(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .is_err()
    );
}

#[test]
fn upgrade_heads() {
    let mut request = Vec::new();
    let handshake = ClientRequest::new("h", "/", [7; 16]).write(&mut request).unwrap();
    let ok = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\nab",
        handshake.expected_accept()
    );
    let ok = ok.as_bytes();
    assert_eq!(upgrade_head(&handshake, ok).unwrap(), Some((ok.len() - 2, None)));
    for end in 0..ok.len() - 2 {
        assert_eq!(upgrade_head(&handshake, &ok[..end]).unwrap(), None, "{end}");
    }
    let refused = upgrade_head(&handshake, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    assert!(refused.unwrap_err().to_string().contains("status 404 Not Found"));
    let wrong = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert!(upgrade_head(&handshake, wrong).is_err());
    assert!(upgrade_head(&handshake, b"garbage\r\n\r\n").is_err());
}

/// Opens `count` WebSockets to `addr` and returns the counts of why
/// they failed (the test fails if they all opened).
fn failures_opening(
    addr: SocketAddr,
    sources: Vec<IpAddr>,
    count: usize,
    timeout: Duration,
) -> ConnectFailures {
    let dial = Dial {
        addr,
        host: addr.to_string(),
        tls: None,
        concurrency: 2,
        timeout,
        sources,
        half_tls: None,
    };
    let mut poll = Poll::new().unwrap();
    let group = Group {
        kind: Kind::WebSocket,
        target: "/",
        count,
        deflate: false,
    };
    let e = connect_all(&mut poll, &dial, &[group]).expect_err("the connections failed");
    super::super::report::connect_failures(&e)
        .unwrap_or_else(|| panic!("not counted by cause: {e}"))
        .clone()
}

/// A port nobody listens on: the port of a listener just closed.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn a_refused_connection_is_counted_as_refused() {
    let f = failures_opening(closed_port(), Vec::new(), 3, Duration::from_secs(10));
    assert_eq!(f.causes, [("refused".to_owned(), 3)].into());
    assert_eq!((f.wanted, f.opened), (3, 0));
    assert!(f.to_string().contains("3 refused (ECONNREFUSED)"), "{f}");
    assert!(f.first.as_deref().unwrap().contains("connection 0"), "{f}");
}

#[test]
fn an_unusable_source_address_is_counted_as_out_of_source_ports() {
    // A source address this machine does not have (TEST-NET-1) fails
    // with the errno of a pair out of ports, EADDRNOTAVAIL.
    let f = failures_opening(
        closed_port(),
        vec!["192.0.2.1".parse().unwrap()],
        2,
        Duration::from_secs(10),
    );
    assert_eq!(f.causes, [("source_ports".to_owned(), 2)].into());
}

#[test]
fn refusals_by_status_and_closes_are_told_apart() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The first connection accepted gets a 503, the second is closed
    // once its request is read, the third gets the upgrade: whichever
    // connection comes first, each cause is counted once.
    let server = std::thread::spawn(move || {
        for n in 0..3 {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let got = s.read(&mut buf).unwrap();
                assert!(got > 0, "the request ended early");
                head.extend_from_slice(&buf[..got]);
            }
            match n {
                0 => s
                    .write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
                    )
                    .unwrap(),
                1 => {}
                _ => {
                    let text = String::from_utf8(head).unwrap();
                    let key = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                        .unwrap()
                        .to_owned();
                    let accept = tether_handshake::accept_key(key.as_bytes());
                    let accept = std::str::from_utf8(&accept).unwrap();
                    s.write_all(
                        format!(
                            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                             Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .unwrap();
                    // Held open until the client has counted.
                    let _ = s.read(&mut buf);
                }
            }
        }
    });
    let f = failures_opening(addr, Vec::new(), 3, Duration::from_secs(10));
    server.join().unwrap();
    assert_eq!(
        f.causes,
        [("reset".to_owned(), 1), ("status_503".to_owned(), 1)].into()
    );
    assert_eq!((f.wanted, f.opened), (3, 1));
}

#[test]
fn at_the_deadline_the_unfinished_are_timeouts_and_the_rest_not_started() {
    // A listener that never accepts: the kernel completes the connects,
    // nobody answers the requests.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let f = failures_opening(listener.local_addr().unwrap(), Vec::new(), 5, Duration::ZERO);
    // Two in progress (the concurrency), three never started.
    assert_eq!(
        f.causes,
        [("not_started".to_owned(), 3), ("timeout".to_owned(), 2)].into()
    );
    assert!(
        f.first
            .as_deref()
            .unwrap()
            .contains("only 0 of 5 connections open"),
        "{f}"
    );
}

#[test]
fn nonces_differ() {
    let mut n = Nonces(1);
    assert_ne!(n.next(), n.next());
}

#[test]
fn half_tls_sends_every_second_connection_to_the_tls_listener() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let path = std::env::temp_dir().join(format!("loadgen-half-tls-{}.pem", std::process::id()));
    std::fs::write(&path, cert.cert.pem()).unwrap();
    let tls = Tls::new("localhost", Some(&path));
    std::fs::remove_file(&path).unwrap();
    let dial = Dial {
        addr: "127.0.0.1:80".parse().unwrap(),
        host: "127.0.0.1:80".into(),
        tls: None,
        concurrency: 1,
        timeout: Duration::ZERO,
        sources: Vec::new(),
        half_tls: Some(TlsListener {
            addr: "127.0.0.1:443".parse().unwrap(),
            host: "localhost:443".into(),
            tls: tls.unwrap(),
        }),
    };
    let routes: Vec<(u16, &str, bool)> = (0..4)
        .map(|i| {
            let (addr, host, tls) = dial.route(i);
            (addr.port(), host, tls.is_some())
        })
        .collect();
    let plain = (80, "127.0.0.1:80", false);
    let over_tls = (443, "localhost:443", true);
    assert_eq!(routes, [plain, over_tls, plain, over_tls]);
    let all_plain = Dial {
        half_tls: None,
        ..dial
    };
    let (addr, host, tls) = all_plain.route(1);
    assert_eq!((addr.port(), host, tls.is_some()), plain);
}
