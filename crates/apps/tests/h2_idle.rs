//! An HTTP/2 connection that falls idle: the server sends GOAWAY at the
//! keep-alive timeout and closes, and its loop goes on serving everyone
//! else. (It once found the same past deadline again and again: the loop
//! spun on that one connection's timer, its output growing GOAWAY by
//! GOAWAY, and served no one.)

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use tether_testkit as common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{HttpConn, TestServer, config, tcp};
use tether_apps::Demo;

/// The frames in `bytes` as (type, flags, stream, payload length).
fn frames(mut bytes: &[u8]) -> Vec<(u8, u8, u32, usize)> {
    let mut frames = Vec::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let stream = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
        frames.push((bytes[3], bytes[4], stream, len));
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    frames
}

#[test]
fn an_idle_h2_connection_gets_one_goaway_and_the_loop_goes_on() {
    let mut config = config();
    config.keep_alive_timeout = Duration::from_millis(300);
    let server = TestServer::start(config, Demo::new());
    for reading in [true, false] {
        let mut idle = tcp(server.addr);
        // The preface and an empty SETTINGS frame, then nothing.
        idle.write_all(tether_h2::frame::PREFACE).unwrap();
        idle.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
        if !reading {
            // Past the keep-alive timeout before reading a byte.
            std::thread::sleep(Duration::from_millis(800));
        }
        // Nothing else ends this connection: an end read within the read
        // timeout is the keep-alive timeout's, and its one GOAWAY below.
        idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match idle.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "reading {reading}: no end within 5 s ({e}); got {:?}",
                    frames(&got)
                ),
            }
        }
        let goaways = frames(&got).iter().filter(|f| f.0 == 7).count();
        assert_eq!(goaways, 1, "reading {reading}: {:?}", frames(&got));
        // The loop serves others.
        let mut http = HttpConn::connect(server.addr);
        http.request("GET", "/healthz", "");
        assert_eq!(http.response().status, 200);
    }
    server.shutdown();
}
