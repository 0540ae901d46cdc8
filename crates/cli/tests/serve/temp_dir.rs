//! A directory of a test's own in the system's temporary directory.

#![allow(dead_code)] // each test file uses a part

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory of the test's own, removed when dropped.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    /// A new empty directory named after the test file, the process,
    /// `name` and a count (so that no two are the same).
    pub(crate) fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let test = env!("CARGO_CRATE_NAME");
        let path = std::env::temp_dir().join(format!("tether-{test}-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a temporary directory");
        TempDir(path)
    }

    /// The path of `name` in the directory.
    pub(crate) fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().expect("a UTF-8 path").to_owned()
    }

    /// Writes `contents` to `name` in the directory: its path.
    pub(crate) fn write(&self, name: &str, contents: &[u8]) -> String {
        let path = self.file(name);
        std::fs::write(&path, contents).expect("write a file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
