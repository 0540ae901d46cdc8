//! What the test support of each bus bridge (a real `redis-server`, a
//! real `nats-server`) has in common: whether the server can run here (or
//! the test is skipped, or fails when the environment requires it), free
//! ports, waiting with a hang guard, and the server as a child process
//! started, waited for and killed. Each bridge's `support` module includes
//! this file with `#[path = "..."] mod` and defines its `PATIENCE`.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::PATIENCE;

/// A server program the tests run.
pub struct Program {
    /// Its name in messages (`redis-server`).
    pub name: &'static str,
    /// The environment variable that makes its absence a failure
    /// (`TETHER_REQUIRE_REDIS`).
    pub require: &'static str,
    /// How to install it, for the messages.
    pub install: &'static str,
}

impl Program {
    /// Whether `command` (this program) runs here; when it does not, says
    /// why and returns false, or fails if the `require` variable is set.
    pub fn available(&self, test: &str, command: &str) -> bool {
        let installed = Command::new(command)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if installed {
            return true;
        }
        let Program {
            name,
            require,
            install,
        } = self;
        assert!(
            std::env::var_os(require).is_none(),
            "{test}: {name} is not installed but {require} is set ({install})"
        );
        println!(
            "{test}: SKIPPED: {name} is not installed ({install}; set {require}=1 to make this a failure)"
        );
        false
    }

    /// Waits until the just started `child` (this program on `port`) is
    /// `ready()`; fails if it exits first or does not get ready in time
    /// (then killed).
    pub fn wait_started(&self, child: &mut Child, port: u16, mut ready: impl FnMut() -> bool) {
        let name = self.name;
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("{name} exited at once ({status}); is port {port} taken?");
            }
            if ready() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} did not start");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Kills the child, if any (its clients see their connections reset).
pub fn stop(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A port nothing listens on right now, and not handed out before in this
/// process: the kernel may give a released port again at once, and the
/// tests of one binary run at once, each starting servers on the ports it
/// was given (two clusters given one port each took the other's node for
/// its own).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if GIVEN.lock().unwrap_or_else(PoisonError::into_inner).insert(port) {
            return port;
        }
    }
}

/// Waits (a hang guard, not a timing check) until `ready()` holds.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}
