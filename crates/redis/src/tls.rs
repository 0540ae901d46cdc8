//! Redis over TLS (`rediss://`, `rediss+cluster://`): the files that
//! say whom to trust and who this node is, read and checked once when the
//! bridge is made, and the words that say why a connection failed.
//!
//! The server's certificate is verified by rustls against the system's
//! roots, or the CA file's certificates alone, and must name the URL's
//! host (a DNS name, or an IP address in its IP SANs). There is no
//! switch that verifies less: a test or a private Redis gives its CA.

use std::path::Path;

use redis::{ClientTlsConfig, TlsCertificates};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::RedisConfig;

/// The TLS settings of a bridge, its files read and checked.
pub(crate) struct TlsFiles {
    /// The certificates as the `redis` crate takes them (PEM).
    pub(crate) certificates: TlsCertificates,
}

/// Whether `url` asks for TLS (`rediss://`, `rediss+cluster://` or
/// `rediss+sentinel://`).
pub(crate) fn is_tls(url: &str) -> bool {
    ["rediss://", "rediss+cluster://", "rediss+sentinel://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

impl TlsFiles {
    /// The TLS files `config` names, read and checked: `Ok(None)` for a
    /// URL without TLS that names none (TLS to the sentinels alone, on a
    /// `redis+sentinel://` URL, is TLS too). The reason when they cannot be
    /// used names the file and what is wrong, never what it holds.
    pub(crate) fn load(config: &RedisConfig) -> Result<Option<TlsFiles>, String> {
        let named = config.tls_ca.is_some() || config.tls_cert.is_some() || config.tls_key.is_some();
        // A malformed Sentinel URL is left for the URL's own check to say.
        if config.sentinel_tls && matches!(crate::sentinel::parse_url(&config.url), Ok(None)) {
            return Err("TLS to the sentinels is asked for a URL without Sentinel: \
                 use redis+sentinel:// (or rediss+sentinel://)"
                .to_owned());
        }
        if !is_tls(&config.url) && !config.sentinel_tls {
            if named {
                return Err("a CA, client certificate or key is given for a URL without TLS: \
                     use rediss:// (or rediss+cluster://, rediss+sentinel://)"
                    .to_owned());
            }
            return Ok(None);
        }
        // The `redis` crate builds its rustls configuration with the
        // process's default provider, which rustls picks by itself only
        // when one provider alone is built in: in a program that builds
        // two (an embedder's other dependencies), the first connection
        // would panic. Ring, as everywhere in tether, unless the program
        // chose one (then this does nothing).
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        // The `redis` crate reads `#insecure` as "verify nothing", which
        // this build cannot do (and says so only at each connection).
        if config.url.contains('#') {
            return Err(
                "a rediss:// URL may not carry a #fragment (there is no insecure mode: \
                 give the server's CA file instead)"
                    .to_owned(),
            );
        }
        let root_cert = match &config.tls_ca {
            Some(path) => Some(read_ca(path)?),
            None => None,
        };
        let client_tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(read_client(cert, key)?),
            (None, None) => None,
            (Some(_), None) => return Err("a client certificate needs its key".to_owned()),
            (None, Some(_)) => return Err("a client key needs its certificate".to_owned()),
        };
        Ok(Some(TlsFiles {
            certificates: TlsCertificates {
                client_tls,
                root_cert,
            },
        }))
    }
}

/// Reads `path` whole.
fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

/// The certificates of `pem`, at least one.
fn certificates(pem: &[u8], path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the {what} {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("the {what} {} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// The CA file: PEM with at least one certificate, each a trust anchor
/// rustls can use.
fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
    let pem = read(path, "CA file")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(&pem, path, "CA file")? {
        roots.add(cert).map_err(|e| {
            format!(
                "the CA file {} holds a certificate that cannot be a root: {e}",
                path.display()
            )
        })?;
    }
    Ok(pem)
}

/// The client's certificate chain and key, checked to belong together
/// (a mismatch would otherwise show only as a refused handshake).
fn read_client(cert_path: &Path, key_path: &Path) -> Result<ClientTlsConfig, String> {
    let cert_pem = read(cert_path, "client certificate")?;
    let key_pem = read(key_path, "client key")?;
    let chain = certificates(&cert_pem, cert_path, "client certificate")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "the client key {} is not a PEM private key: {e}",
            key_path.display()
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        format!(
            "the client key {} does not go with the certificate {}: {e}",
            key_path.display(),
            cert_path.display()
        )
    })?;
    Ok(ClientTlsConfig {
        client_cert: cert_pem,
        client_key: key_pem,
    })
}

/// Whom a failed connection was to, for the words of [`explain_to`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Peer {
    /// A Redis server: the URL's, a cluster's node, a Sentinel's master.
    Server,
    /// A sentinel asked for the master's address.
    Sentinel,
}

