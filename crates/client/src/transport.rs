//! The byte stream under a client connection: TCP for `ws://` and
//! `http://`, TLS over it (rustls) for `wss://` and `https://`.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use tether_client_core::url::Url;

use crate::error::Error;

/// A connected stream, plain or TLS.
pub(crate) enum Transport {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    /// Connects to `url`: TCP, and TLS when its scheme is secure (the
    /// handshake runs with the first write and read, under the socket's
    /// timeouts).
    pub(crate) fn connect(
        url: &Url,
        timeout: Duration,
        tls: &crate::tls::TlsChoice,
    ) -> Result<Transport, Error> {
        let socket = connect_tcp(url, timeout)?;
        if !url.scheme().is_secure() {
            return Ok(Transport::Plain(socket));
        }
        secure(socket, url, tls)
    }

    /// The TCP socket under it (timeouts, addresses, shutdown).
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(socket) => socket,
            #[cfg(feature = "tls")]
            Transport::Tls(stream) => &stream.sock,
        }
    }

    /// Runs the TLS handshake (nothing to do for plain TCP) to its end by
    /// `deadline`, the socket's timeouts set to the time left before each
    /// read and write, so that a server that never answers, or trickles
    /// its answer, fails it with [`Error::Timeout`]`(step)` in time.
    pub(crate) fn handshake(&mut self, deadline: Instant, step: &'static str) -> Result<(), Error> {
        #[cfg(feature = "tls")]
        if let Transport::Tls(stream) = self {
            let rustls::StreamOwned { conn, sock } = &mut **stream;
            while conn.is_handshaking() || conn.wants_write() {
                time_left(sock, deadline, step)?;
                let tls_error = |e: io::Error| {
                    if is_timeout(&e) {
                        Error::Timeout(step)
                    } else {
                        Error::io("TLS handshake", e)
                    }
                };
                if conn.wants_write() {
                    match conn.write_tls(sock) {
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        other => {
                            other.map_err(tls_error)?;
                        }
                    }
                    continue;
                }
                match conn.read_tls(sock) {
                    Ok(0) => return Err(Error::ConnectionLost),
                    Ok(_) => {
                        if let Err(e) = conn.process_new_packets() {
                            // The alert that says why, if the server still
                            // listens.
                            let _ = conn.write_tls(sock);
                            return Err(Error::io(
                                "TLS handshake",
                                io::Error::new(ErrorKind::InvalidData, e),
                            ));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(tls_error(e)),
                }
            }
        }
        #[cfg(not(feature = "tls"))]
        let _ = (deadline, step);
        Ok(())
    }

    /// Ends the connection both ways (a TLS close_notify first).
    pub(crate) fn shutdown(&mut self) {
        #[cfg(feature = "tls")]
        if let Transport::Tls(stream) = self {
            stream.conn.send_close_notify();
            let _ = stream.conn.complete_io(&mut stream.sock);
        }
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

#[cfg(feature = "tls")]
fn secure(socket: TcpStream, url: &Url, tls: &crate::tls::TlsChoice) -> Result<Transport, Error> {
    let config = tls.config()?;
    let name =
        rustls::pki_types::ServerName::try_from(url.host().trim_start_matches('[').trim_end_matches(']'))
            .map_err(|_| Error::InvalidArgument(format!("{} is not a name TLS can check", url.host())))?
            .to_owned();
    let session = rustls::ClientConnection::new(config, name)
        .map_err(|e| Error::io("start TLS", io::Error::other(e)))?;
    Ok(Transport::Tls(Box::new(rustls::StreamOwned::new(
        session, socket,
    ))))
}

#[cfg(not(feature = "tls"))]
fn secure(_: TcpStream, url: &Url, _: &crate::tls::TlsChoice) -> Result<Transport, Error> {
    Err(crate::url::unsupported_scheme(url, "this"))
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(stream) => match stream.read(buf) {
                // The server closed TCP without close_notify: for HTTP and
                // WebSocket, whose messages carry their own ends, the end.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(socket) => socket.write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(socket) => socket.flush(),
            #[cfg(feature = "tls")]
            Transport::Tls(stream) => stream.flush(),
        }
    }
}

/// Connects to the first address of `url` that accepts.
pub(crate) fn connect_tcp(url: &Url, timeout: Duration) -> Result<TcpStream, Error> {
    let addrs = crate::url::resolve(url).map_err(|e| Error::io(format!("resolve {}", url.host()), e))?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if is_timeout(&e) => last = Some(Error::Timeout("connect")),
            Err(e) => last = Some(Error::io(format!("connect to {addr}"), e)),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::io(
            format!("resolve {}", url.host()),
            io::Error::new(ErrorKind::NotFound, "no address"),
        )
    }))
}

/// Sets the socket's read and write timeouts to the time left before
/// `deadline`; [`Error::Timeout`]`(step)` when none is left.
pub(crate) fn time_left(socket: &TcpStream, deadline: Instant, step: &'static str) -> Result<(), Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::Timeout(step));
    }
    socket
        .set_read_timeout(Some(left))
        .and_then(|()| socket.set_write_timeout(Some(left)))
        .map_err(|e| Error::io("set socket timeouts", e))
}

pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
