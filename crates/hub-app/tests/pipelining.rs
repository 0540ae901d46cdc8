//! Pipelined requests whose answers come later (publishes wait for their
//! topic's sequencer, long polls for an event): however many a client
//! sends on one connection, each is answered in order. While one waits, the
//! server stops reading the socket (TCP backpressure) instead of buffering
//! what follows, so no pipeline is refused for its length.

use tether_testkit as common;

use std::io::Write;
use std::thread;

use common::{HttpConn, TestServer, config};
use serde_json::Value;
use tether_hub_app::{HubApp, HubSettings};

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

#[test]
fn a_pipeline_whose_answers_are_never_read_keeps_the_server_bounded() {
    let mut config = config();
    config.max_output = 256 * 1024;
    let server = TestServer::start(config, HubApp::new(HubSettings::default()));
    let mut conn = HttpConn::connect(server.addr);
    conn.stream
        .set_write_timeout(Some(std::time::Duration::from_millis(500)))
        .expect("write timeout");
    let request = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";
    let batch: Vec<u8> = request.repeat(1000);
    // Write until the server stops taking requests: the socket buffers fill
    // because it stopped reading, not because it queued every answer.
    let mut sent = 0usize;
    let mut blocked = false;
    for _ in 0..10_000 {
        // From where the last write stopped: the stream is the request
        // repeated, whatever the writes' sizes.
        match conn.stream.write(&batch[sent % batch.len()..]) {
            Ok(n) => sent += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                blocked = true;
                break;
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(
        blocked,
        "the server took {sent} bytes of requests without their answers being read"
    );
    // What it read is bounded: far less than what was sent (the rest waits
    // in the sockets), whatever the pipeline's length.
    let read_by_server = server.stats().bytes_in;
    assert!(
        read_by_server < 16 << 20,
        "the server read {read_by_server} bytes of a pipeline nobody reads"
    );
    // Once the client reads, every request it got through is answered.
    let requests = sent / request.len();
    let reader = std::thread::spawn(move || {
        for n in 0..requests {
            assert_eq!(conn.response().status, 200, "request {n}");
        }
    });
    reader.join().expect("every answer");
    server.shutdown();
}
