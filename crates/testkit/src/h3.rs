//! A blocking HTTP/3 client for tests: tether-quic's [`QuicClient`] on a
//! UDP socket of its own, stepped by hand until what a test waits for
//! has happened (or a generous timeout fails the test).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_h2::hpack::Field;
use tether_quic::{ClientEvent, QuicClient};

use crate::IO_TIMEOUT;

/// What came back on one request stream.
#[derive(Debug, Default, Clone)]
pub struct H3Response {
    pub status: Option<u16>,
    /// The response head's fields, as text, `:status` first.
    pub fields: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub finished: bool,
    pub reset: Option<u64>,
}

/// An HTTP/3 client connection.
pub struct H3Client {
    socket: UdpSocket,
    client: QuicClient,
    /// Per request stream, what the server sent.
    pub responses: BTreeMap<u64, H3Response>,
    /// Why the connection ended, once it has.
    pub closed: Option<String>,
}

impl H3Client {
    /// Connects to `server` (a certificate for `localhost` that `tls`
    /// trusts) and waits for the handshake.
    pub fn connect(server: SocketAddr, tls: &Arc<rustls::ClientConfig>) -> H3Client {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("a read timeout");
        let client = QuicClient::connect(tls, server, "localhost", 1 << 20, Instant::now()).expect("connect");
        let mut h3 = H3Client {
            socket,
            client,
            responses: BTreeMap::new(),
            closed: None,
        };
        h3.until("the handshake", |c| c.client.is_connected());
        h3
    }

    /// The client's own address (the server's peer address for it).
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().expect("a local address")
    }

    /// Sends `GET path`; the request stream's ID.
    pub fn get(&mut self, path: &str) -> u64 {
        self.get_with(path, &[])
    }

    /// Sends `GET path` with more fields (lower-case names); the request
    /// stream's ID.
    pub fn get_with(&mut self, path: &str, extra: &[(&str, &str)]) -> u64 {
        self.request("GET", path, extra, b"")
    }

    /// Sends `METHOD path` with more fields (lower-case names) and a
    /// body; the request stream's ID.
    pub fn request(&mut self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> u64 {
        let mut fields = vec![
            Field::new(":method", method),
            Field::new(":scheme", "https"),
            Field::new(":authority", "localhost"),
            Field::new(":path", path),
        ];
        fields.extend(extra.iter().map(|&(name, value)| Field::new(name, value)));
        let stream = self
            .client
            .request(&fields, body, true)
            .expect("a request stream");
        self.step();
        stream
    }

    /// The complete response on `stream`: its status and body. Fails the
    /// test if the stream is reset or the connection closes first.
    pub fn response(&mut self, stream: u64) -> (u16, Vec<u8>) {
        self.until("a response", |c| {
            c.closed.is_some()
                || c.responses
                    .get(&stream)
                    .is_some_and(|r| r.finished || r.reset.is_some())
        });
        let response = self.responses.get(&stream).cloned().unwrap_or_default();
        assert!(
            response.finished,
            "no complete response on stream {stream}: {response:?}, closed: {:?}",
            self.closed
        );
        (response.status.expect("a status"), response.body)
    }

    /// Waits for the connection to end; why it did.
    pub fn until_closed(&mut self) -> String {
        self.until("the connection's end", |c| c.closed.is_some());
        self.closed.clone().unwrap_or_default()
    }

    /// Steps until `done` says so (or fails the test after a generous
    /// timeout, which only catches a hang).
    pub fn until(&mut self, what: &str, mut done: impl FnMut(&H3Client) -> bool) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            self.step();
        }
    }

    /// One round: datagrams out, datagrams in (waiting a few
    /// milliseconds for them), timers, events.
    pub fn step(&mut self) {
        let now = Instant::now();
        let mut buf = Vec::new();
        while let Some(t) = self.client.poll_transmit(now, 1, &mut buf) {
            let _ = self.socket.send_to(&buf[..t.size], t.destination);
        }
        let mut datagram = vec![0u8; 65_536];
        loop {
            match self.socket.recv_from(&mut datagram) {
                Ok((n, from)) => self.client.handle_datagram(Instant::now(), from, &datagram[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("UDP receive: {e}"),
            }
        }
        let now = Instant::now();
        if self.client.next_timeout().is_some_and(|at| at <= now) {
            self.client.handle_timeout(now);
        }
        let mut events = Vec::new();
        self.client.poll_events(now, &mut events);
        for event in events {
            match event {
                ClientEvent::Response {
                    stream,
                    status,
                    fields,
                } => {
                    let response = self.responses.entry(stream).or_default();
                    response.status = Some(status);
                    response.fields = fields
                        .iter()
                        .map(|f| {
                            (
                                String::from_utf8_lossy(&f.name).into_owned(),
                                String::from_utf8_lossy(&f.value).into_owned(),
                            )
                        })
                        .collect();
                }
                ClientEvent::Data { stream, data } => {
                    self.responses
                        .entry(stream)
                        .or_default()
                        .body
                        .extend_from_slice(&data);
                }
                ClientEvent::Finished { stream } => self.responses.entry(stream).or_default().finished = true,
                ClientEvent::Reset { stream, code } => {
                    self.responses.entry(stream).or_default().reset = Some(code);
                }
                ClientEvent::Closed(why) => self.closed = Some(why),
                _ => {}
            }
        }
    }
}
