//! PEM files read for TLS by a library user (`tls::server_config_from_files`,
//! `tls::ReloadableCert::from_files` and `reload`): read only up to
//! `tls::MAX_PEM_FILE` bytes, and only from regular files.

// The TLS helpers exist only with the server's `tls` feature.
#![cfg(feature = "tls")]
// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tether_server::tls::{self, MAX_PEM_FILE, ReloadableCert};

/// A directory of its own for one test, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!("tether-tls-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a directory");
        Dir(path)
    }

    fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate for `localhost` and its key, in PEM.
fn pair() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("a certificate");
    (made.cert.pem(), made.signing_key.serialize_pem())
}

/// `pem` followed by text outside any PEM block (which PEM readers
/// skip), `total` bytes in all.
fn padded(pem: &str, total: u64) -> Vec<u8> {
    let mut bytes = pem.as_bytes().to_vec();
    let total = usize::try_from(total).expect("a size");
    assert!(bytes.len() < total);
    bytes.resize(total - 1, b'#');
    bytes.push(b'\n');
    bytes
}

fn is_too_large(e: &std::io::Error, path: &Path) {
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains(&MAX_PEM_FILE.to_string()), "{message}");
}

#[test]
fn a_pem_file_of_the_bound_is_read_and_one_byte_more_is_refused() {
    let dir = Dir::new("bound");
    let (cert, key) = pair();
    let key_path = dir.write("key.pem", key.as_bytes());
    let at_bound = dir.write("cert-at-bound.pem", &padded(&cert, MAX_PEM_FILE));
    tls::server_config_from_files(&at_bound, &key_path).expect("a file of the bound is read");
    let over = dir.write("cert-over.pem", &padded(&cert, MAX_PEM_FILE + 1));
    let e = tls::server_config_from_files(&over, &key_path).expect_err("one byte more is refused");
    is_too_large(&e, &over);
    // The key file too.
    let cert_path = dir.write("cert.pem", cert.as_bytes());
    let key_over = dir.write("key-over.pem", &padded(&key, MAX_PEM_FILE + 1));
    let e = ReloadableCert::from_files(&cert_path, &key_over).expect_err("a key file too large is refused");
    is_too_large(&e, &key_over);
}

#[test]
fn a_reload_from_a_file_grown_past_the_bound_is_refused_and_the_current_pair_stays() {
    let dir = Dir::new("reload");
    let (cert, key) = pair();
    let cert_path = dir.write("cert.pem", cert.as_bytes());
    let key_path = dir.write("key.pem", key.as_bytes());
    let reloadable = ReloadableCert::from_files(&cert_path, &key_path).expect("loaded");
    reloadable.reload().expect("the same files again");
    let (renewed, _) = pair();
    dir.write("cert.pem", &padded(&renewed, MAX_PEM_FILE + 1));
    let e = reloadable.reload().expect_err("a file too large is refused");
    is_too_large(&e, &cert_path);
    // The current pair still serves: a configuration from it is made.
    let _config = reloadable.server_config();
}

#[cfg(unix)]
#[test]
fn a_device_is_refused_not_read_without_end() {
    let dir = Dir::new("device");
    let (_, key) = pair();
    let key_path = dir.write("key.pem", key.as_bytes());
    let zero = Path::new("/dev/zero");
    let e = tls::server_config_from_files(zero, &key_path).expect_err("a device is refused");
    assert_eq!(e.kind(), ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("/dev/zero: not a regular file"), "{e}");
}
