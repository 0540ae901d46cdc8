//! The sockets below the loop (binding them is `sockets.rs`'s): the
//! connection budget from the open-file limit, a TLS
//! session for a connection that speaks TLS and whether it chose HTTP/2,
//! and what is done with a client when descriptors run short.
//!
//! Calling contract: plain functions of the configuration and sockets; the
//! loop calls them when it starts, accepts or sheds, and keeps whatever
//! they return. Nothing here knows a connection's state or the
//! application.

use std::io::{self, Read};
use std::net::Shutdown;
#[cfg(feature = "tls")]
use std::sync::Arc;

use log::debug;
use mio::net::TcpStream;

use crate::config::Config;
use crate::http;
use crate::transport::TlsSession;

/// Descriptors kept back from the connection limit for the loop itself
/// (epoll, the listener, the signal pipe, log files).
const FD_RESERVE: usize = 32;

/// How many connections each of `loops` loops may hold when the open-file
/// limit decides: that limit (raised to its hard limit first, if the
/// configuration says so) less a reserve, shared among the loops, since
/// they all draw on the one process's descriptors.
pub(crate) fn connection_budget(config: &Config, loops: usize) -> usize {
    let fd_limit = if config.raise_fd_limit {
        rlimit::increase_nofile_limit(u64::MAX)
    } else {
        rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft)
    }
    .unwrap_or(1024);
    let total = usize::try_from(fd_limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(FD_RESERVE);
    debug!("open-file limit {fd_limit}: {total} connections over {loops} loop(s)");
    (total / loops.max(1)).max(1)
}

/// Gives the connection about to take slot `index` its TLS session, when
/// it speaks TLS.
#[cfg(feature = "tls")]
pub(super) fn start_tls(
    config: &Config,
    sessions: &mut Vec<Option<Box<TlsSession>>>,
    index: usize,
    tls: bool,
) -> io::Result<()> {
    let Some(tls) = config.tls.as_ref().filter(|_| tls) else {
        // A slot a TLS connection had before holds nothing now.
        if let Some(slot) = sessions.get_mut(index) {
            *slot = None;
        }
        return Ok(());
    };
    if sessions.len() <= index {
        sessions.resize_with(index + 1, || None);
    }
    if let Some(slot) = sessions.get_mut(index) {
        *slot = Some(crate::transport::accept_tls(tls)?);
    }
    Ok(())
}

#[cfg(not(feature = "tls"))]
pub(super) fn start_tls(
    _: &Config,
    _: &mut Vec<Option<Box<TlsSession>>>,
    _: usize,
    _: bool,
) -> io::Result<()> {
    Ok(())
}

/// Whether the TLS handshake chose HTTP/2 by ALPN.
#[cfg(feature = "tls")]
pub(super) fn alpn_is_h2(tls: &TlsSession) -> bool {
    tls.alpn_protocol() == Some(&b"h2"[..])
}

#[cfg(not(feature = "tls"))]
pub(super) fn alpn_is_h2(tls: &TlsSession) -> bool {
    match *tls {}
}

/// The TLS configuration with the ALPN list `http2` calls for: `h2` and
/// `http/1.1`, or `http/1.1` alone (other protocols an embedder listed
/// stay, after them).
#[cfg(feature = "tls")]
pub(super) fn with_alpn(tls: &Arc<rustls::ServerConfig>, http2: bool) -> Arc<rustls::ServerConfig> {
    let mut config = (**tls).clone();
    let mut alpn: Vec<Vec<u8>> = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    for other in &tls.alpn_protocols {
        if other.as_slice() != b"h2" && !alpn.contains(other) {
            alpn.push(other.clone());
        }
    }
    config.alpn_protocols = alpn;
    // After a TLS 1.3 handshake the session opens and seals its records
    // itself, with the keys rustls hands over (crate::tls::records).
    config.enable_secret_extraction = true;
    Arc::new(config)
}

/// Whether `accept` failed for want of a descriptor or of kernel memory
/// for the socket, rather than because of that one client.
pub(super) fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The reserve descriptor: one kept open so that it can be closed to
/// accept a client when the process has no other.
pub(super) fn open_reserve() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

/// Answers a connection over the limit with 503 and closes it, without
/// ever registering it. A TLS client is just closed: it cannot read a
/// plaintext answer.
pub(super) fn refuse_busy(mut socket: TcpStream, tls: bool) {
    use std::io::Write as _;
    if tls {
        return;
    }
    let mut response = Vec::new();
    // Nothing of the request is read: its method is unknown.
    http::write_error(&mut response, 503, &[("Retry-After", "1")], false);
    let _ = socket.write(&response);
    let _ = socket.shutdown(Shutdown::Write);
    // Read whatever the client already sent, so that closing does not
    // turn into a reset that could discard the response.
    let mut sink = [0u8; 1024];
    let _ = socket.read(&mut sink);
}
