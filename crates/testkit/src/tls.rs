//! TLS for tests: a self-signed certificate for `localhost`, a client
//! configuration that trusts it, and a blocking HTTPS/1.1 connection.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::{Response, parse_head, tcp};

/// A certificate for `localhost` and its key, in PEM (for
/// `tether_server::tls::server_config_from_pem`), and a client
/// configuration that trusts it and offers `alpn`.
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
    pub client: Arc<ClientConfig>,
}

/// A fresh self-signed certificate, and a client for it offering `alpn`
/// (`http/1.1`, `h2`, or `h3` for QUIC).
pub fn self_signed(alpn: &[u8]) -> SelfSigned {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).expect("a root");
    let mut client = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![alpn.to_vec()];
    SelfSigned {
        cert_pem: made.cert.pem(),
        key_pem: made.signing_key.serialize_pem(),
        client: Arc::new(client),
    }
}

/// An HTTPS/1.1 connection (handshake done on first use).
pub struct TlsConn {
    pub stream: StreamOwned<ClientConnection, std::net::TcpStream>,
    buf: Vec<u8>,
}

impl TlsConn {
    pub fn connect(addr: SocketAddr, client: &Arc<ClientConfig>) -> TlsConn {
        let name = ServerName::try_from("localhost").expect("a server name");
        let conn = ClientConnection::new(client.clone(), name).expect("a TLS client");
        TlsConn {
            stream: StreamOwned::new(conn, tcp(addr)),
            buf: Vec::new(),
        }
    }

    /// The client's own address (the server's peer address for it).
    pub fn local_addr(&self) -> SocketAddr {
        self.stream.sock.local_addr().expect("a local address")
    }

    /// Writes a bodiless request for `target`.
    pub fn request(&mut self, method: &str, target: &str) {
        let request = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        self.stream
            .write_all(request.as_bytes())
            .expect("write the request");
        self.stream.flush().expect("flush the request");
    }

    /// Reads one response, with a body of its `Content-Length`.
    pub fn response(&mut self) -> Response {
        let (mut response, head_len) = loop {
            if let Some(parsed) = parse_head(&self.buf) {
                break parsed;
            }
            assert!(self.read_more() > 0, "closed before a response head");
        };
        self.buf.drain(..head_len);
        let length: usize = response
            .header("content-length")
            .expect("a Content-Length")
            .parse()
            .expect("a numeric Content-Length");
        while self.buf.len() < length {
            assert!(self.read_more() > 0, "closed inside a response body");
        }
        response.body = self.buf.drain(..length).collect();
        response
    }

    /// Asserts that the server resets the connection without a response.
    pub fn expect_reset(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("expected a reset, got a clean close"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("expected a reset, got {e}"),
            }
        }
        assert!(self.buf.is_empty(), "bytes before the reset");
    }

    fn read_more(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return n;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("TLS read failed: {e}"),
            }
        }
    }
}
