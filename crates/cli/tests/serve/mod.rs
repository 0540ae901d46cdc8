//! A `tether serve --app hub` process for the end-to-end tests that run
//! several nodes against a bus (Redis, NATS): started on a free port with its log in a
//! file, waited for until its broker is up, killed (`kill -9`) when
//! dropped; and one HTTP/1.1 request on a connection of its own.

#![allow(dead_code)] // each test file uses a part

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use super::support::{PATIENCE, wait_until};

/// A running `tether serve --app hub --port 0 --threads 2`.
pub(crate) struct Node {
    child: Child,
    pub(crate) addr: SocketAddr,
    log: PathBuf,
    _stdout: BufReader<ChildStdout>,
}

impl Node {
    /// Starts a node with `args` after the common ones and `envs`, its
    /// standard error in `DIR/NAME.log`, and waits until its broker
    /// reports up in `/metrics`.
    pub(crate) fn start<A: AsRef<OsStr>>(dir: &Path, name: &str, args: &[A], envs: &[(&str, &str)]) -> Node {
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
            .args(["serve", "--app", "hub", "--port", "0", "--threads", "2"])
            .args(args)
            .args(["--log-level", "info"])
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("run tether serve");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the first line");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "{name} did not start: {line:?}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
        let node = Node {
            child,
            addr,
            log,
            _stdout: stdout,
        };
        wait_until(&format!("{name} to connect to Redis"), || {
            node.metrics().contains("tether_broker_up 1\n")
        });
        node
    }

    /// One request to this node: the status and the body.
    pub(crate) fn request(&self, method: &str, target: &str, headers: &str, body: &str) -> (u16, String) {
        request(self.addr, method, target, headers, body)
    }

    pub(crate) fn metrics(&self) -> String {
        let (status, body) = self.request("GET", "/metrics", "", "");
        assert_eq!(status, 200);
        body
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill -9`: no goodbye to its clients or to Redis.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One HTTP/1.1 request on its own connection: the status and the body.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
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
