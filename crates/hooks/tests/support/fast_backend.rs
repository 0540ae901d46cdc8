//! A fast hook backend in Rust for throughput runs: a thread per
//! connection, keep-alive, every connect allowed with the subject
//! `id-<id>` (the request's own id echoed back).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use tether_http1::{EMPTY_HEADER, Limits, RequestDecoder, Status};

pub(crate) struct FastBackend {
    pub(crate) port: u16,
}

impl FastBackend {
    /// Listens on a free port of 127.0.0.1. The listener thread lives as
    /// long as the process (it blocks in `accept`), as do connection
    /// threads until their peer closes.
    pub(crate) fn start() -> FastBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                thread::spawn(move || serve(stream));
            }
        });
        FastBackend { port }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut decoder = RequestDecoder::new(Limits::default());
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut out = Vec::new();
    loop {
        // A head, then its body, from what has arrived.
        let used = {
            let mut headers = [EMPTY_HEADER; 32];
            match decoder.decode_head(&buf, &mut headers) {
                Ok(Status::Complete((_, used))) => Some(used),
                Ok(Status::Partial) => None,
                Err(_) => return,
            }
        };
        let Some(used) = used else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
            continue;
        };
        buf.drain(..used);
        let mut body = Vec::new();
        loop {
            let Ok((used, done)) = decoder.decode_body(&buf, &mut body) else {
                return;
            };
            buf.drain(..used);
            if done {
                break;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            }
        }
        let id = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str().map(str::to_string)))
            .unwrap_or_default();
        let answer = format!(r#"{{"allow":true,"subject":"id-{id}"}}"#);
        out.clear();
        out.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            )
            .as_bytes(),
        );
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}
