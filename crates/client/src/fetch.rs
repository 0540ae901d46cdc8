//! One HTTP/1.1 `GET` of a small document (an identity provider's key
//! set, a configuration), blocking, on the same transport and response
//! parser as the event-stream client: bounded in time and in size.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use tether_client_core::url::{Scheme, Url};

use crate::error::Error;
use crate::http::parse_head;
use crate::tls::TlsChoice;
use crate::transport::{Transport, is_timeout, time_left};

/// The largest response head taken.
const MAX_HEAD: usize = 16 * 1024;

/// How a [`get`] is bounded, and whom it trusts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FetchOptions {
    /// The longest a TCP connection may take to open (10 s).
    pub connect_timeout: Duration,
    /// The longest the whole exchange may take, connection included (30 s).
    pub total_timeout: Duration,
    /// The most body bytes taken (1 MiB): a longer body fails the fetch.
    pub max_body: usize,
    tls: TlsChoice,
}

impl Default for FetchOptions {
    fn default() -> FetchOptions {
        FetchOptions {
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            max_body: 1 << 20,
            tls: TlsChoice::System,
        }
    }
}

impl FetchOptions {
    /// `https://` checked against this configuration's roots rather than
    /// the system's (see [`crate::tls::roots_from_pem`]).
    #[cfg(feature = "tls")]
    pub fn tls_config(mut self, config: std::sync::Arc<rustls::ClientConfig>) -> FetchOptions {
        self.tls = TlsChoice::Given(config);
        self
    }
}

/// A response to [`get`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fetched {
    /// The status code.
    pub status: u16,
    /// The `Cache-Control` header, if any.
    pub cache_control: Option<String>,
    /// The body, whole.
    pub body: Vec<u8>,
}

/// Fetches `url` (`http://` or `https://`) with one `GET`, following no
/// redirect, and returns the response whatever its status.
///
/// # Errors
///
/// [`Error::UnsupportedScheme`] for a scheme other than those two,
/// [`Error::Timeout`] past [`FetchOptions::total_timeout`],
/// [`Error::Http`] for a malformed response or one whose head or body is
/// too large, and [`Error::Io`] / [`Error::ConnectionLost`] for the
/// network's failures.
pub fn get(url: &str, options: &FetchOptions) -> Result<Fetched, Error> {
    let url = Url::parse(url)?.require(&[Scheme::Http, Scheme::Https], "http:// or https://")?;
    let deadline = Instant::now() + options.total_timeout;
    let mut stream = Transport::connect(
        &url,
        options.connect_timeout.min(options.total_timeout),
        &options.tls,
    )?;
    stream.handshake(deadline, "TLS handshake")?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        url.target(),
        url.host_header()
    );
    time_left(stream.tcp(), deadline, "send the request")?;
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.flush())
        .map_err(|e| io_error(e, "send the request"))?;
    let result = read_response(&mut stream, deadline, options.max_body);
    stream.shutdown();
    result
}

fn read_response(stream: &mut Transport, deadline: Instant, max_body: usize) -> Result<Fetched, Error> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    let (head, used) = loop {
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
        if buf.len() > MAX_HEAD {
            return Err(Error::Http(format!(
                "a response head longer than {MAX_HEAD} bytes"
            )));
        }
        match read(stream, deadline, &mut chunk)? {
            0 => return Err(Error::ConnectionLost),
            n => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    };
    let mut decoder = head.body.clone();
    let mut body = Vec::new();
    let mut too_large = false;
    let mut take = |input: &[u8], body: &mut Vec<u8>, too_large: &mut bool| -> Result<bool, Error> {
        decoder.decode(input, &mut |bytes| {
            if body.len() + bytes.len() > max_body {
                *too_large = true;
            } else {
                body.extend_from_slice(bytes);
            }
        })
    };
    let mut done = take(buf.get(used..).unwrap_or_default(), &mut body, &mut too_large)?;
    while !done && !too_large {
        match read(stream, deadline, &mut chunk)? {
            0 if head.body.until_close() => done = true,
            0 => return Err(Error::ConnectionLost),
            n => done = take(chunk.get(..n).unwrap_or_default(), &mut body, &mut too_large)?,
        }
    }
    if too_large {
        return Err(Error::Http(format!("a body longer than {max_body} bytes")));
    }
    Ok(Fetched {
        status: head.status,
        cache_control: head.cache_control,
        body,
    })
}

fn read(stream: &mut Transport, deadline: Instant, chunk: &mut [u8]) -> Result<usize, Error> {
    loop {
        time_left(stream.tcp(), deadline, "read the response")?;
        match stream.read(chunk) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other.map_err(|e| io_error(e, "read the response")),
        }
    }
}

fn io_error(e: std::io::Error, step: &'static str) -> Error {
    if is_timeout(&e) {
        Error::Timeout(step)
    } else {
        Error::io(step, e)
    }
}
