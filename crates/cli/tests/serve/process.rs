//! A child process for the end-to-end tests (`tether`, or a backend it
//! talks to): started with its standard output piped, the first line it
//! prints read, and killed (`kill -9`) when dropped; the address
//! `tether serve` prints on that line; and one HTTP/1.1 request on a
//! connection of its own.

#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a run of `tether` to its end may take: long enough for a
/// loaded machine; only catches a hang.
const PATIENCE: Duration = Duration::from_secs(15);

/// A running child process, killed when dropped.
pub(crate) struct Process {
    pub(crate) child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Process {
    /// Starts `command` with no standard input and its standard output
    /// piped (its standard error is the caller's choice), and reads the
    /// first line it prints.
    pub(crate) fn start(command: &mut Command) -> (Process, String) {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a process");
        Process::first_line(child)
    }

    /// Reads the first line a child started with its standard output
    /// piped prints.
    pub(crate) fn first_line(mut child: Child) -> (Process, String) {
        let mut stdout = BufReader::new(child.stdout.take().expect("a piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the first line");
        let process = Process { child, stdout };
        (process, line)
    }

    /// The next line the process prints (empty once its output ends).
    pub(crate) fn next_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read a line");
        line
    }

    /// `kill -9`, and waits for the process to end.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The address in the first line `tether serve` prints
/// (`... http://ADDR/ ...`), if there is one.
pub(crate) fn address(line: &str) -> Option<SocketAddr> {
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|addr| addr.parse().ok())
}

/// One HTTP/1.1 request on its own connection, each read waiting at most
/// `patience`: the status and the body.
pub(crate) fn request(
    patience: Duration,
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(patience)).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a response: {response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// `tether ARGS` with `envs`, and no TETHER_* variable of the test's own.
pub(crate) fn tether(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tether"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TETHER_") {
            command.env_remove(name);
        }
    }
    command.args(args).envs(envs.iter().copied()).stdin(Stdio::null());
    command
}

/// Runs `tether ARGS` with `envs` to its end, which must come within
/// [`PATIENCE`]: what it wrote and how it ended.
pub(crate) fn output(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut child = tether(args, envs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tether");
    let start = Instant::now();
    while child.try_wait().expect("wait for tether").is_none() {
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tether {args:?} did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the output")
}

/// Starts `tether serve ARGS` with `envs` (see [`tether`]), its standard
/// error in `log` or nowhere: the process, its address and the first line
/// it printed.
/// `tether serve --app hub --memory` on a port of its own with one
/// event loop, and `more` options: the hub most end-to-end tests start.
pub(crate) fn serve_hub(more: &[&str], log: Option<&Path>) -> (Process, SocketAddr, String) {
    let mut args = vec!["--app", "hub", "--memory", "--port", "0", "--threads", "1"];
    args.extend_from_slice(more);
    serve(&args, &[], log)
}

pub(crate) fn serve(
    args: &[&str],
    envs: &[(&str, &str)],
    log: Option<&Path>,
) -> (Process, SocketAddr, String) {
    let mut all = vec!["serve"];
    all.extend_from_slice(args);
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).expect("a log file")),
        None => Stdio::null(),
    };
    let (process, banner) = Process::start(tether(&all, envs).stderr(stderr));
    let addr = address(&banner).unwrap_or_else(|| panic!("no address in {banner:?}"));
    (process, addr, banner)
}

/// The status of `GET TARGET` with these header lines (each ending in
/// CRLF), on a connection of its own: the status line only, so an event
/// stream's head is enough. 0 if no status line parses.
pub(crate) fn get_status(addr: SocketAddr, target: &str, headers: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .expect("a status line");
    line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}
