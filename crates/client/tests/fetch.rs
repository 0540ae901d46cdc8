//! `tether_client::get` against a local server: a chunked body and its
//! `Cache-Control`, a body over the cap, a head that never ends, a server
//! that never answers (the total timeout), and schemes it refuses.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use tether_client::{Error, FetchOptions, get};

/// A server that answers one request with `response` (written after the
/// request head is read), or holds the connection open without a word if
/// `response` is `None`: its URL.
fn serve_once(response: Option<Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        match response {
            Some(bytes) => {
                let _ = stream.write_all(&bytes);
            }
            None => std::thread::sleep(Duration::from_secs(30)),
        }
    });
    url
}

fn options() -> FetchOptions {
    let mut options = FetchOptions::default();
    options.total_timeout = Duration::from_secs(10);
    options.max_body = 64;
    options
}

#[test]
fn a_chunked_body_and_its_cache_control() {
    let url = serve_once(Some(
        b"HTTP/1.1 200 OK\r\nCache-Control: public, max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n".to_vec(),
    ));
    let fetched = get(&url, &options()).unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.cache_control.as_deref(), Some("public, max-age=60"));
    assert_eq!(fetched.body, b"{\"a\":1}");
}

#[test]
fn a_status_is_returned_as_it_is() {
    let url = serve_once(Some(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n".to_vec()));
    let fetched = get(&url, &options()).unwrap();
    assert_eq!((fetched.status, fetched.body.len()), (503, 0));
}

#[test]
fn a_body_over_the_cap_fails() {
    for response in [
        format!("HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n{}", "x".repeat(65)),
        format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}", "x".repeat(100)),
    ] {
        let url = serve_once(Some(response.into_bytes()));
        let err = get(&url, &options()).unwrap_err();
        assert!(
            matches!(&err, Error::Http(why) if why.contains("longer than 64")),
            "{err}"
        );
    }
    // 64 bytes are taken.
    let url = serve_once(Some(
        format!("HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n{}", "x".repeat(64)).into_bytes(),
    ));
    assert_eq!(get(&url, &options()).unwrap().body.len(), 64);
}

#[test]
fn a_head_that_never_ends_fails() {
    let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..2000 {
        response.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    let url = serve_once(Some(response));
    let err = get(&url, &options()).unwrap_err();
    assert!(matches!(&err, Error::Http(_)), "{err}");
}

#[test]
fn a_silent_server_times_out() {
    let url = serve_once(None);
    let mut options = options();
    options.total_timeout = Duration::from_millis(300);
    assert!(matches!(get(&url, &options), Err(Error::Timeout(_))));
}

#[test]
fn only_http_and_https() {
    for url in ["ws://127.0.0.1:1/", "file:///etc/passwd", "nonsense"] {
        assert!(get(url, &options()).is_err(), "{url}");
    }
}
