//! A `tether serve --app hub` process for the end-to-end tests that run
//! several nodes against a bus (Redis, NATS): started on a free port with its log in a
//! file, waited for until its broker is up, killed (`kill -9`) when
//! dropped, and asked one HTTP/1.1 request at a time on a connection of
//! its own. The child process and the request are in `process.rs`, which
//! the tests that start `tether` without a bus use too.

#![allow(dead_code)] // each test file uses a part

pub(crate) mod process;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::support::{PATIENCE, wait_until};
use process::{Process, address};

/// A running `tether serve --app hub --port 0 --threads 2`.
pub(crate) struct Node {
    process: Process,
    pub(crate) addr: SocketAddr,
    log: PathBuf,
}

impl Node {
    /// Starts a node with `args` after the common ones and `envs`, its
    /// standard error in `DIR/NAME.log`, and waits until its broker
    /// reports up in `/metrics`. Two event loops unless `args` say
    /// `--threads`.
    pub(crate) fn start<A: AsRef<OsStr>>(dir: &Path, name: &str, args: &[A], envs: &[(&str, &str)]) -> Node {
        let log = dir.join(format!("{name}.log"));
        let threads: &[&str] = if args.iter().any(|a| a.as_ref() == "--threads") {
            &[]
        } else {
            &["--threads", "2"]
        };
        let (process, line) = Process::start(
            Command::new(env!("CARGO_BIN_EXE_tether"))
                .args(["serve", "--app", "hub", "--port", "0"])
                .args(threads)
                .args(args)
                .args(["--log-level", "info"])
                .envs(envs.iter().copied())
                .stderr(std::fs::File::create(&log).expect("a log file")),
        );
        let addr = address(&line).unwrap_or_else(|| {
            panic!(
                "{name} did not start: {line:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let node = Node { process, addr, log };
        wait_until(&format!("{name} to connect to Redis"), || {
            node.metrics().contains("tether_broker_up 1\n")
        });
        node
    }

    /// One request to this node: the status and the body.
    pub(crate) fn request(&self, method: &str, target: &str, headers: &str, body: &str) -> (u16, String) {
        process::request(PATIENCE, self.addr, method, target, headers, body)
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
        self.process.kill();
    }
}
