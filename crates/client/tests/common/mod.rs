//! Test servers: tether-server on its own thread, and a tiny scripted HTTP
//! server on std::net for the event-stream edge cases.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tether_server::{App, Config};

pub(crate) mod relay;

/// A generous guard: no single socket operation in these tests should
/// take anywhere near this long.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(10);

/// A configuration for tests: the given address, no process-wide limit
/// changes, short linger and shutdown times.
pub(crate) fn config(addr: SocketAddr) -> Config {
    let mut config = Config::new(addr);
    config.raise_fd_limit = false;
    config.linger = Duration::from_millis(300);
    config.shutdown_timeout = Duration::from_secs(2);
    // The `retry:` hint for event streams, so that reconnections are quick.
    config.sse_retry = Duration::from_millis(50);
    config
}

/// A tether server on its own thread: the end-to-end tests' harness.
pub(crate) use tether_testkit::TestServer;

/// Serves `app` on an ephemeral loopback port with [`config`].
pub(crate) fn start_server<A: App + Send + 'static>(app: A) -> TestServer {
    TestServer::start(config("127.0.0.1:0".parse().unwrap()), app)
}

/// One request as the scripted server received it.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Recorded {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the script does with one connection: writes these pieces in
/// order (each with its own write call), then closes or keeps the
/// connection open until the client goes away.
pub(crate) struct Reply {
    pub(crate) pieces: Vec<Vec<u8>>,
    pub(crate) keep_open: bool,
}

impl Reply {
    /// A response written in one piece, then the connection closed.
    pub(crate) fn close(response: impl Into<Vec<u8>>) -> Reply {
        Reply {
            pieces: vec![response.into()],
            keep_open: false,
        }
    }

    /// A response written in one piece; the connection stays open.
    pub(crate) fn open(response: impl Into<Vec<u8>>) -> Reply {
        Reply {
            pieces: vec![response.into()],
            keep_open: true,
        }
    }

    /// A 200 event stream with `body`, then the connection closed.
    pub(crate) fn stream(body: &str) -> Reply {
        Reply::close(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n{body}"
        ))
    }
}

type Script = dyn Fn(usize, &Recorded) -> Reply + Send + Sync;

/// A one-thread HTTP server on std::net that answers each connection as a
/// script says, given the connection's number (from 0) and its request,
/// and records every request.
pub(crate) struct ScriptServer {
    pub(crate) addr: SocketAddr,
    pub(crate) requests: Arc<Mutex<Vec<Recorded>>>,
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScriptServer {
    pub(crate) fn start(script: impl Fn(usize, &Recorded) -> Reply + Send + Sync + 'static) -> ScriptServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let script: Arc<Script> = Arc::new(script);
        let thread = {
            let requests = requests.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mut count = 0;
                let mut open = Vec::new();
                while !done.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(false).expect("blocking stream");
                            if let Some(kept) = serve(stream, count, &*script, &requests) {
                                open.push(kept);
                            }
                            count += 1;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(2));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
            })
        };
        ScriptServer {
            addr,
            requests,
            done,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self, target: &str) -> String {
        format!("http://{}{target}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for ScriptServer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request head, records it, writes the script's reply. Returns
/// the stream when it is to be kept open.
fn serve(
    mut stream: TcpStream,
    index: usize,
    script: &Script,
    requests: &Mutex<Vec<Recorded>>,
) -> Option<TcpStream> {
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let target = request_line.split(' ').nth(1).unwrap_or_default().to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let recorded = Recorded { target, headers };
    let reply = script(index, &recorded);
    requests.lock().unwrap().push(recorded);
    for piece in &reply.pieces {
        if stream.write_all(piece).is_err() {
            return None;
        }
        let _ = stream.flush();
    }
    reply.keep_open.then_some(stream)
}
