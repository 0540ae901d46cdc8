//! Pipelined requests whose answers come later (publishes wait for their
//! topic's sequencer, long polls for an event): however many a client
//! sends on one connection, each is answered in order. While one waits, the
//! server stops reading the socket (TCP backpressure) instead of buffering
//! what follows, so no pipeline is refused for its length.

mod common;

use std::io::Write;
use std::thread;

use common::{HttpConn, TestServer, config};
use serde_json::Value;
use tether_server::apps::{HubApp, HubSettings};

const TOKEN: &str = "pipeline-token";

fn hub() -> TestServer {
    let mut settings = HubSettings::default();
    settings.publish_token = Some(TOKEN.to_owned());
    TestServer::start(config(), HubApp::new(settings))
}

fn publish_request(n: usize) -> Vec<u8> {
    // 1 KiB of data, numbered so the answers can be matched.
    let body = format!("{n:>1024}");
    format!(
        "POST /topics/piped HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn three_thousand_pipelined_publishes_are_all_answered_in_order() {
    const PUBLISHES: usize = 3000;
    let server = hub();
    let mut conn = HttpConn::connect(server.addr);
    // Far more than one request's head and body limits (3 MiB): the
    // writer blocks while the server holds back, so it runs beside the
    // reader.
    let mut writer = conn.stream.try_clone().expect("clone the socket");
    let sending = thread::spawn(move || {
        let pipeline: Vec<u8> = (0..PUBLISHES).flat_map(publish_request).collect();
        writer
            .write_all(&pipeline)
            .expect("the server takes the whole pipeline");
    });
    let mut last = (0u64, 0u64);
    for n in 0..PUBLISHES {
        let response = conn.response();
        assert_eq!(
            response.status,
            200,
            "publish {n}: {:?}",
            String::from_utf8_lossy(&response.body)
        );
        assert!(!response.closes(), "publish {n} closed the connection");
        let json: Value = serde_json::from_slice(&response.body).expect("JSON");
        let id = json["id"].as_str().expect("an id");
        let (ms, seq) = id.split_once('-').expect("ms-seq");
        let id = (ms.parse().expect("ms"), seq.parse().expect("seq"));
        assert!(id > last, "ids in publish order: {id:?} after {last:?}");
        last = id;
    }
    sending.join().expect("the writer");
    drop(conn);
    server.shutdown();
}
