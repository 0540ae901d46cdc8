//! TLS for the server (`https://`, `wss://`): a rustls configuration from
//! a certificate chain and private key in PEM, for [`crate::Config::tls`].
//! rustls with its `ring` provider; TLS 1.3 and 1.2 with rustls' safe
//! defaults, no client certificates, ALPN `http/1.1` (the server puts `h2`
//! before it at bind when [`crate::Config::http2`] is on).
//!
//! ```no_run
//! use std::path::Path;
//! use tether_server::{tls, App, Config, Handshake, Request, Route, Server};
//!
//! struct Hello;
//!
//! impl App for Hello {
//!     type Post = ();
//!     type State = ();
//!
//!     fn route(&mut self, _: &Request<'_>) -> Route {
//!         Route::Page { content_type: "text/plain", body: b"hello over TLS\n" }
//!     }
//! }
//!
//! let mut config = Config::new("127.0.0.1:8443".parse().unwrap());
//! config.tls = Some(tls::server_config_from_files(Path::new("cert.pem"), Path::new("key.pem"))?);
//! Server::bind(config, Handshake::new(), Hello)?.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// rustls itself, for a configuration of one's own.
pub use rustls;

pub(crate) mod records;

/// The most bytes a PEM file read by [`server_config_from_files`] or
/// [`ReloadableCert`] may have (1 MiB: a certificate chain is a few KiB).
/// Only regular files are read: a FIFO or a device is refused.
pub const MAX_PEM_FILE: u64 = 1 << 20;

/// A server configuration from PEM text: the certificate chain (leaf
/// first) and its private key (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
///
/// `InvalidData` when the PEM holds no certificate or no key, or rustls
/// refuses them (a key that does not match the certificate, say).
pub fn server_config_from_pem(cert_chain: &[u8], key: &[u8]) -> io::Result<Arc<rustls::ServerConfig>> {
    Ok(ReloadableCert::from_pem(cert_chain, key)?.server_config())
}

/// A server configuration from PEM files (see
/// [`server_config_from_pem`]); errors name the file.
///
/// # Errors
///
/// A file that cannot be read, is not a regular file or has more than
/// [`MAX_PEM_FILE`] bytes (`InvalidData`), or what
/// [`server_config_from_pem`] refuses.
pub fn server_config_from_files(cert_chain: &Path, key: &Path) -> io::Result<Arc<rustls::ServerConfig>> {
    Ok(ReloadableCert::from_files(cert_chain, key)?.server_config())
}

