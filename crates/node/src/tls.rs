//! TLS: the certificate a node serves, loaded at start and read again on
//! SIGHUP.

use std::net::SocketAddr;
#[cfg(feature = "tls")]
use std::path::Path;
use std::path::PathBuf;

#[cfg(feature = "tls")]
use tether_server::Config;

/// Where a TLS port's certificate comes from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TlsCert {
    /// A certificate chain (PEM, the server's certificate first) and its
    /// private key (PEM: PKCS#8, PKCS#1 or SEC1), read at start and again
    /// on each SIGHUP (a renewed certificate), without dropping a
    /// connection.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
    /// A certificate for localhost, 127.0.0.1 and ::1 made at start (for
    /// local use); its SHA-256 fingerprint is printed.
    SelfSigned,
}

/// TLS for a node: the certificate, and where it is served.
#[derive(Clone, Debug)]
pub struct Tls {
    /// The certificate.
    pub cert: TlsCert,
    /// `None`: the main port serves TLS alone. `Some(addr)`: TLS on
    /// `addr` (port 0 picks one), plain HTTP on the main port, side by
    /// side on every event loop.
    pub listen: Option<SocketAddr>,
}

impl Tls {
    /// TLS on the main port with the certificate and key in these files.
    pub fn files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Tls {
        Tls {
            cert: TlsCert::Files {
                cert: cert.into(),
                key: key.into(),
            },
            listen: None,
        }
    }

    /// TLS on the main port with a self-signed certificate made at start.
    pub fn self_signed() -> Tls {
        Tls {
            cert: TlsCert::SelfSigned,
            listen: None,
        }
    }
}

#[cfg(feature = "tls")]
/// Loads the certificate into `config`; the scheme of the main port, and
/// the files to read again on SIGHUP (none for a self-signed one).
pub(crate) fn configure(tls: &Tls, config: &mut Config) -> Result<(&'static str, Option<CertFiles>), String> {
    let files = load(&tls.cert, config)?;
    match tls.listen {
        Some(addr) => {
            config.tls_addr = Some(addr);
            Ok(("http", files))
        }
        None => Ok(("https", files)),
    }
}

#[cfg(feature = "tls")]
fn load(cert: &TlsCert, config: &mut Config) -> Result<Option<CertFiles>, String> {
    match cert {
        TlsCert::SelfSigned => {
            let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
            let made = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
            let fingerprint = ring::digest::digest(&ring::digest::SHA256, made.cert.der());
            let hex: Vec<String> = fingerprint.as_ref().iter().map(|b| format!("{b:02X}")).collect();
            println!(
                "TLS: a self-signed certificate for localhost, 127.0.0.1 and ::1, SHA-256 {}",
                hex.join(":")
            );
            config.tls = Some(
                tether_server::tls::server_config_from_pem(
                    made.cert.pem().as_bytes(),
                    made.signing_key.serialize_pem().as_bytes(),
                )
                .map_err(|e| e.to_string())?,
            );
        }
        TlsCert::Files { cert, key } => {
            let (cert_pem, key_pem) = read_files(cert, key)?;
            let reloadable = tether_server::tls::ReloadableCert::from_pem(&cert_pem, &key_pem)
                .map_err(|e| pair_error(cert, key, &e))?;
            config.tls = Some(reloadable.server_config());
            return Ok(Some(CertFiles {
                reloadable,
                cert: cert.clone(),
                key: key.clone(),
                pem: (cert_pem, key_pem),
            }));
        }
    }
    Ok(None)
}

#[cfg(feature = "tls")]
/// The contents of the certificate and key files: regular files of at
/// most [`MAX_PEM_FILE`](crate::files::MAX_PEM_FILE) bytes each. The
/// errors say which of the two a file was.
fn read_files(cert: &Path, key: &Path) -> Result<(Vec<u8>, Vec<u8>), String> {
    use crate::files::{MAX_PEM_FILE, read};
    let cert_pem = read(cert, MAX_PEM_FILE, "a certificate file").map_err(|e| format!("certificate {e}"))?;
    let key_pem = read(key, MAX_PEM_FILE, "a private key file").map_err(|e| format!("private key {e}"))?;
    Ok((cert_pem, key_pem))
}

#[cfg(feature = "tls")]
/// Why the certificate and key do not make a pair, naming both files.
fn pair_error(cert: &Path, key: &Path, e: &std::io::Error) -> String {
    format!(
        "certificate {} and private key {}: {e}",
        cert.display(),
        key.display()
    )
}

#[cfg(feature = "tls")]
/// What a start checks of a certificate and key file: both read, parse,
/// and the key is the certificate's. Nothing is kept.
///
/// # Errors
///
/// What is wrong with either file, or with the two together.
pub fn check_files(cert: &Path, key: &Path) -> Result<(), String> {
    let (cert_pem, key_pem) = read_files(cert, key)?;
    tether_server::tls::ReloadableCert::from_pem(&cert_pem, &key_pem)
        .map(drop)
        .map_err(|e| pair_error(cert, key, &e))
}

#[cfg(feature = "tls")]
/// A certificate served from files, as a reload needs it: what the
/// handshakes use, where it came from, and the bytes last loaded (a
/// reload that reads the same bytes changes nothing and says nothing).
pub(crate) struct CertFiles {
    reloadable: std::sync::Arc<tether_server::tls::ReloadableCert>,
    cert: PathBuf,
    key: PathBuf,
    pem: (Vec<u8>, Vec<u8>),
}

#[cfg(feature = "tls")]
impl CertFiles {
    /// Reads both files again and, if either changed, serves the new
    /// pair to handshakes from then on (established connections keep
    /// theirs): `Ok(true)` if it changed. A pair that cannot be loaded
    /// leaves the current one in place.
    pub(crate) fn reload(&mut self) -> Result<bool, String> {
        let pem = read_files(&self.cert, &self.key)?;
        if pem == self.pem {
            return Ok(false);
        }
        self.reloadable
            .replace_pem(&pem.0, &pem.1)
            .map_err(|e| pair_error(&self.cert, &self.key, &e))?;
        self.pem = pem;
        Ok(true)
    }

    /// The two files, for the log.
    pub(crate) fn describe(&self) -> String {
        format!("{} and {}", self.cert.display(), self.key.display())
    }
}

/// Without the `tls` feature there are no certificate files to reload.
#[cfg(not(feature = "tls"))]
pub(crate) enum CertFiles {}

#[cfg(not(feature = "tls"))]
impl CertFiles {
    pub(crate) fn reload(&mut self) -> Result<bool, String> {
        match *self {}
    }

    pub(crate) fn describe(&self) -> String {
        match *self {}
    }
}

/// Without the `tls` feature, no certificate can be served.
#[cfg(not(feature = "tls"))]
pub(crate) fn configure(
    _: &Tls,
    _: &mut tether_server::Config,
) -> Result<(&'static str, Option<CertFiles>), String> {
    Err("TLS is not built in (the tls feature of tether-node)".to_owned())
}
