//! A local identity provider for the tests: a key set (and an OpenID
//! configuration) served over HTTPS with a test CA, or over plain HTTP on
//! loopback; the set can be rotated, made to fail, and its fetches are
//! counted.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An Ed25519 signing key and its `kid`.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pair: rcgen::KeyPair,
}

impl SigningKey {
    pub(crate) fn new(kid: &str) -> SigningKey {
        SigningKey {
            kid: kid.to_owned(),
            pair: rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key"),
        }
    }

    /// Its public key as a JWK.
    pub(crate) fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.pair.public_key_raw()),
        })
    }

    /// A token signed with it, whose header names `kid`.
    pub(crate) fn sign(&self, kid: &str, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        let key =
            jsonwebtoken::EncodingKey::from_ed_pem(self.pair.serialize_pem().as_bytes()).expect("a PEM key");
        jsonwebtoken::encode(&header, claims, &key).expect("a token")
    }
}

/// A key set of these keys.
pub(crate) fn jwks(keys: &[&SigningKey]) -> String {
    serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }).to_string()
}

struct State {
    jwks: String,
    cache_control: String,
    fail: bool,
    /// What its OpenID configuration names as the issuer.
    issuer: String,
    /// Its own URL.
    base: String,
}

/// The provider, serving until the test ends.
pub(crate) struct Provider {
    /// `https://localhost:PORT` or `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// The test CA's certificate (PEM), with TLS.
    pub(crate) ca_pem: Option<String>,
    state: Arc<Mutex<State>>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    /// Serves `jwks` at `/jwks` with `Cache-Control: cache_control`, over
    /// TLS if `tls`.
    pub(crate) fn start(tls: bool, jwks: String, cache_control: &str) -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("an address").port();
        let (base, ca_pem, config) = if tls {
            let (ca, config) = tls_config();
            (format!("https://localhost:{port}"), Some(ca), Some(config))
        } else {
            (format!("http://127.0.0.1:{port}"), None, None)
        };
        let state = Arc::new(Mutex::new(State {
            jwks,
            cache_control: cache_control.to_owned(),
            fail: false,
            issuer: base.clone(),
            base: base.clone(),
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (s, f) = (state.clone(), fetches.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                match &config {
                    Some(config) => {
                        let conn = rustls::ServerConnection::new(config.clone()).expect("a TLS session");
                        serve(rustls::StreamOwned::new(conn, stream), &s, &f);
                    }
                    None => serve(stream, &s, &f),
                }
            }
        });
        Provider {
            base,
            ca_pem,
            state,
            fetches,
        }
    }

    /// The key set's URL.
    pub(crate) fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base)
    }

    /// Serves another key set from now on.
    pub(crate) fn rotate(&self, jwks: String) {
        self.state.lock().unwrap().jwks = jwks;
    }

    /// Answers 500 to every request from now on (or no longer).
    pub(crate) fn fail(&self, fail: bool) {
        self.state.lock().unwrap().fail = fail;
    }

    /// The issuer its OpenID configuration names.
    pub(crate) fn name_issuer(&self, issuer: &str) {
        self.state.lock().unwrap().issuer = issuer.to_owned();
    }

    /// How many requests for the key set it has had.
    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn serve<S: std::io::Read + Write>(mut stream: S, state: &Mutex<State>, fetches: &AtomicUsize) {
    let target;
    {
        let mut reader = BufReader::new(&mut stream);
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        target = line.split(' ').nth(1).unwrap_or_default().to_owned();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
    }
    let state = state.lock().unwrap();
    let (status, body, cache) = match target.as_str() {
        _ if state.fail => {
            if target == "/jwks" {
                fetches.fetch_add(1, Ordering::SeqCst);
            }
            ("500 Internal Server Error", String::new(), String::new())
        }
        "/jwks" => {
            fetches.fetch_add(1, Ordering::SeqCst);
            ("200 OK", state.jwks.clone(), state.cache_control.clone())
        }
        "/.well-known/openid-configuration" => (
            "200 OK",
            serde_json::json!({
                "issuer": state.issuer,
                "jwks_uri": format!("{}/jwks", state.base),
            })
            .to_string(),
            String::new(),
        ),
        _ => ("404 Not Found", String::new(), String::new()),
    };
    drop(state);
    let cache = if cache.is_empty() {
        String::new()
    } else {
        format!("Cache-Control: {cache}\r\n")
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{cache}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

/// A test CA, and a server configuration with a certificate for
/// `localhost` that it signed.
fn tls_config() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(params, ca_key).expect("a CA");
    let leaf_key = rcgen::KeyPair::generate().expect("a key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("parameters")
        .signed_by(&leaf_key, &ca)
        .expect("a certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("a private key"),
        )
        .expect("a server configuration");
    (ca.pem(), Arc::new(config))
}
