//! Drives the hub's routes through the real HTTP/1.1 request path: one hub
//! cluster per process (two loops, so publishes cross loops), fed raw
//! request bytes on a fresh connection each, whose answer must be a clean
//! close or well-formed HTTP/1.1 responses, with no panic anywhere and the
//! server still answering `GET /healthz` afterwards.
//!
//! Shared by the `hub_routes` proptest (tether-hub-app's tests) and the
//! `hub_routes` fuzz target, so it depends only on crates both have:
//! tether-server, tether-apps (for the hub it re-exports) and httparse.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use tether_apps::{HubSettings, HubShared};
use tether_server::{Cluster, Config, Handle, Handshake};

/// The publish token the hub under test expects.
pub(crate) const TOKEN: &str = "route-fuzz-token";

/// How long the hub holds a long poll at most: short, so that a poll in an
/// input ends long before [`IO_TIMEOUT`].
const POLL_TIMEOUT: Duration = Duration::from_millis(50);

/// A read or write that blocks this long means the server hangs.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Panics seen on any thread since the process started, caught or not
/// (the server catches a panic at the app boundary, but the hook runs
/// first).
static PANICS: AtomicUsize = AtomicUsize::new(0);
static FIRST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// The running hub.
pub(crate) struct Harness {
    addr: SocketAddr,
    handle: Handle,
}

/// The hub of this process, started on first use.
pub(crate) fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        install_panic_hook();
        Harness::start()
    })
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut first) = FIRST_PANIC.lock() {
            first.get_or_insert_with(|| info.to_string());
        }
        previous(info);
    }));
}

impl Harness {
    fn start() -> Harness {
        let loops = 2;
        let mut settings = HubSettings::default();
        settings.publish_token = Some(TOKEN.to_owned());
        settings.poll_timeout = POLL_TIMEOUT;
        settings.publish_timeout = Duration::from_secs(1);
        settings.max_tickets = 64;
        // Small limits, so that inputs reach them.
        settings.hub.max_topics = 256;
        settings.hub.max_backlog_events = 16;
        settings.hub.max_backlog_bytes = 16 * 1024;
        settings.hub.max_event_size = 4 * 1024;
        let shared = HubShared::new(settings, loops);

        let mut config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.raise_fd_limit = false;
        config.max_request_head = 4 * 1024;
        config.max_request_body = 8 * 1024;
        config.linger = Duration::from_millis(200);
        let cluster = match Cluster::bind(config, Handshake::new(), loops, |i| shared.app(i)) {
            Ok(cluster) => cluster,
            Err(e) => panic!("the hub under test cannot bind: {e}"),
        };
        let addr = cluster.local_addr();
        let handle = cluster.handle();
        // Runs until the process exits; a loop that dies shows as a panic
        // (the hook) or as a `/healthz` that no longer answers.
        thread::Builder::new()
            .name("hub-under-test".into())
            .spawn(move || cluster.run())
            .map(drop)
            .unwrap_or_else(|e| panic!("cannot start the hub under test: {e}"));
        Harness { addr, handle }
    }

    /// Sends `input` on a new connection, half-closes it and checks what
    /// comes back, then that nothing panicked and that the hub still
    /// answers. `Err` says what went wrong.
    pub(crate) fn exchange(&self, input: &[u8]) -> Result<(), String> {
        let output = self.send(input)?;
        check_responses(&output.bytes, output.reset, &heads(input)).map_err(|e| {
            format!(
                "{e}\n--- request ---\n{}\n--- response ---\n{}",
                String::from_utf8_lossy(input).escape_debug(),
                String::from_utf8_lossy(&output.bytes).escape_debug()
            )
        })?;
        self.check_alive()
    }

    /// No panic on any thread, none caught at the app boundary, and
    /// `/healthz` still answers `200`.
    pub(crate) fn check_alive(&self) -> Result<(), String> {
        let panics = PANICS.load(Ordering::SeqCst);
        if panics > 0 {
            let first = FIRST_PANIC.lock().map(|p| p.clone()).unwrap_or_default();
            return Err(format!("{panics} panic(s), the first: {first:?}"));
        }
        let caught = self.handle.stats().app_panics;
        if caught > 0 {
            return Err(format!("{caught} panic(s) caught at the app boundary"));
        }
        let health = self.send(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&health.bytes) {
            Ok(httparse::Status::Complete(_)) if response.code == Some(200) => Ok(()),
            _ => Err(format!(
                "GET /healthz no longer answers 200: {:?}",
                String::from_utf8_lossy(&health.bytes)
            )),
        }
    }

    fn send(&self, input: &[u8]) -> Result<Output, String> {
        let mut stream = TcpStream::connect(self.addr).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| format!("socket timeouts: {e}"))?;
        match stream.write_all(input) {
            Ok(()) => {}
            // The server may answer and close before it read everything
            // (a head too large, a bad request): what it wrote still counts.
            Err(e) if is_reset(e.kind()) => {}
            Err(e) => return Err(format!("the server stopped reading (hang?): {e}")),
        }
        // Not connected any more is fine: the server closed first.
        let _ = stream.shutdown(Shutdown::Write);
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => return Ok(Output { bytes, reset: false }),
                Ok(n) => bytes.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A close with unread input resets the connection, and the
                // kernel may drop the tail of what was already sent.
                Err(e) if is_reset(e.kind()) => return Ok(Output { bytes, reset: true }),
                Err(e) => {
                    return Err(format!(
                        "no end of the answer within {IO_TIMEOUT:?} (hang?): {e}; got {:?}",
                        String::from_utf8_lossy(&bytes)
                    ));
                }
            }
        }
    }
}

struct Output {
    bytes: Vec<u8>,
    /// The connection ended with a reset rather than a FIN.
    reset: bool,
}

