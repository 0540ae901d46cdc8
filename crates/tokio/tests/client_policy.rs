//! The tokio clients follow tether-client-core's rules, the same as
//! tether-client's: URLs, redirects, the response head's limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing)]
#![cfg(feature = "client")]

use std::time::Duration;

use tether_tokio::Error;
use tether_tokio::client::EventSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that answers its connections, in order, with `responses`,
/// and sends the request lines it read down the channel.
async fn script(responses: Vec<String>) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for response in responses {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "a whole request");
                request.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&request).into_owned();
            let _ = tx.send(text.lines().next().unwrap_or_default().to_owned());
            let response = response.replace("{addr}", &addr.to_string());
            stream.write_all(response.as_bytes()).await.unwrap();
        }
    });
    (format!("http://{addr}"), rx)
}

const STREAM: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n";

/// Redirects are followed (they ended the stream with Status(302) once).
#[tokio::test]
async fn event_source_follows_redirects() {
    let (base, mut requests) = script(vec![
        "HTTP/1.1 302 Found\r\nLocation: /moved\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{addr}/final?x=1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_owned(),
        format!("{STREAM}data: here\n\n"),
    ])
    .await;
    let mut events = EventSource::new(&format!("{base}/start")).unwrap();
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.data(), "here");
    let mut lines = Vec::new();
    while let Ok(line) = requests.try_recv() {
        lines.push(line);
    }
    assert_eq!(
        lines,
        [
            "GET /start HTTP/1.1",
            "GET /moved HTTP/1.1",
            "GET /final?x=1 HTTP/1.1"
        ]
    );
}

/// A 503 fails for good by default (EventSource's way); told to retry
/// "not now" answers, the source waits and asks again.
#[tokio::test]
async fn event_source_retries_unavailable_only_when_asked() {
    let busy = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (base, _) = script(vec![busy.to_owned()]).await;
    let mut events = EventSource::new(&base).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap();
    assert!(matches!(ended, Err(Error::Status(503))), "{ended:?}");

    let gateway = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (base, mut requests) = script(vec![
        busy.to_owned(),
        gateway.to_owned(),
        format!("{STREAM}data: here\n\n"),
    ])
    .await;
    let mut events = EventSource::new(&base)
        .unwrap()
        .reconnection_time(Duration::from_millis(10))
        .backoff(tether_backoff::Backoff::new().initial(Duration::from_millis(1)))
        .retry_unavailable(true);
    let event = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.data(), "here");
    let mut asked = 0;
    while requests.try_recv().is_ok() {
        asked += 1;
    }
    assert_eq!(asked, 3);
}

/// A redirect loop fails for good at the limit.
#[tokio::test]
async fn event_source_stops_a_redirect_loop_at_the_limit() {
    let hop = "HTTP/1.1 301 Moved\r\nLocation: /again\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (base, _requests) = script(vec![hop.to_owned(); 4]).await;
    let mut events = EventSource::new(&format!("{base}/again"))
        .unwrap()
        .max_redirects(3);
    let result = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Policy(tether_client_core::Error::TooManyRedirects {
                limit: 3
            }))
        ),
        "{result:?}"
    );
}

/// A response head over 16 KiB (the design's bound) fails for good; hyper
/// alone took some 400 KiB.
#[tokio::test]
async fn event_source_bounds_the_response_head() {
    let padding = "x".repeat(20 << 10);
    let (base, _requests) = script(vec![format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Padding: {padding}\r\n\r\ndata: x\n\n"
    )])
    .await;
    let mut events = EventSource::new(&format!("{base}/big")).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap();
    assert!(
        matches!(
            result,
            Err(Error::Policy(tether_client_core::Error::HeadTooLarge {
                limit: 16384
            }))
        ),
        "{result:?}"
    );
}

/// Each client takes its own schemes only, and the same URLs as
/// tether-client: a `ws:` URL is no event stream, an `http:` URL no
/// WebSocket, and user information and a WebSocket URL's fragment are
/// refused before anything is connected.
#[tokio::test]
async fn urls_are_checked_by_the_shared_rules() {
    for url in [
        "ws://127.0.0.1:1/events",
        "http://user:pw@127.0.0.1:1/",
        "http://127.0.0.1:0/",
        "http://h st/",
    ] {
        assert!(matches!(EventSource::new(url), Err(Error::Usage(_))), "{url}");
    }
    for url in [
        "http://127.0.0.1:1/chat",
        "ws://127.0.0.1:1/chat#fragment",
        "ws://user@127.0.0.1:1/",
    ] {
        let result = tether_tokio::client::connect(url).await;
        assert!(matches!(result, Err(Error::Usage(_))), "{url}: {result:?}");
    }
}
