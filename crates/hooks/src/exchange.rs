//! One request and its response on a blocking socket, every wait bounded
//! by the job's deadline.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tether_http1::{EMPTY_HEADER, Limits, ResponseDecoder, Status};

/// Header field lines a backend's answer may have, at most.
const MAX_HEADERS: usize = 64;
/// Bytes read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A complete response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// Whether the connection may carry the next request: the backend
    /// allowed it and nothing followed the response.
    pub(crate) reusable: bool,
}

/// Why there is no response. The connection is closed after any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The deadline passed.
    Timeout,
    /// Connecting failed, or the connection failed or ended;
    /// `before_response` if not one byte of the response had arrived.
    Down { before_response: bool },
    /// The backend's bytes are not a response, or one too large.
    Malformed,
}

/// Time left until `deadline`, or [`Failure::Timeout`] if none.
pub(crate) fn remaining(deadline: Instant) -> Result<Duration, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(Failure::Timeout)
    } else {
        Ok(left)
    }
}

/// A new connection to `host:port`, trying each address in turn until
/// the deadline. (Resolving a name is not bounded by the deadline: the
/// system resolver has no timeout to pass. Configure addresses, or names
/// the hosts file or a local resolver answers at once.)
pub(crate) fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, Failure> {
    let addresses = (host, port).to_socket_addrs().map_err(|_| Failure::Down {
        before_response: true,
    })?;
    let mut failure = Failure::Down {
        before_response: true,
    };
    for address in addresses {
        let left = remaining(deadline)?;
        match TcpStream::connect_timeout(&address, left) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) if is_timeout(&e) => failure = Failure::Timeout,
            Err(_) => {}
        }
    }
    Err(failure)
}

/// Writes `request` and reads the response to it (a `POST`), body at most
/// `max_body` bytes. `buf` is scratch space, emptied first.
pub(crate) fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    deadline: Instant,
    max_body: usize,
    buf: &mut Vec<u8>,
) -> Result<Response, Failure> {
    let before = Failure::Down {
        before_response: true,
    };
    stream
        .set_write_timeout(Some(remaining(deadline)?))
        .map_err(|_| before)?;
    stream
        .write_all(request)
        .map_err(|e| if is_timeout(&e) { Failure::Timeout } else { before })?;

    buf.clear();
    let limits = Limits::new().max_body(u64::try_from(max_body).unwrap_or(u64::MAX));
    let mut decoder = ResponseDecoder::new(limits);
    let mut read_any = false;
    let (status, keep_alive) = loop {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        match decoder.decode_head(buf, &mut headers, "POST") {
            Ok(Status::Complete((head, used))) => {
                let (interim, status, keep_alive) = (head.is_interim(), head.status(), head.keep_alive());
                buf.drain(..used);
                if !interim {
                    break (status, keep_alive);
                }
            }
            Ok(Status::Partial) => {
                if read_more(stream, buf, deadline, &mut read_any)? == 0 {
                    return Err(if read_any { Failure::Malformed } else { before });
                }
            }
            Err(_) => return Err(Failure::Malformed),
        }
    };
    // 101 leaves the decoder stopped: not an answer.
    if status == 101 {
        return Err(Failure::Malformed);
    }

    let mut body = Vec::new();
    loop {
        let (used, done) = decoder
            .decode_body(buf, &mut body)
            .map_err(|_| Failure::Malformed)?;
        buf.drain(..used);
        if done {
            break;
        }
        if read_more(stream, buf, deadline, &mut read_any)? == 0 {
            decoder.finish().map_err(|_| Failure::Malformed)?;
            return Ok(Response {
                status,
                body,
                reusable: false,
            });
        }
    }
    Ok(Response {
        status,
        body,
        reusable: keep_alive && buf.is_empty(),
    })
}

/// Reads what has arrived (waiting until the deadline), appending it to
/// `buf`: the number of bytes, 0 at the end of the stream.
fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    read_any: &mut bool,
) -> Result<usize, Failure> {
    let down = Failure::Down {
        before_response: !*read_any,
    };
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        stream
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(|_| down)?;
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                *read_any |= n > 0;
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(Failure::Timeout),
            Err(_) => return Err(down),
        }
    }
}

/// A socket timeout shows as `WouldBlock` on Unix and `TimedOut` on
/// Windows.
fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// Answers one request on a new connection with `wire`, then closes.
    fn exchange_with(wire: &'static [u8]) -> Result<Response, Failure> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // All of the request, so that closing sends no reset.
            let (mut request, mut chunk) = (Vec::new(), [0u8; 1024]);
            while !request.ends_with(b"{}") {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "the whole request");
                request.extend_from_slice(&chunk[..n]);
            }
            stream.write_all(wire).unwrap();
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut stream = connect("127.0.0.1", port, deadline).unwrap();
        let request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
        let result = exchange(&mut stream, request, deadline, 1024, &mut Vec::new());
        server.join().unwrap();
        result
    }

    #[test]
    fn interim_responses_are_skipped() {
        let r = exchange_with(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        assert_eq!((r.status, r.body.as_slice(), r.reusable), (200, &b"{}"[..], true));
    }

    #[test]
    fn a_connection_is_reused_only_when_clean() {
        let extra =
            exchange_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n").unwrap();
        assert!(!extra.reusable, "bytes after the response");
        let old = exchange_with(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert!(!old.reusable, "HTTP/1.0 without keep-alive");
        let until_close = exchange_with(b"HTTP/1.1 200 OK\r\n\r\n{\"allow\":true}").unwrap();
        assert_eq!(until_close.body, b"{\"allow\":true}");
        assert!(!until_close.reusable);
    }

    #[test]
    fn broken_responses() {
        assert_eq!(
            exchange_with(b"").unwrap_err(),
            Failure::Down {
                before_response: true
            }
        );
        assert_eq!(
            exchange_with(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap_err(),
            Failure::Malformed
        );
        assert_eq!(
            exchange_with(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").unwrap_err(),
            Failure::Malformed
        );
        assert_eq!(
            exchange_with(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n").unwrap_err(),
            Failure::Malformed,
            "over the body limit"
        );
        assert_eq!(
            exchange_with(b"HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err(),
            Failure::Malformed
        );
    }
}
