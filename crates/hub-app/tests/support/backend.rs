//! An application backend for the hook tests: a plain HTTP/1.1 server on
//! a free port of 127.0.0.1 that answers each `POST` (keep-alive, any
//! path) with `200` and the JSON its `answer` makes of the request's
//! JSON body. Its threads end with the test process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use serde_json::Value;

/// What a backend answers a question with (the body of a `200`).
pub(crate) type Answer = dyn Fn(&Value) -> String + Send + Sync;

/// Starts a backend answering with `answer` (a body that is not JSON is
/// read as `null`): its port.
pub(crate) fn start(answer: Arc<Answer>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = Arc::clone(&answer);
            thread::spawn(move || serve(stream, &*answer));
        }
    });
    port
}

/// Answers the requests of one keep-alive connection.
fn serve(stream: TcpStream, answer: &Answer) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let field = line.trim_end();
            if field.is_empty() {
                break;
            }
            if let Some((name, value)) = field.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let question: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = answer(&question);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
