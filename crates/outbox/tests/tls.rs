//! TLS to the database (`?sslmode=require`): the server's certificate
//! verified against the configuration's CA file, the connection
//! encrypted; a certificate the consumer does not trust is refused and
//! reported, and nothing is published.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tether_outbox::{Consumer, Health, OutboxConfig, OutboxEvent, Outcome, TableName};
use tether_testkit::postgres::Postgres;

const PATIENCE: Duration = Duration::from_secs(20);

fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tls_with_the_servers_certificate_verified() {
    let made = tether_testkit::tls::self_signed(b"postgresql");
    let Some(pg) = Postgres::start_tls(&made.cert_pem, &made.key_pem) else {
        return;
    };
    pg.psql(&TableName::default().schema());
    let ca = std::env::temp_dir().join(format!("tether-outbox-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, &made.cert_pem).unwrap();
    // The certificate names localhost; the server listens on 127.0.0.1.
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=require&hostaddr=127.0.0.1",
        pg.port
    );

    // Not trusted: refused, said, nothing published.
    let published = Arc::new(Mutex::new(Vec::new()));
    let recorded = published.clone();
    let record = move |event: &OutboxEvent| {
        recorded.lock().unwrap().push(event.data.clone());
        Outcome::Published
    };
    let untrusted = Consumer::start(OutboxConfig::new(url.clone()), record.clone()).unwrap();
    let watch = untrusted.watch();
    let deadline = Instant::now() + PATIENCE;
    while !matches!(watch.health(), Health::Failing { ref error, .. } if error.contains("certificate")) {
        assert!(
            Instant::now() < deadline,
            "the certificate refused: {:?}",
            watch.health()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    untrusted.stop();

    let mut config = OutboxConfig::new(url);
    config.ca_file = Some(ca.clone());
    let consumer = Consumer::start(config, record).unwrap();
    let watch = consumer.watch();
    wait_until("connected", || watch.health() == Health::Active);
    assert_eq!(
        pg.psql(
            "SELECT ssl FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE application_name = 'tether-outbox'"
        ),
        "t\n"
    );
    pg.psql("INSERT INTO tether_outbox (topic, data) VALUES ('t', 'over TLS')");
    wait_until("published", || published.lock().unwrap().len() == 1);
    assert_eq!(published.lock().unwrap()[0], "over TLS");
    consumer.stop();
    let _ = std::fs::remove_file(&ca);

    // A CA file that holds no certificate is refused at start.
    let mut bad = OutboxConfig::new("postgres://postgres@localhost/postgres");
    bad.ca_file = Some(std::env::temp_dir().join("tether-outbox-no-such-ca.pem"));
    assert!(Consumer::start(bad, |_: &OutboxEvent| Outcome::Published).is_err());
}
