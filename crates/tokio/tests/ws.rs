//! The WebSocket over in-memory pipes: both roles, in-place echo, control
//! frames, the close handshake, failures, timers, backpressure, deflate,
//! and the raw-stream handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tether_tokio::{Acceptor, CloseCode, Config, Error, Message, Options, Role, WebSocket};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

fn pair(buffer: usize, options: &Options) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = duplex(buffer);
    (
        WebSocket::from_raw(a, Role::Server, options, &[]),
        WebSocket::from_raw(b, Role::Client, options, &[]),
    )
}

/// The server echoes in place; the client sends every size across a pipe
/// small enough to split frames (so some messages are lent in place and
/// others assembled).
#[tokio::test]
async fn echo_in_place_and_assembled_both_kinds() {
    for pipe in [13, 4096, 1 << 20] {
        let (mut server, mut client) = pair(pipe, &Options::default());
        let echo = tokio::spawn(async move {
            while let Some(message) = server.recv_ref().await.unwrap() {
                message.echo().unwrap();
            }
            server.close_frame().cloned()
        });
        for size in [0, 1, 125, 126, 65535, 65536, 200_000] {
            if pipe < 100 && size > 1000 {
                continue;
            }
            let text = "é".repeat(size / 2);
            client.send(text.as_str()).await.unwrap();
            assert_eq!(
                client.recv().await.unwrap(),
                Some(Message::text(text)),
                "pipe {pipe} size {size}"
            );
            let bytes: Vec<u8> = (0..size).map(|i| i as u8).collect();
            client
                .send(Message::binary(bytes.clone()).as_ref())
                .await
                .unwrap();
            assert_eq!(client.recv().await.unwrap(), Some(Message::binary(bytes)));
        }
        client.close(CloseCode::NORMAL, "done").await.unwrap();
        let frame = echo.await.unwrap().unwrap();
        assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::NORMAL, "done"));
    }
}

/// The Stream and Sink in one task: owned messages, large ones written by
/// vectored writes from their own buffer.
#[tokio::test]
async fn stream_and_sink() {
    let (mut server, mut client) = pair(1 << 20, &Options::default());
    let echo = tokio::spawn(async move {
        while let Some(message) = server.next().await {
            server.send(&message.unwrap()).await.unwrap();
        }
    });
    let messages: Vec<Message> = (0..20)
        .map(|i| Message::binary(vec![i as u8; 5000 * i]))
        .collect();
    for message in &messages {
        client.feed(message.clone()).await.unwrap();
    }
    client.flush().await.unwrap();
    for want in &messages {
        assert_eq!(client.next().await.unwrap().unwrap(), *want);
    }
    SinkExt::close(&mut client).await.unwrap();
    assert!(client.next().await.is_none());
    echo.await.unwrap();
}

/// The halves of `split` in two tasks, the writer far ahead of the reader.
/// Receiving must not stop for the writer's queue while the writer waits
/// for the socket: the peer may wait for us to read before it reads. (It
/// did once: every echo stalled until the keepalive timer, 30 s.)
#[tokio::test]
async fn split_halves_in_two_tasks() {
    let (mut server, client) = pair(4096, &Options::default());
    let echo = tokio::spawn(async move {
        while let Some(message) = server.next().await {
            server.send(&message.unwrap()).await.unwrap();
        }
    });
    let (mut tx, mut rx) = client.split();
    let messages: Vec<Message> = (0..50)
        .map(|i| Message::binary(vec![i as u8; 1000 * i]))
        .collect();
    let sent = messages.clone();
    let writer = tokio::spawn(async move {
        for message in sent {
            tx.feed(message).await.unwrap();
        }
        tx.flush().await.unwrap();
        tx
    });
    tokio::time::timeout(Duration::from_secs(10), async {
        for want in &messages {
            assert_eq!(rx.next().await.unwrap().unwrap(), *want);
        }
    })
    .await
    .expect("every echo within 10 s");
    let mut tx = writer.await.unwrap();
    tx.close().await.unwrap();
    assert!(rx.next().await.is_none());
    echo.await.unwrap();
}