impl Peer {
    /// What it is called in the hints.
    fn noun(self) -> &'static str {
        match self {
            Peer::Server => "server",
            Peer::Sentinel => "sentinel",
        }
    }

    /// How TLS is asked for towards it: the fix when it wants TLS and was
    /// spoken to in plain TCP.
    fn asking_tls(self) -> &'static str {
        match self {
            Peer::Server => "use rediss://",
            Peer::Sentinel => "give --redis-sentinel-tls",
        }
    }

    /// What a peer that does not speak TLS most likely is.
    fn without_tls(self) -> &'static str {
        match self {
            Peer::Server => "a redis:// server",
            Peer::Sentinel => "a sentinel without tls-port",
        }
    }
}

/// [`explain_to`] for a Redis server.
pub(crate) fn explain(e: &redis::RedisError, tls: bool) -> String {
    explain_to(e, tls, Peer::Server)
}

/// `e`, a failed connection attempt to `peer`, with what it most likely
/// means when the `redis` crate's words alone would leave an operator
/// guessing: the certificate checks, and TLS on one side only. `tls`:
/// the connection was over TLS.
pub(crate) fn explain_to(e: &redis::RedisError, tls: bool, peer: Peer) -> String {
    let text = e.to_string();
    let who = peer.noun();
    let hint = if tls {
        if text.contains("UnknownIssuer") {
            Some(format!(
                "TLS: the {who}'s certificate is not signed by a CA this node trusts (the system's roots, or --redis-ca)"
            ))
        } else if text.contains("not valid for name") || text.contains("NotValidForName") {
            let named = match peer {
                Peer::Server => "the URL's host",
                Peer::Sentinel => "its address as the URL gives it",
            };
            Some(format!("TLS: the {who}'s certificate does not name {named}"))
        } else if text.contains("expired") || text.contains("Expired") || text.contains("NotValidYet") {
            Some(format!(
                "TLS: the {who}'s certificate is outside its validity period"
            ))
        } else if [
            "CertificateRequired",
            "BadCertificate",
            "UnknownCA",
            "AccessDenied",
        ]
        .iter()
        .any(|alert| text.contains(alert))
        {
            Some(format!(
                "TLS: the {who} refused this node's client certificate, or wants one (--redis-cert, --redis-key)"
            ))
        } else if text.contains("corrupt message") || text.contains("InvalidContentType") {
            Some(format!(
                "TLS: the {who} does not speak TLS on this port ({}?)",
                peer.without_tls()
            ))
        } else if e.is_timeout() {
            Some(format!(
                "TLS: no answer to the handshake in time: does the {who} speak TLS on this port? ({} stays silent)",
                peer.without_tls()
            ))
        } else if text.contains("peer certificate") {
            Some(format!("TLS: the {who}'s certificate was refused"))
        } else {
            None
        }
    } else if matches!(e.kind(), redis::ErrorKind::Io)
        && (text.contains("reset")
            || text.contains("closed")
            || text.contains("broken pipe")
            || text.contains("end of file"))
    {
        Some(format!(
            "the {who} closed the connection at once: if it expects TLS, {}",
            peer.asking_tls()
        ))
    } else {
        None
    };
    match hint {
        Some(hint) => format!("{hint}: {text}"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of the test's own, removed when dropped.
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!("tether-redis-tls-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn write(&self, name: &str, contents: &str) -> std::path::PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn config(url: &str, ca: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> RedisConfig {
        let mut config = RedisConfig::new(url);
        config.tls_ca = ca.map(Path::to_owned);
        config.tls_cert = cert.map(Path::to_owned);
        config.tls_key = key.map(Path::to_owned);
        config
    }

    #[test]
    fn tls_files_are_read_and_checked_when_the_bridge_is_made() {
        let dir = Dir::new("files");
        let ca = rcgen::generate_simple_self_signed(vec!["ca".to_owned()]).unwrap();
        let ca_file = dir.write("ca.pem", &ca.cert.pem());
        let client = rcgen::generate_simple_self_signed(vec!["node".to_owned()]).unwrap();
        let cert = dir.write("client.pem", &client.cert.pem());
        let key = dir.write("client.key", &client.signing_key.serialize_pem());
        let other_key = dir.write("other.key", &ca.signing_key.serialize_pem());
        let garbage = dir.write("garbage.pem", "not a certificate\n");
        let missing = dir.0.join("missing.pem");

        assert!(
            TlsFiles::load(&config("redis://h:1", None, None, None))
                .unwrap()
                .is_none()
        );
        let tls = TlsFiles::load(&config("rediss://h:1", None, None, None))
            .unwrap()
            .unwrap();
        assert!(tls.certificates.root_cert.is_none() && tls.certificates.client_tls.is_none());
        let tls = TlsFiles::load(&config(
            "rediss+cluster://h:1,h:2",
            Some(&ca_file),
            Some(&cert),
            Some(&key),
        ))
        .unwrap()
        .unwrap();
        assert!(tls.certificates.root_cert.is_some() && tls.certificates.client_tls.is_some());

        // TLS to the sentinels alone is TLS: the files are the sentinels'.
        let mut sentinels = config("redis+sentinel://h:1/m", Some(&ca_file), Some(&cert), Some(&key));
        sentinels.sentinel_tls = true;
        let tls = TlsFiles::load(&sentinels).unwrap().unwrap();
        assert!(tls.certificates.root_cert.is_some() && tls.certificates.client_tls.is_some());

        let refused = |config: RedisConfig, words: &str| {
            let why = TlsFiles::load(&config)
                .err()
                .unwrap_or_else(|| panic!("{words}: accepted"));
            assert!(why.contains(words), "{why}");
        };
        refused(config("redis://h:1", Some(&ca_file), None, None), "use rediss://");
        refused(
            config("redis+cluster://h:1", None, Some(&cert), Some(&key)),
            "use rediss://",
        );
        for url in ["redis://h:1", "rediss://h:1", "rediss+cluster://h:1"] {
            let mut alone = config(url, None, None, None);
            alone.sentinel_tls = true;
            refused(alone, "TLS to the sentinels is asked for a URL without Sentinel");
        }
        refused(
            config("rediss://h:1/#insecure", None, None, None),
            "no insecure mode",
        );
        refused(
            config("rediss://h:1", Some(&missing), None, None),
            "cannot read the CA file",
        );
        refused(
            config("rediss://h:1", Some(&garbage), None, None),
            "holds no certificate",
        );
        refused(config("rediss://h:1", None, Some(&cert), None), "needs its key");
        refused(
            config("rediss://h:1", None, None, Some(&key)),
            "needs its certificate",
        );
        refused(
            config("rediss://h:1", None, Some(&garbage), Some(&key)),
            "holds no certificate",
        );
        refused(
            config("rediss://h:1", None, Some(&cert), Some(&garbage)),
            "not a PEM private key",
        );
        refused(
            config("rediss://h:1", None, Some(&cert), Some(&other_key)),
            "does not go with the certificate",
        );
    }
}
