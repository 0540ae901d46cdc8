//! Certificates for Redis over TLS, made by the test (rcgen): a CA, the
//! server and client certificates it signs, and what a test needs to be
//! refused (another CA, another name, an expired certificate), as PEM
//! files in a directory of the test's own.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A CA and the certificates it signs, written under `dir`.
pub struct Pki {
    dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
    name: String,
}

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// A new CA named `name`, its certificate in `DIR/NAME-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        std::fs::create_dir_all(dir).expect("a directory for the certificates");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, format!("tether test CA {name}"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Pki {
            dir: dir.to_owned(),
            ca,
            name: name.to_owned(),
        };
        std::fs::write(pki.ca(), pki.ca.pem()).unwrap();
        pki
    }

    /// The CA's certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// A certificate signed by this CA for `names` (DNS names or IP
    /// addresses), expired if `expired`, as `DIR/NAME-FILE.pem` and
    /// `DIR/NAME-FILE.key`.
    pub fn issue(&self, file: &str, names: &[&str], expired: bool) -> CertFiles {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        if expired {
            params.not_before = rcgen::date_time_ymd(2001, 1, 1);
            params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let files = CertFiles {
            cert: self.dir.join(format!("{}-{file}.pem", self.name)),
            key: self.dir.join(format!("{}-{file}.key", self.name)),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self) -> CertFiles {
        self.issue("server", &["localhost", "127.0.0.1"], false)
    }
}

/// How a `redis-server` serves TLS: its certificate, the CA it checks
/// client certificates against, and whether it asks for one.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert: CertFiles,
    pub ca: PathBuf,
    /// `--tls-auth-clients yes`: a client without a certificate of the
    /// CA is refused.
    pub auth_clients: bool,
}

impl ServerTls {
    /// The options that make a `redis-server` serve TLS alone, on `port`.
    pub fn args(&self, port: u16) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path(&self.cert.cert),
            "--tls-key-file".into(),
            path(&self.cert.key),
            "--tls-ca-cert-file".into(),
            path(&self.ca),
            "--tls-auth-clients".into(),
            if self.auth_clients { "yes" } else { "no" }.into(),
        ]
    }

    /// What the test's own client of such a server uses: the CA, and the
    /// server's certificate as its client certificate (the CA signed it).
    pub fn client_certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: std::fs::read(&self.cert.cert).unwrap(),
                client_key: std::fs::read(&self.cert.key).unwrap(),
            }),
            root_cert: Some(std::fs::read(&self.ca).unwrap()),
        }
    }
}