/// Raw bytes against the server role: a ping is answered with a pong
/// carrying its payload; an unmasked frame fails the connection with 1002.
#[tokio::test]
async fn ping_answered_and_protocol_error_closes_with_1002() {
    let (raw, io) = duplex(1024);
    let mut raw = raw;
    let mut server = WebSocket::from_raw(io, Role::Server, &Options::default(), &[]);
    let task = tokio::spawn(async move { server.recv().await });
    // A masked ping with payload "hi" (mask 0 leaves it readable).
    raw.write_all(&[0x89, 0x82, 0, 0, 0, 0, b'h', b'i'])
        .await
        .unwrap();
    let mut pong = [0u8; 4];
    raw.read_exact(&mut pong).await.unwrap();
    assert_eq!(pong, [0x8a, 0x02, b'h', b'i']);
    // An unmasked text frame from a client.
    raw.write_all(&[0x81, 0x01, b'x']).await.unwrap();
    let result = task.await.unwrap();
    assert!(matches!(result, Err(Error::Protocol(_))), "{result:?}");
    let mut close = Vec::new();
    raw.read_to_end(&mut close).await.unwrap();
    assert_eq!(
        close.get(..4),
        Some(&[0x88, close[1], 0x03, 0xea][..]),
        "{close:02x?}"
    );
}

/// The connection's own deadlines: a keepalive ping after the interval,
/// then the idle timeout fails it with 1001.
#[tokio::test(start_paused = true)]
async fn keepalive_ping_then_idle_timeout() {
    let config = Config::default()
        .ping_interval(Some(Duration::from_secs(1)))
        .idle_timeout(Some(Duration::from_secs(3)));
    let (mut raw, io) = duplex(1024);
    let mut server = WebSocket::from_raw(io, Role::Server, &Options::default().config(config), &[]);
    let task = tokio::spawn(async move { server.recv().await });
    let mut ping = [0u8; 2];
    raw.read_exact(&mut ping).await.unwrap();
    assert_eq!(ping, [0x89, 0x00]);
    let result = task.await.unwrap();
    assert!(
        matches!(result, Err(Error::Protocol(tether_ws::Error::IdleTimeout))),
        "{result:?}"
    );
    let mut close = [0u8; 4];
    raw.read_exact(&mut close).await.unwrap();
    assert_eq!(close[2..], [0x03, 0xe9]);
}

/// The timers still fire after a burst that spent the task's budget:
/// with it spent, reading is refused for a turn and tokio's timer,
/// polled then, registers nothing, so that poll must not count as the
/// timer holding the task's waker (else, once the peer falls silent,
/// nothing would wake the task for its ping or its idle timeout).
#[tokio::test(start_paused = true)]
async fn timers_fire_after_a_burst_that_spent_the_budget() {
    const MESSAGES: usize = 2000;
    let config = Config::default()
        .ping_interval(Some(Duration::from_secs(1)))
        .idle_timeout(Some(Duration::from_secs(3)));
    let (mut raw, io) = duplex(4 << 20);
    // Masked binary frames of 1 KiB (a zero mask), read 1 KiB at a time:
    // far more reads than a task's budget in one turn.
    let mut frame = vec![0x82, 0x80 | 126, 0x04, 0x00, 0, 0, 0, 0];
    frame.resize(frame.len() + 1024, b'x');
    raw.write_all(&frame.repeat(MESSAGES)).await.unwrap();
    let options = Options::default().config(config).read_buffer(1024);
    let mut server = WebSocket::from_raw(io, Role::Server, &options, &[]);
    let task = tokio::spawn(async move {
        let mut received = 0;
        loop {
            match server.recv().await {
                Ok(Some(_)) => received += 1,
                other => return (received, other),
            }
        }
    });
    let mut ping = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(60), raw.read_exact(&mut ping))
        .await
        .expect("no ping: the timer was never registered")
        .unwrap();
    assert_eq!(ping, [0x89, 0x00]);
    let (received, result) = tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("no idle timeout: the timer was never registered")
        .unwrap();
    assert_eq!(received, MESSAGES);
    assert!(
        matches!(result, Err(Error::Protocol(tether_ws::Error::IdleTimeout))),
        "{result:?}"
    );
}

