//! End to end over TCP: the axum chat example (WebSocket and event stream
//! on one topic) with the tokio clients; refusals; Last-Event-ID and
//! reconnection; SSE headers and heartbeats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]
#![cfg(all(feature = "axum", feature = "client"))]

#[path = "../examples/axum_chat.rs"]
#[allow(dead_code)]
mod chat;

use std::net::SocketAddr;
use std::time::Duration;

use axum::{Router, routing::get};
use tether_backoff::Backoff;
use tether_tokio::axum::LastEventId;
use tether_tokio::client::{ClientBuilder, EventSource};
use tether_tokio::sse::{Event, Sse};
use tether_tokio::{CloseCode, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// What a raw HTTP/1.1 request gets back, up to `until` (or the end).
async fn raw(addr: SocketAddr, request: &str, until: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !String::from_utf8_lossy(&got).contains(until) {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn chat_example_websocket_to_event_stream() {
    let addr = serve(chat::app()).await;
    let mut events = EventSource::new(&format!("http://{addr}/events")).unwrap();
    let reader = tokio::spawn(async move { events.next().await });
    let mut ws = ClientBuilder::new(format!("ws://{addr}/ws"))
        .connect()
        .await
        .unwrap();
    // The event stream subscribes when its request arrives: say it until
    // it is heard.
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            ws.send("hello, both").await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            if reader.is_finished() {
                return reader.await.unwrap().unwrap().unwrap();
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(event.data(), "hello, both");
    // The WebSocket hears the topic too, its own words included.
    assert_eq!(ws.recv().await.unwrap(), Some(Message::text("hello, both")));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
}

#[tokio::test]
async fn refusals_are_complete() {
    let addr = serve(chat::app()).await;
    // `Connection: close` besides `Upgrade`: the server closes after its
    // answer, which is read to the end.
    let head = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n";
    let response = raw(
        addr,
        &format!("{head}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"),
        "\0",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("\r\nsec-websocket-version: 13\r\n"),
        "{response}"
    );
    let response = raw(addr, &format!("{head}Sec-WebSocket-Version: 13\r\n\r\n"), "\0").await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(response.contains("Sec-WebSocket-Key"), "{response}");
    // The client reports a refusal by its status.
    let refused = ClientBuilder::new(format!("ws://{addr}/events")).connect().await;
    assert!(
        matches!(refused, Err(tether_tokio::Error::Status(200))),
        "{refused:?}"
    );
}

/// Each response sends one event, numbered after the `Last-Event-ID` it
/// got, and ends: the client reconnects and resumes from what it saw.
#[tokio::test]
async fn event_source_resumes_with_last_event_id() {
    async fn once(LastEventId(last): LastEventId) -> Sse<impl futures_util::Stream<Item = Event>> {
        let next = last.as_deref().map_or(1, |id| id.parse::<u32>().unwrap() + 1);
        let data = format!("after {}", last.as_deref().unwrap_or("none"));
        let event = Event::with_id(&next.to_string(), &data).unwrap();
        Sse::new(futures_util::stream::iter([event]))
    }
    let addr = serve(Router::new().route("/once", get(once))).await;
    let backoff = Backoff::new().initial(Duration::from_millis(10)).jitter(0.0);
    let mut events = EventSource::new(&format!("http://{addr}/once"))
        .unwrap()
        .backoff(backoff)
        // The wait after a stream that delivered events.
        .reconnection_time(Duration::from_millis(10));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push((event.last_event_id().to_owned(), event.data().to_owned()));
    }
    assert_eq!(
        seen,
        [("1", "after none"), ("2", "after 1"), ("3", "after 2")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let resumed = EventSource::new(&format!("http://{addr}/once"))
        .unwrap()
        .resume_from("41");
    let mut resumed = resumed;
    let event = resumed.next().await.unwrap().unwrap();
    assert_eq!((event.last_event_id(), event.data()), ("42", "after 41"));
}

#[tokio::test]
async fn event_stream_headers_and_heartbeat() {
    async fn quiet() -> Sse<impl futures_util::Stream<Item = Event>> {
        Sse::new(futures_util::stream::pending()).heartbeat(Some(Duration::from_millis(50)))
    }
    let addr = serve(Router::new().route("/quiet", get(quiet))).await;
    let response = raw(addr, "GET /quiet HTTP/1.1\r\nHost: x\r\n\r\n", ":\n\r\n").await;
    let lower = response.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200 "), "{response}");
    assert!(
        lower.contains("\r\ncontent-type: text/event-stream\r\n"),
        "{response}"
    );
    assert!(lower.contains("\r\ncache-control: no-cache\r\n"), "{response}");
    // One chunk holding the heartbeat comment.
    assert!(response.ends_with("\r\n\r\n2\r\n:\n\r\n"), "{response:?}");
}

/// A server that takes the request and never answers: each attempt is
/// given up at the response deadline, its connection closed, and the
/// client tries again after the backoff, until its attempts run out.
#[tokio::test]
async fn event_source_gives_up_on_a_server_that_never_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let closed_tx = closed_tx.clone();
            tokio::spawn(async move {
                // Read the request and whatever follows, answer nothing,
                // and report when the client closes.
                let mut buf = [0u8; 1024];
                let mut request = Vec::new();
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let _ = closed_tx.send(String::from_utf8_lossy(&request).into_owned());
            });
        }
    });
    let backoff = Backoff::new()
        .initial(Duration::from_millis(10))
        .jitter(0.0)
        .max_attempts(Some(2));
    let mut events = EventSource::new(&format!("http://{addr}/events"))
        .unwrap()
        .backoff(backoff)
        .reconnection_time(Duration::ZERO)
        .response_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .expect("given up within 30 s");
    assert!(
        matches!(result, Err(tether_tokio::Error::Timeout("response head"))),
        "{result:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "three attempts of 300 ms"
    );
    for attempt in 0..3 {
        let request = tokio::time::timeout(Duration::from_secs(10), closed.recv())
            .await
            .expect("the connection was closed")
            .unwrap();
        assert!(
            request.starts_with("GET /events HTTP/1.1\r\n"),
            "attempt {attempt}: {request}"
        );
    }
}

/// An event id with a control character (any text without NUL is an id)
/// cannot be a header value: the next request goes without
/// `Last-Event-ID` rather than failing, and the stream goes on.
#[tokio::test]
async fn event_source_reconnects_after_an_id_no_header_can_carry() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (requests_tx, mut requests) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for body in ["id: a\u{1}b\ndata: one\n\n", "id: 2\ndata: two\n\n"] {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "a whole request");
                request.extend_from_slice(&buf[..n]);
            }
            requests_tx
                .send(String::from_utf8_lossy(&request).into_owned())
                .unwrap();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n{body}"
            );
            stream.write_all(response.as_bytes()).await.unwrap();
        }
    });
    let backoff = Backoff::new().initial(Duration::from_millis(10)).jitter(0.0);
    let mut events = EventSource::new(&format!("http://{addr}/events"))
        .unwrap()
        .backoff(backoff)
        // The wait after a stream that delivered events.
        .reconnection_time(Duration::from_millis(10));
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        seen.push((event.last_event_id().to_owned(), event.data().to_owned()));
    }
    assert_eq!(
        seen,
        [("a\u{1}b", "one"), ("2", "two")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let first = requests.recv().await.unwrap();
    let second = requests.recv().await.unwrap();
    for request in [&first, &second] {
        assert!(
            !request.to_ascii_lowercase().contains("last-event-id"),
            "{request}"
        );
    }
}
