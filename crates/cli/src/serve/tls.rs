//! The TLS options of `tether serve`: https:// and wss://.

#![cfg(feature = "tls")]

use std::net::SocketAddr;

use tether_node::{NodeError, Tls, TlsCert};

/// TLS: the certificate and key that make the port serve https:// and
/// wss:// instead of http:// and ws://.
#[cfg(feature = "tls")]
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "TLS (https:// and wss://)")]
pub(crate) struct TlsArgs {
    /// Serve TLS with this certificate chain (PEM, the server's
    /// certificate first); needs --tls-key. SIGHUP reads both files again
    /// (a renewed certificate) without dropping a connection.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<std::path::PathBuf>,
    /// Serve TLS with a certificate for localhost and 127.0.0.1 made at
    /// start (for local use: clients must be told to trust it, e.g.
    /// `curl -k`; its SHA-256 fingerprint is printed).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub(crate) tls_self_signed: bool,
    /// Serve TLS on this address (e.g. 0.0.0.0:8443; port 0 picks one)
    /// and plain HTTP on --addr/--port, side by side on every event loop.
    /// Without it, --port serves TLS alone. Needs a certificate
    /// (--tls-cert and --tls-key, or --tls-self-signed).
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) tls_listen: Option<SocketAddr>,
}

#[cfg(feature = "tls")]
pub(crate) const TLS_LISTEN_NEEDS_CERTIFICATE: &str =
    "--tls-listen needs a certificate (--tls-cert and --tls-key, or --tls-self-signed)";

/// Why `--http3 on` is refused without a certificate.
#[cfg(feature = "tls")]
pub(crate) const HTTP3_NEEDS_CERTIFICATE: &str =
    "--http3 on needs TLS: QUIC carries TLS 1.3 (--tls-cert and --tls-key, or --tls-self-signed)";

impl TlsArgs {
    /// The TLS the options ask for, if any.
    pub(crate) fn tls(&self) -> Result<Option<Tls>, NodeError> {
        let cert = match (&self.tls_cert, &self.tls_key) {
            _ if self.tls_self_signed => TlsCert::SelfSigned,
            (Some(cert), Some(key)) => TlsCert::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            _ if self.tls_listen.is_some() => {
                return Err(NodeError::Tls(TLS_LISTEN_NEEDS_CERTIFICATE.into()));
            }
            _ => return Ok(None),
        };
        Ok(Some(Tls {
            cert,
            listen: self.tls_listen,
        }))
    }

    /// What a start would check of `--tls-cert` and `--tls-key`: both
    /// read, parse, and the key is the certificate's.
    pub(crate) fn check_files(&self) -> Result<(), String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => tether_node::check_tls_files(cert, key),
            _ => Ok(()),
        }
    }
}