fn is_reset(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// Checks that `output` is a sequence of well-formed HTTP/1.1 responses:
/// a status line and headers, then a body framed by `Content-Length` or
/// chunked; interim `1xx` responses may come first; after a `101` or an
/// event stream come stream bytes, which are not checked. Empty output is
/// a clean close. After a reset the last response may be cut short.
/// `heads[i]` says whether the `i`-th request was a `HEAD`, whose response
/// has no body whatever its `Content-Length`.
pub(crate) fn check_responses(output: &[u8], reset: bool, heads: &[bool]) -> Result<(), String> {
    let mut rest = output;
    let mut answered = 0usize;
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(rest) {
            Ok(httparse::Status::Complete(head)) => head,
            Ok(httparse::Status::Partial) if reset => return Ok(()),
            Ok(httparse::Status::Partial) => return Err("a response head cut short".into()),
            Err(e) => return Err(format!("a malformed response head: {e}")),
        };
        if response.version != Some(1) {
            return Err(format!("not HTTP/1.1: version {:?}", response.version));
        }
        let code = response.code.unwrap_or(0);
        if !(100..=599).contains(&code) {
            return Err(format!("status {code}"));
        }
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        let mut event_stream = false;
        let mut closes = false;
        for header in response.headers.iter() {
            let value = std::str::from_utf8(header.value)
                .map_err(|_| format!("header {} is not UTF-8", header.name))?;
            if header.name.eq_ignore_ascii_case("content-length") {
                let length = value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| format!("Content-Length {value:?}"))?;
                if content_length.is_some_and(|l| l != length) {
                    return Err("two different Content-Length headers".into());
                }
                content_length = Some(length);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.trim().eq_ignore_ascii_case("chunked");
                if !chunked {
                    return Err(format!("Transfer-Encoding {value:?}"));
                }
            } else if header.name.eq_ignore_ascii_case("connection") {
                closes = value.trim().eq_ignore_ascii_case("close");
            } else if header.name.eq_ignore_ascii_case("content-type") {
                event_stream = value.trim().starts_with("text/event-stream");
            }
        }
        if content_length.is_some() && chunked {
            return Err("both Content-Length and Transfer-Encoding".into());
        }
        rest = rest.get(head..).unwrap_or_default();
        if code == 101 || (code == 200 && event_stream) {
            // Stream bytes follow, to the end of the connection.
            return Ok(());
        }
        if (100..200).contains(&code) {
            if content_length.is_some() || chunked {
                return Err(format!("a {code} with a body"));
            }
            continue;
        }
        let head_request = heads.get(answered).copied().unwrap_or(false);
        answered += 1;
        if head_request {
            // A request the server could not frame gets its error with a
            // body, then the close, whatever its method: that body is all
            // that may follow.
            let framing_error = closes && code >= 400 && content_length == Some(rest.len());
            if framing_error {
                return Ok(());
            }
            continue;
        }
        if code == 204 || code == 304 {
            if content_length.is_some_and(|l| l > 0) || chunked {
                return Err(format!("a {code} with a body"));
            }
            continue;
        }
        if chunked {
            match skip_chunked(rest)? {
                Some(used) => rest = rest.get(used..).unwrap_or_default(),
                None if reset => return Ok(()),
                None => return Err("a chunked body cut short".into()),
            }
        } else if let Some(length) = content_length {
            match rest.get(length..) {
                Some(after) => rest = after,
                None if reset => return Ok(()),
                None => {
                    return Err(format!(
                        "a body cut short: Content-Length {length}, {} bytes",
                        rest.len()
                    ));
                }
            }
        } else {
            // Delimited by the close: nothing can follow it.
            return Ok(());
        }
    }
    Ok(())
}

/// For each request at the start of `input`, in order, whether it is a
/// `HEAD`; it stops at the first request whose body it cannot frame.
pub(crate) fn heads(input: &[u8]) -> Vec<bool> {
    let mut heads = Vec::new();
    let mut rest = input;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = request.parse(rest) else {
            return heads;
        };
        let head_request = request.method == Some("HEAD");
        let mut length = 0usize;
        let mut chunked = false;
        for header in request.headers.iter() {
            if header.name.eq_ignore_ascii_case("content-length") {
                match std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
                {
                    Some(l) => length = l,
                    None => return heads,
                }
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                if !header.value.eq_ignore_ascii_case(b"chunked") {
                    return heads;
                }
                chunked = true;
            }
        }
        heads.push(head_request);
        rest = rest.get(head..).unwrap_or_default();
        let body = if chunked {
            match skip_chunked(rest) {
                Ok(Some(used)) => used,
                _ => return heads,
            }
        } else {
            length
        };
        match rest.get(body..) {
            Some(after) if !after.is_empty() => rest = after,
            _ => return heads,
        }
    }
}

/// The length of the chunked body at the start of `body`, with its
/// trailers; `None` when it is cut short.
fn skip_chunked(body: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0usize;
    loop {
        let rest = body.get(at..).unwrap_or_default();
        let (used, size) = match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete(chunk)) => chunk,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("a malformed chunk size".into()),
        };
        let size = usize::try_from(size).map_err(|_| "a chunk too large")?;
        at = at.saturating_add(used);
        if size == 0 {
            // Trailers end with an empty line.
            let rest = body.get(at..).unwrap_or_default();
            if rest.starts_with(b"\r\n") {
                return Ok(Some(at + 2));
            }
            return Ok(find(rest, b"\r\n\r\n").map(|end| at + end + 4));
        }
        at = at.saturating_add(size);
        match body.get(at..at.saturating_add(2)) {
            Some(b"\r\n") => at += 2,
            Some(_) => return Err("a chunk not followed by CRLF".into()),
            None => return Ok(None),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