/// A peer that does not read: the Sink stops taking messages once the
/// queue is over its bound, and the queue stays bounded.
#[tokio::test]
async fn sink_waits_while_the_socket_pushes_back() {
    let options = Options::default().max_queued(16 << 10);
    let (_peer, io) = duplex(1024);
    let mut ws = WebSocket::from_raw(io, Role::Server, &options, &[]);
    let mut fed = 0;
    let stalled = loop {
        let feed = ws.feed(Message::binary(vec![1; 4096]));
        match tokio::time::timeout(Duration::from_millis(100), feed).await {
            Ok(result) => {
                result.unwrap();
                fed += 1;
                assert!(fed < 100, "never pushed back");
            }
            Err(_) => break true,
        }
    };
    assert!(stalled);
    assert!(ws.queued() <= (16 << 10) + 4096 + 16, "{} queued", ws.queued());
}

/// A peer that sends and never reads, to an echo: the echoes pile up only
/// to the queue's bound, then the server stops reading, so the peer's
/// writes stall instead of the server's memory growing; once the peer
/// reads, every echo comes back, in order. Both ways of echoing: in place
/// (the queue holds the read buffer until it is written) and by queueing
/// an owned copy of each message (`queue_message`, up to `max_queued`).
#[tokio::test]
async fn echo_to_a_peer_that_never_reads_stops_reading_at_the_bound() {
    const BOUND: usize = 16 << 10;
    const SIZE: usize = 1024;
    for in_place in [true, false] {
        let options = Options::default().max_queued(BOUND);
        let (mut server, mut client) = pair(4096, &options);
        let most_queued = Arc::new(AtomicUsize::new(0));
        let seen = most_queued.clone();
        let echo = tokio::spawn(async move {
            loop {
                if in_place {
                    let Some(message) = server.recv_ref().await.unwrap() else {
                        break;
                    };
                    message.echo().unwrap();
                } else {
                    let Some(message) = server.recv().await.unwrap() else {
                        break;
                    };
                    server.queue_message(&message).unwrap();
                }
                seen.fetch_max(server.queued(), Ordering::Relaxed);
            }
        });
        let mut sent = 0u32;
        loop {
            let body = sent.to_be_bytes().repeat(SIZE / 4);
            let feed = client.feed(Message::binary(body));
            match tokio::time::timeout(Duration::from_millis(200), feed).await {
                Ok(result) => result.unwrap(),
                Err(_) => break,
            }
            sent += 1;
            assert!(sent < 2000, "in place {in_place}: the writes never stalled");
        }
        let most = most_queued.load(Ordering::Relaxed);
        // Over the bound, no more is read; the messages of the last read
        // (at most the pipe's 4096 bytes, and the rest of a frame begun
        // before it) still come out and are echoed.
        assert!(
            most <= BOUND + 4096 + SIZE + 16,
            "in place {in_place}: {most} bytes of echoes queued"
        );
        // Reading now lets both sides drain: every echo comes back in order.
        for expected in 0..sent {
            let body = client.recv().await.unwrap().expect("an echo");
            assert!(
                !body.is_text() && body.as_bytes().len() == SIZE,
                "echo {expected}"
            );
            assert_eq!(body.as_bytes()[..4], expected.to_be_bytes(), "echo {expected}");
        }
        client.close(CloseCode::NORMAL, "done").await.unwrap();
        echo.await.unwrap();
    }
}

/// A close handshake the peer never finishes ends at the close timeout.
#[tokio::test(start_paused = true)]
async fn close_timeout() {
    let config = Config::default().close_timeout(Duration::from_secs(2));
    let (_raw, io) = duplex(1024);
    let mut ws = WebSocket::from_raw(io, Role::Server, &Options::default().config(config), &[]);
    let started = tokio::time::Instant::now();
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(matches!(ws.send("late").await, Err(Error::Closed)));
}

/// A peer that answers the server's close with data frames and never
/// lets reading wait (every read finds more; nothing here yields to the
/// runtime) until it stops after `FLOOD`: the close still ends at the
/// close timeout, long before the flood stops, because the timer is set
/// when the close is sent, not only when reading waits.
#[tokio::test]
async fn close_timeout_while_the_peer_floods() {
    const FLOOD: Duration = Duration::from_secs(20);
    let config = Config::default().close_timeout(Duration::from_millis(100));
    let flood = Flood {
        until: std::time::Instant::now() + FLOOD,
        ended: false,
    };
    let mut ws = WebSocket::from_raw(flood, Role::Server, &Options::default().config(config), &[]);
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert!(
        !ws.get_ref().ended,
        "the close waited for the flood to stop instead of its timeout"
    );
}