/// A certificate and key that can be replaced while the server runs
/// (`tether serve` reloads its files on SIGHUP): handshakes from then on
/// present the new certificate; connections already established keep
/// theirs, so none is dropped. A replacement that cannot be loaded leaves
/// the current one in place.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use tether_server::tls::ReloadableCert;
///
/// let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
/// let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
/// let reloadable = ReloadableCert::from_pem(cert.as_bytes(), key.as_bytes())?;
/// let mut config = tether_server::Config::new("127.0.0.1:0".parse().unwrap());
/// config.tls = Some(reloadable.server_config());
/// // Later, with a renewed certificate:
/// reloadable.replace_pem(cert.as_bytes(), key.as_bytes())?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReloadableCert {
    current: RwLock<Arc<CertifiedKey>>,
    /// Where [`ReloadableCert::reload`] reads from, if it came from files.
    files: Option<(PathBuf, PathBuf)>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ReloadableCert {
    /// From PEM text (see [`server_config_from_pem`]).
    ///
    /// # Errors
    ///
    /// `InvalidData`: no certificate, no key, or a key that does not match.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> io::Result<Arc<ReloadableCert>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = certified_key(cert_chain, key, &provider)?;
        Ok(Arc::new(ReloadableCert {
            current: RwLock::new(Arc::new(certified)),
            files: None,
            provider,
        }))
    }

    /// From PEM files, which [`ReloadableCert::reload`] reads again.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, is not a regular file or has more than
    /// [`MAX_PEM_FILE`] bytes (`InvalidData`), or what
    /// [`ReloadableCert::from_pem`] refuses; the message names the files.
    pub fn from_files(cert_chain: &Path, key: &Path) -> io::Result<Arc<ReloadableCert>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = certified_key_from_files(cert_chain, key, &provider)?;
        Ok(Arc::new(ReloadableCert {
            current: RwLock::new(Arc::new(certified)),
            files: Some((cert_chain.to_owned(), key.to_owned())),
            provider,
        }))
    }

    /// Replaces the certificate and key with these (PEM).
    ///
    /// # Errors
    ///
    /// What [`ReloadableCert::from_pem`] refuses; the current pair stays.
    pub fn replace_pem(&self, cert_chain: &[u8], key: &[u8]) -> io::Result<()> {
        let certified = certified_key(cert_chain, key, &self.provider)?;
        self.install(certified);
        Ok(())
    }

    /// Reads the files it was made from again and uses what they hold now.
    ///
    /// # Errors
    ///
    /// `Unsupported` if it was not made from files; a file that cannot be
    /// read or is refused (as by [`ReloadableCert::from_files`]). The
    /// current pair stays in either case.
    pub fn reload(&self) -> io::Result<()> {
        let Some((cert_chain, key)) = &self.files else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "not made from files"));
        };
        let certified = certified_key_from_files(cert_chain, key, &self.provider)?;
        self.install(certified);
        Ok(())
    }

    /// A server configuration that presents whatever pair is current at
    /// each handshake: TLS 1.3 and 1.2 with rustls' safe defaults, no
    /// client certificates, ALPN `http/1.1` (the server puts `h2` before
    /// it at bind when [`crate::Config::http2`] is on).
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let builder = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions();
        // The ring provider supports the default versions: this cannot
        // fail; if it ever did, a configuration without protocol versions
        // would refuse every handshake rather than serve insecurely.
        let mut config = match builder {
            Ok(builder) => builder.with_no_client_auth().with_cert_resolver(self.clone()),
            Err(_) => rustls::ServerConfig::builder_with_provider(self.provider.clone())
                .with_protocol_versions(&[])
                .map(|b| b.with_no_client_auth().with_cert_resolver(self.clone()))
                .unwrap_or_else(|_| {
                    rustls::ServerConfig::builder()
                        .with_no_client_auth()
                        .with_cert_resolver(self.clone())
                }),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    fn install(&self, certified: CertifiedKey) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(certified);
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn certified_key(
    cert_chain: &[u8],
    key: &[u8],
    provider: &rustls::crypto::CryptoProvider,
) -> io::Result<CertifiedKey> {
    let certs = CertificateDer::pem_slice_iter(cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("the certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(invalid("no certificate in the certificate PEM".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(format!("the private key: {e}")))?;
    CertifiedKey::from_der(certs, key, provider).map_err(|e| invalid(e.to_string()))
}

fn certified_key_from_files(
    cert_chain: &Path,
    key: &Path,
    provider: &rustls::crypto::CryptoProvider,
) -> io::Result<CertifiedKey> {
    certified_key(
        &read_pem_file(cert_chain, MAX_PEM_FILE)?,
        &read_pem_file(key, MAX_PEM_FILE)?,
        provider,
    )
    .map_err(|e| invalid(format!("{} and {}: {e}", cert_chain.display(), key.display())))
}

/// The contents of the regular file at `path`, of at most `limit` bytes;
/// errors name the file (and the bound, for one too large).
fn read_pem_file(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    // Looked at before it is opened (opening a FIFO would wait for a
    // writer), and again once opened, in case the name changed hands.
    let not_regular = || invalid(format!("{}: not a regular file", path.display()));
    if !std::fs::metadata(path).map_err(named)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(named)?;
    let opened = file.metadata().map_err(named)?;
    if !opened.is_file() {
        return Err(not_regular());
    }
    let too_large = || {
        invalid(format!(
            "{}: larger than {limit} bytes, the most a PEM file may have",
            path.display()
        ))
    };
    if opened.len() > limit {
        return Err(too_large());
    }
    // The length said may be stale: the read itself is bounded too.
    let mut contents = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(named)?;
    if u64::try_from(contents.len()).unwrap_or(u64::MAX) > limit {
        return Err(too_large());
    }
    Ok(contents)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
