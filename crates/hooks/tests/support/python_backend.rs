//! The Python backend (`tests/backend.py`) as a child process on a free
//! port, killed by its pid when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub(crate) struct PythonBackend {
    child: Child,
    pub(crate) port: u16,
}

impl PythonBackend {
    pub(crate) fn start() -> PythonBackend {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/backend.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs tests/backend.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the backend prints its port");
        let port = line.trim().parse().expect("a port number");
        PythonBackend { child, port }
    }

    /// The URL of `path` on this backend.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for PythonBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