/// A client that sends empty masked binary frames without pause until a
/// moment, then nothing; it takes whatever is written.
struct Flood {
    until: std::time::Instant,
    ended: bool,
}

impl tokio::io::AsyncRead for Flood {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if std::time::Instant::now() >= self.until {
            // Silent from now on; nothing will wake the reader but its timer.
            self.ended = true;
            return std::task::Poll::Pending;
        }
        const FRAME: [u8; 6] = [0x82, 0x80, 1, 2, 3, 4];
        while buf.remaining() >= FRAME.len() {
            buf.put_slice(&FRAME);
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Flood {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The raw-stream handshake: a bad version gets a complete 426, a good
/// upgrade with a deflate offer gets deflate, and compressed messages
/// flow both ways.
#[cfg(feature = "client")]
#[tokio::test]
async fn raw_handshake_refusal_and_deflate() {
    let (mut raw, io) = duplex(4096);
    let accepted = tokio::spawn(async move { Acceptor::default().accept(io).await });
    raw.write_all(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = String::new();
    raw.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
    assert!(
        response.contains("\r\nSec-WebSocket-Version: 13\r\n"),
        "{response}"
    );
    assert!(matches!(accepted.await.unwrap(), Err(Error::Status(426))));

    let (client_io, server_io) = duplex(4096);
    let server = tokio::spawn(async move {
        let mut ws = Acceptor::default().accept(server_io).await.unwrap();
        while let Some(message) = ws.recv().await.unwrap() {
            ws.send(&message).await.unwrap();
        }
    });
    let mut client = tether_tokio::client::ClientBuilder::new("ws://example.com/chat")
        .handshake(client_io, "example.com", "/chat")
        .await
        .unwrap();
    let text = "compress me ".repeat(1000);
    client.send(text.as_str()).await.unwrap();
    assert_eq!(client.recv().await.unwrap(), Some(Message::text(text)));
    client.close(CloseCode::NORMAL, "").await.unwrap();
    server.await.unwrap();
}

/// Whether deflate was agreed shows on the wire: the server's first frame
/// has RSV1 set.
#[tokio::test]
async fn deflate_sets_rsv1_on_the_wire() {
    let (mut raw, io) = duplex(4096);
    let server = tokio::spawn(async move {
        let mut ws = Acceptor::default().accept(io).await.unwrap();
        ws.send("a".repeat(4000).as_str()).await.unwrap();
        ws
    });
    raw.write_all(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
          Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    )
    .await
    .unwrap();
    let _ws = server.await.unwrap();
    let mut got = vec![0u8; 4096];
    let n = raw.read(&mut got).await.unwrap();
    let text = String::from_utf8_lossy(&got[..n]).into_owned();
    let head_end = text.find("\r\n\r\n").unwrap() + 4;
    assert!(
        text.contains("Sec-WebSocket-Extensions: permessage-deflate"),
        "{text}"
    );
    let frame = if n > head_end {
        got[head_end]
    } else {
        let mut b = [0u8; 1];
        raw.read_exact(&mut b).await.unwrap();
        b[0]
    };
    assert_eq!(frame, 0xc1, "FIN + RSV1 + text");
}

/// A client that sends its head slowly, or not at all, is dropped when
/// the handshake's one deadline passes (10 s by default): a byte every
/// second does not stretch it. The stream is closed (the client reads the
/// end), and an honest client still gets its 101.
#[tokio::test(start_paused = true)]
async fn raw_handshake_has_one_deadline() {
    let head: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    // Silent.
    let (mut silent, io) = duplex(4096);
    let started = tokio::time::Instant::now();
    let accepted = tokio::time::timeout(Duration::from_secs(60), Acceptor::default().accept(io))
        .await
        .expect("given up within 60 s");
    assert!(
        matches!(accepted, Err(Error::Timeout("handshake"))),
        "{accepted:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(silent.read(&mut [0u8; 16]).await.unwrap(), 0, "closed");

    // A byte a second: 10 of the head's bytes, then dropped.
    let (mut slow, io) = duplex(4096);
    let started = tokio::time::Instant::now();
    let accepted = tokio::spawn(async move { Acceptor::default().accept(io).await });
    let mut sent = 0;
    for byte in head {
        if slow.write_all(&[*byte]).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let accepted = accepted.await.unwrap();
    assert!(
        matches!(accepted, Err(Error::Timeout("handshake"))),
        "{accepted:?}"
    );
    // Cut at 10 s; the writer notices at its next byte.
    assert_eq!(started.elapsed(), Duration::from_secs(11));
    assert!(sent < 12, "the head was cut short after {sent} bytes");

    // A shorter deadline from the options, and a client in time.
    let acceptor = Acceptor::with_options(Options::default().handshake_timeout(Duration::from_millis(500)));
    let (mut honest, io) = duplex(4096);
    let accepted = tokio::spawn(async move { acceptor.accept(io).await.map(drop) });
    tokio::time::sleep(Duration::from_millis(400)).await;
    honest.write_all(head).await.unwrap();
    let mut response = vec![0u8; 512];
    let n = honest.read(&mut response).await.unwrap();
    assert!(
        response[..n].starts_with(b"HTTP/1.1 101 "),
        "{:?}",
        String::from_utf8_lossy(&response[..n])
    );
    accepted.await.unwrap().unwrap();
}

/// A server that takes the upgrade request and never answers: the client
/// gives up at its handshake deadline rather than waiting forever.
#[cfg(feature = "client")]
#[tokio::test(start_paused = true)]
async fn client_handshake_has_a_deadline() {
    let (mut server, io) = duplex(4096);
    let builder = tether_tokio::client::ClientBuilder::new("ws://example.com/")
        .options(Options::default().handshake_timeout(Duration::from_secs(3)));
    let started = tokio::time::Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(60), builder.handshake(io, "example.com", "/"))
        .await
        .expect("given up within 60 s");
    assert!(matches!(result, Err(Error::Timeout("handshake"))), "{result:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    let mut request = Vec::new();
    server.read_to_end(&mut request).await.unwrap();
    assert!(
        request.starts_with(b"GET / HTTP/1.1\r\n"),
        "the request went out, then the stream was closed"
    );
}

/// A client echoes in place too, but its masked header is 4 bytes longer
/// than the server's: framed before the next message, it must not reach
/// into an echo still queued. Several frames in one read, echoed one by
/// one, go back intact.
#[tokio::test]
async fn client_echoes_several_frames_of_one_read_intact() {
    for size in [3usize, 200, 70_000] {
        let (mut raw, io) = duplex(1 << 20);
        let mut client = WebSocket::from_raw(io, Role::Client, &Options::default(), &[]);
        let payloads: Vec<Vec<u8>> = (1..=4u8).map(|i| vec![i; size]).collect();
        let mut wire = Vec::new();
        for payload in &payloads {
            wire.push(0x82);
            match payload.len() {
                n @ 0..=125 => wire.push(n as u8),
                n @ 126..=65535 => {
                    wire.push(126);
                    wire.extend_from_slice(&(n as u16).to_be_bytes());
                }
                n => {
                    wire.push(127);
                    wire.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            wire.extend_from_slice(payload);
        }
        raw.write_all(&wire).await.unwrap();
        for _ in &payloads {
            client.recv_ref().await.unwrap().unwrap().echo().unwrap();
        }
        client.flush().await.unwrap();
        for (i, payload) in payloads.iter().enumerate() {
            let mut head = [0u8; 2];
            raw.read_exact(&mut head).await.unwrap();
            assert_eq!(head[0], 0x82, "size {size} frame {i}");
            assert_eq!(head[1] & 0x80, 0x80, "masked");
            let len = match head[1] & 0x7f {
                126 => raw.read_u16().await.unwrap() as usize,
                127 => raw.read_u64().await.unwrap() as usize,
                n => n as usize,
            };
            let mut mask = [0u8; 4];
            raw.read_exact(&mut mask).await.unwrap();
            let mut got = vec![0u8; len];
            raw.read_exact(&mut got).await.unwrap();
            for (j, byte) in got.iter_mut().enumerate() {
                *byte ^= mask[j % 4];
            }
            assert!(got == *payload, "size {size}: echo {i} came back changed");
        }
    }
}

/// Sends `len` bytes to a peer that does not read, and gives the send up
/// once it waits: its bytes stay queued, and the socket stays full.
async fn give_up_a_send(ws: &mut WebSocket<DuplexStream>, len: usize) {
    let sent = tokio::time::timeout(
        Duration::from_millis(50),
        ws.send(Message::binary(vec![0u8; len]).as_ref()),
    )
    .await;
    assert!(sent.is_err(), "the send waited");
}

/// A sender waits for a peer that does not read, so receiving goes on over
/// the output bound (the peer may be waiting for us to read first). A peer
/// that then floods pings and reads nothing does not make the pongs pile
/// up without end: at `max_queued` bytes of them the connection fails
/// with 1008.
#[tokio::test]
async fn pings_from_a_peer_that_never_reads_are_answered_within_a_bound() {
    let (mut raw, io) = duplex(64 << 10);
    let options = Options::default().max_queued(16 << 10);
    let mut ws = WebSocket::from_raw(io, Role::Server, &options, &[]);
    // The send cannot finish (the peer reads nothing) and is given up;
    // its bytes stay queued and the socket stays full.
    give_up_a_send(&mut ws, 256 << 10).await;
    let pinger = tokio::spawn(async move {
        // Masked pings with 125 bytes of payload (a zero key), back to back.
        let mut ping = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
        ping.extend_from_slice(&[b'p'; 125]);
        let burst = ping.repeat(500);
        let mut written = 0usize;
        while raw.write_all(&burst).await.is_ok() {
            written += burst.len();
            if written > 64 << 20 {
                break;
            }
        }
        written
    });
    let received = tokio::time::timeout(Duration::from_secs(20), ws.recv())
        .await
        .expect("the connection failed within 20 s");
    match received {
        Err(Error::Protocol(e)) => {
            assert_eq!(e.close_code(), Some(CloseCode::POLICY), "{e}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(
        ws.queued() <= (256 << 10) + (16 << 10) + (64 << 10) + 256,
        "{} bytes queued",
        ws.queued()
    );
    drop(ws);
    let written = pinger.await.unwrap();
    assert!(
        written < 64 << 20,
        "the pinger was cut off, after {written} bytes"
    );
}

/// The peer's close frame came, and ours cannot go out: the peer does not
/// read, and the socket is full. The end is not waited for past the close
/// timeout.
#[tokio::test]
async fn the_end_is_not_waited_for_past_the_close_timeout() {
    for role in [Role::Server, Role::Client] {
        let (mut raw, io) = duplex(1024);
        let config = Config::default().close_timeout(Duration::from_millis(200));
        let mut ws = WebSocket::from_raw(io, role, &Options::default().config(config), &[]);
        give_up_a_send(&mut ws, 8192).await;
        // The peer's close frame (1000), masked if it comes from a client.
        let close: &[u8] = match role {
            Role::Server => &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8],
            Role::Client => &[0x88, 0x02, 0x03, 0xe8],
        };
        raw.write_all(close).await.unwrap();
        let started = std::time::Instant::now();
        let received = tokio::time::timeout(Duration::from_secs(10), ws.recv())
            .await
            .expect("recv returned within 10 s");
        assert!(
            matches!(received, Err(Error::Protocol(tether_ws::Error::CloseTimeout))),
            "{role:?}: {received:?}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
        assert!(ws.close_frame().is_some(), "the peer's close frame was read");
        // Ended for good.
        let again = ws.recv().await;
        assert!(again.is_err(), "{again:?}");
        drop(raw);
    }
}

/// A task that receives, then sends (the usual loop) receives nothing
/// while its send waits. A peer that then neither reads nor sends does not
/// keep it there: the keepalive ping is queued and the idle timeout ends
/// the send, as it would end a receive; the Sink's wait for room too.
#[tokio::test]
async fn a_send_to_a_peer_gone_quiet_ends_at_the_idle_timeout() {
    let config = Config::default()
        .ping_interval(Some(Duration::from_millis(100)))
        .idle_timeout(Some(Duration::from_millis(300)))
        // The failure's close frame, behind what the peer does not read,
        // is given up at the close timeout.
        .close_timeout(Duration::from_millis(200));
    let options = Options::default().config(config).max_queued(64 << 10);
    for sink in [false, true] {
        let (raw, io) = duplex(4096);
        let mut ws = WebSocket::from_raw(io, Role::Server, &options, &[]);
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(10), async {
            if sink {
                for _ in 0..100 {
                    ws.feed(Message::binary(vec![0u8; 16 << 10])).await?;
                }
                Ok(())
            } else {
                ws.send(Message::binary(vec![0u8; 1 << 20]).as_ref()).await
            }
        })
        .await
        .expect("ended within 10 s");
        assert!(
            matches!(result, Err(Error::Protocol(tether_ws::Error::IdleTimeout))),
            "sink {sink}: {result:?}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        drop(raw);
    }
}

/// A stream that counts reads and, if `refuse`, refuses every other write
/// once (asking to be polled again), as a socket with a full send buffer
/// does.
struct Stutter {
    inner: DuplexStream,
    reads: Arc<AtomicUsize>,
    refuse: bool,
    writes: usize,
}

impl tokio::io::AsyncRead for Stutter {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Stutter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.writes += 1;
        if self.refuse && self.writes % 2 == 1 {
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The close frame (1001) of an idle timeout reaches the peer even when
/// the socket does not take it at the first try: the connection flushes
/// it (within the close timeout) before it reports the failure and drops
/// the stream. Once, it was written only if the socket took it at once,
/// and the peer read an early end instead.
#[tokio::test(start_paused = true)]
async fn the_close_of_an_idle_timeout_is_flushed_before_the_end() {
    let config = Config::default()
        .ping_interval(Some(Duration::from_secs(1)))
        .idle_timeout(Some(Duration::from_secs(3)));
    let (mut raw, io) = duplex(1024);
    let reads = Arc::new(AtomicUsize::new(0));
    let io = Stutter {
        inner: io,
        reads: Arc::clone(&reads),
        refuse: true,
        writes: 0,
    };
    let mut server = WebSocket::from_raw(io, Role::Server, &Options::default().config(config), &[]);
    let task = tokio::spawn(async move { server.recv().await });
    let mut ping = [0u8; 2];
    raw.read_exact(&mut ping).await.unwrap();
    assert_eq!(ping, [0x89, 0x00]);
    let result = task.await.unwrap();
    assert!(
        matches!(result, Err(Error::Protocol(tether_ws::Error::IdleTimeout))),
        "{result:?}"
    );
    let mut close = [0u8; 4];
    raw.read_exact(&mut close).await.unwrap();
    assert_eq!((close[0], &close[2..]), (0x88, &[0x03, 0xe9][..]));
}

/// With tokio's clock paused, the connection's deadlines are read on
/// tokio's clock: a silent peer costs a few reads up to the idle timeout,
/// not a busy loop until the wall clock catches up with the paused one.
#[tokio::test(start_paused = true)]
async fn deadlines_follow_the_runtime_clock() {
    let config = Config::default()
        .ping_interval(Some(Duration::from_secs(1)))
        .idle_timeout(Some(Duration::from_secs(3)));
    let (mut raw, io) = duplex(1024);
    let reads = Arc::new(AtomicUsize::new(0));
    let io = Stutter {
        inner: io,
        reads: Arc::clone(&reads),
        refuse: false,
        writes: 0,
    };
    let mut server = WebSocket::from_raw(io, Role::Server, &Options::default().config(config), &[]);
    let result = server.recv().await;
    assert!(
        matches!(result, Err(Error::Protocol(tether_ws::Error::IdleTimeout))),
        "{result:?}"
    );
    let reads = reads.load(Ordering::Relaxed);
    assert!(reads <= 20, "{reads} reads of a silent peer");
    let mut frames = Vec::new();
    drop(server);
    raw.read_to_end(&mut frames).await.unwrap();
    assert_eq!(frames[..2], [0x89, 0x00], "the keepalive ping");
    assert_eq!(
        (frames[2], &frames[4..6]),
        (0x88, &[0x03, 0xe9][..]),
        "the close (1001)"
    );
}
