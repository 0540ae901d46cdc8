//! The server's own HTTP/1.1 request path for a chunked body: arbitrary
//! bytes as the body of a `Transfer-Encoding: chunked` POST to a running
//! server (one loop, small limits), arriving in pieces that the server
//! reads one at a time, so that its body decoder is kept between reads.
//!
//! The rule: the server answers as the body decoder of `tether-http1`
//! reads the same bytes at once (the body echoed whole with 200, or a
//! 400 or 413 when the body is malformed, too large or mostly framing, or
//! no answer to a body cut short), nothing panics on any thread, and the
//! server still answers afterwards. Memory stays within the server's
//! limits (the head 512 bytes, the body 1 KiB, its framing as much
//! again): libFuzzer's RSS limit catches any growth past them.
//!
//! Input layout: the first byte is the size of the pieces (0 counts as
//! 1), the rest the body's bytes on the wire. Seeds in
//! `seeds/http1_server_body/` start with one such byte.
#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tether_http1::{BodyDecoder, Framing};
use tether_server::{
    App, Cluster, Config, ConnId, Ctx, Handle, Handshake, MessageRef, Reply, Request, Response, Route,
};

const MAX_HEAD: usize = 512;
const MAX_BODY: usize = 1024;

/// Longer inputs only pass limits that shorter ones reach already.
const MAX_INPUT: usize = 4 * 1024;

/// A read that blocks this long means the server hangs.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a piece may wait to be read before the next is sent anyway
/// (the server stops reading once it has answered an error).
const READ_WAIT: Duration = Duration::from_millis(200);

const HEAD: &[u8] = b"POST /echo HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n";

/// Panics seen on any thread, caught by the server or not.
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// `POST /echo` answers with the body it got; anything else is not found.
struct Echo;

impl App for Echo {
    type Post = ();
    type State = ();

    fn route(&mut self, request: &Request<'_>) -> Route {
        match request.path() {
            "/echo" => Route::Handler(()),
            _ => Route::NotFound,
        }
    }

    fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), _: MessageRef<'_>) {}

    fn on_request(&mut self, _: &mut Ctx<'_>, _: ConnId, _: &mut (), _: &Request<'_>, body: &[u8]) -> Reply {
        Reply::Now(Response::new(200, "application/octet-stream", body.to_vec()))
    }
}

struct Running {
    addr: SocketAddr,
    handle: Handle,
}

fn server() -> &'static Running {
    static SERVER: OnceLock<Running> = OnceLock::new();
    SERVER.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
        let mut config = Config::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        config.raise_fd_limit = false;
        config.max_request_head = MAX_HEAD;
        config.max_request_body = MAX_BODY;
        config.linger = Duration::from_millis(100);
        let cluster =
            Cluster::bind(config, Handshake::new(), 1, |_| Echo).expect("bind the server under test");
        let running = Running {
            addr: cluster.local_addr(),
            handle: cluster.handle(),
        };
        thread::spawn(move || cluster.run());
        running
    })
}

/// What the server should make of `wire` as a chunked body.
#[derive(Debug)]
enum Expected {
    /// The body, whole: echoed with 200.
    Body(Vec<u8>),
    /// Malformed or too large: refused with this status.
    Refused(u16),
    /// More framing than the server takes: 400, unless the read that
    /// passed the bound also held an error, whose status then wins.
    TooMuchFraming,
    /// Cut short: no answer (the client's end of stream closes it).
    Unfinished,
}

/// The decoder fed one byte at a time, so that the first of the body's
/// end, an error and too much framing is known wherever reads split it.
fn expected(wire: &[u8]) -> Expected {
    let mut decoder = BodyDecoder::new(Framing::Chunked, MAX_BODY as u64, MAX_HEAD);
    let mut body = Vec::new();
    let mut used = 0usize;
    for byte in wire {
        match decoder.decode(std::slice::from_ref(byte), &mut body) {
            Ok((n, done)) => {
                used += n;
                // The server bounds the framing a body may carry by the
                // head and body limits together.
                if used - body.len() > MAX_HEAD + MAX_BODY {
                    return Expected::TooMuchFraming;
                }
                if done {
                    return Expected::Body(body);
                }
            }
            Err(e) => return Expected::Refused(e.status().expect("a peer's error has a status")),
        }
    }
    Expected::Unfinished
}

/// Waits, briefly, until the server has read `total` bytes in all:
/// whether it has.
fn read_up_to(handle: &Handle, total: u64) -> bool {
    let give_up = Instant::now() + READ_WAIT;
    while handle.stats().bytes_in < total {
        if Instant::now() >= give_up {
            return false;
        }
        thread::yield_now();
    }
    true
}

/// Sends `pieces` on a new connection, each once the last was read (as
/// long as the server reads), half-closes it, and returns what came back.
fn exchange<'a>(running: &Running, pieces: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut stream = TcpStream::connect(running.addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut total = running.handle.stats().bytes_in;
    let mut paced = true;
    for piece in pieces {
        if stream.write_all(piece).is_err() {
            // Answered and closed before the rest.
            break;
        }
        total += piece.len() as u64;
        // Once the server has stopped reading (it answered, or it is only
        // slow), the rest goes without waiting: it arrives all the same.
        paced = paced && read_up_to(&running.handle, total);
    }
    let _ = stream.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => return out,
            Err(e) => panic!(
                "no end of the answer (hang?): {e}; got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// The first response in `out`: its status and its body.
fn response(out: &[u8]) -> Option<(u16, Vec<u8>)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head = match parsed.parse(out) {
        Ok(httparse::Status::Complete(head)) => head,
        _ => panic!("not a response: {:?}", String::from_utf8_lossy(out)),
    };
    let length = parsed
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
        .expect("a response with a Content-Length");
    let body = out.get(head..head + length).expect("the whole body").to_vec();
    Some((parsed.code.expect("a status"), body))
}

fuzz_target!(|data: &[u8]| {
    let Some((&piece, wire)) = data.split_first() else {
        return;
    };
    if wire.len() > MAX_INPUT {
        return;
    }
    let running = server();
    let expected = expected(wire);
    let pieces = std::iter::once(HEAD).chain(wire.chunks(usize::from(piece).max(1)));
    let out = exchange(running, pieces);
    let answer = if out.is_empty() { None } else { response(&out) };
    match (&expected, &answer) {
        (Expected::Body(body), Some((200, echoed))) => assert!(echoed == body, "the body echoed as sent"),
        (Expected::Refused(status), Some((got, _))) => assert_eq!(got, status, "{expected:?}"),
        (Expected::TooMuchFraming, Some((got, _))) => assert!(matches!(got, 400 | 413), "{got}"),
        (Expected::Unfinished, None) => {}
        _ => panic!(
            "expected {expected:?}, got {answer:?}: {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a panic");
    assert_eq!(
        running.handle.stats().app_panics,
        0,
        "a panic caught at the app boundary"
    );
    let alive = exchange(
        running,
        std::iter::once(&b"GET /x HTTP/1.1\r\nHost: fuzz\r\n\r\n"[..]),
    );
    assert_eq!(
        response(&alive).map(|(status, _)| status),
        Some(404),
        "the server still answers"
    );
});
