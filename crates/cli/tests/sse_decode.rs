//! The `tether sse-decode` command line: options, exit status and output
//! that does not depend on how input is chunked.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn tether(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tether");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // A failed write just means tether exited early, which the caller checks.
    let writer = std::thread::spawn(move || pipe.write_all(&input).ok());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).unwrap()
}

#[test]
fn prints_events_and_retry_as_json_lines() {
    let out = tether(
        &["sse-decode"],
        b"retry: 50\n: hi\nid: 1\nevent: e\ndata: a\ndata: b\n\ndata: unterminated",
    );
    assert!(out.status.success());
    assert_eq!(
        stdout(&out),
        "{\"retry\":50}\n{\"type\":\"e\",\"data\":\"a\\nb\",\"last_event_id\":\"1\"}\n"
    );
}

#[test]
fn output_does_not_depend_on_the_chunk_size() {
    // Every rule in a few hundred bytes, repeated so that chunk boundaries
    // land everywhere.
    let unit: &[u8] = b"\xEF\xBB\xBFid: 7\r\nevent: \xC3\xA9\r\ndata: caf\xC3\xA9\rdata\n\n\
        : c\nretry: 0012\ndata:  x\xFF\r\n\r\nid\nData: no\ndata: a:b\n\n";
    let stream = unit.repeat(50);
    let whole = tether(&["sse-decode"], &stream);
    assert!(whole.status.success());
    // Three events and a retry per unit (in the repeats the BOM is data,
    // which turns `id: 7` into an unknown field).
    assert_eq!(stdout(&whole).lines().count(), 50 * 4);
    for chunk in ["1", "2", "3", "5", "7", "64", "1000"] {
        let out = tether(&["sse-decode", "--chunk", chunk], &stream);
        assert!(out.status.success());
        assert_eq!(stdout(&out), stdout(&whole), "--chunk {chunk}");
    }
}

#[test]
fn limit_errors_are_printed_in_place_and_set_the_exit_status() {
    let out = tether(
        &["sse-decode", "--max-event-size", "8", "--max-line-len", "6"],
        b"data: 0123456789\n\nid: 1234\n\ndata: ok\n\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "{\"error\":\"event data larger than 8 bytes\"}\n\
         {\"error\":\"event stream line longer than 6 bytes\"}\n\
         {\"type\":\"message\",\"data\":\"ok\",\"last_event_id\":\"\"}\n"
    );
}

#[test]
fn a_zero_chunk_size_is_rejected() {
    let out = tether(&["sse-decode", "--chunk", "0"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--chunk"));
}

#[test]
fn the_subcommand_is_listed_in_help() {
    let out = tether(&["--help"], b"");
    assert!(out.status.success());
    assert!(stdout(&out).contains("sse-decode"));
}
