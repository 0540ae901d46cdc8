//! The consumer reaching its broker over TLS: tansu (which speaks no
//! TLS) behind a TLS terminator of the test's own (rustls, a certificate
//! for `localhost` from rcgen), tansu telling clients the terminator's
//! address. The fetch client and the group's coordinator connection both
//! go through it: the records arrive and their offsets are committed.
//! A consumer that does not trust the certificate fails, and says why.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tether_ingest::{Event, Outcome};
use tether_kafka::{Consumer, Health, KafkaConfig};
use tether_testkit::kafka::Kafka;

use support::Producer;

const PATIENCE: Duration = Duration::from_secs(30);

/// A TLS terminator on a loopback port in front of a broker, on a
/// runtime thread of its own; stopped when dropped.
struct Terminator {
    runtime: Option<tokio::runtime::Runtime>,
    port: u16,
    ca: PathBuf,
    client: Arc<rustls::ClientConfig>,
    server: Arc<rustls::ServerConfig>,
}

impl Terminator {
    fn bind() -> (Terminator, std::net::TcpListener) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ca = std::env::temp_dir().join(format!("tether-kafka-tls-{}-{port}.pem", std::process::id()));
        std::fs::write(&ca, made.cert.pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(made.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let key = rustls::pki_types::PrivateKeyDer::try_from(made.signing_key.serialize_der()).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![made.cert.der().clone()], key)
            .unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let terminator = Terminator {
            runtime: Some(runtime),
            port,
            ca,
            client: Arc::new(client),
            server: Arc::new(server),
        };
        (terminator, listener)
    }

    /// Serves `listener`, each connection's bytes passed to `backend`.
    fn serve(&self, listener: std::net::TcpListener, backend: String) {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.server.clone());
        let runtime = self.runtime.as_ref().unwrap();
        runtime.spawn(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
    }

    fn addr(&self) -> String {
        format!("localhost:{}", self.port)
    }
}

impl Drop for Terminator {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        let _ = std::fs::remove_file(&self.ca);
    }
}

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config(terminator: &Terminator, topic: &str) -> KafkaConfig {
    let mut config = KafkaConfig::new(vec![terminator.addr()], vec![topic.to_owned()]);
    config.group = format!("{topic}-group");
    config.fetch_wait = Duration::from_millis(100);
    config.session_timeout = Duration::from_secs(2);
    config.heartbeat_interval = Duration::from_millis(200);
    config.tls = true;
    config
}

#[test]
fn records_come_over_tls_and_an_unknown_certificate_is_refused() {
    let (terminator, listener) = Terminator::bind();
    let Some(kafka) = Kafka::start_advertising(&terminator.addr()) else {
        return;
    };
    terminator.serve(listener, kafka.addr().to_owned());
    let producer = Producer::connect_with(&terminator.addr(), Some(terminator.client.clone()));
    let topic = kafka.unique("tls");
    producer.create_topic(&topic, 1);
    producer.produce_text(&topic, 0, &["over", "tls"]);

    // Not trusting the terminator's certificate (the system's roots
    // alone): failing, with the reason.
    let untrusting =
        Consumer::start(config(&terminator, &topic), |_: &Event<'_>| Outcome::Published).unwrap();
    let watch = untrusting.watch();
    wait_until("failing", || matches!(watch.health(), Health::Failing { .. }));
    let said = watch.health().describe();
    assert!(said.to_lowercase().contains("certificate"), "{said}");
    untrusting.stop();

    let mut trusting = config(&terminator, &topic);
    trusting.ca_file = Some(terminator.ca.clone());
    let (tx, rx) = mpsc::channel();
    let consumer = Consumer::start(trusting, move |event: &Event<'_>| {
        let _ = tx.send(event.data.to_owned());
        Outcome::Published
    })
    .unwrap();
    let data: Vec<String> = (0..2).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    assert_eq!(data, ["over", "tls"]);
    let watch = consumer.watch();
    wait_until("committed through the coordinator over TLS", || {
        watch.stats().commits >= 1
    });
    consumer.stop();
}

#[test]
fn a_ca_file_without_tls_is_refused_before_connecting() {
    let mut config = KafkaConfig::new(vec!["localhost:9093".to_owned()], vec!["orders".to_owned()]);
    config.ca_file = Some(PathBuf::from("ca.pem"));
    let error = Consumer::start(config.clone(), |_: &Event<'_>| Outcome::Published).unwrap_err();
    assert!(error.to_string().contains("TLS"), "{error}");
    config.tls = true;
    config.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
    let error = Consumer::start(config, |_: &Event<'_>| Outcome::Published).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
}
