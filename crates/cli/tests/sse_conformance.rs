//! Runs `tether sse-decode` over every vector of the SSE conformance corpus
//! (`conformance/sse/vectors`: NAME.stream in, NAME.jsonl expected) at
//! several chunk sizes, and compares the JSON Lines it prints.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/sse/vectors")
}

fn json_lines(text: &str) -> Vec<Value> {
    // Only LF separates records: U+2028 and friends are data.
    text.split('\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect()
}

fn decode(stream: &[u8], chunk: usize) -> (Vec<Value>, i32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tether"))
        .args(["sse-decode", "--chunk", &chunk.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tether");
    let mut stdin = child.stdin.take().unwrap();
    let input = stream.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stdout = String::from_utf8(output.stdout).expect("output is UTF-8");
    (json_lines(&stdout), output.status.code().unwrap_or(-1))
}

#[test]
fn every_vector_decodes_as_expected_at_every_chunk_size() {
    let mut names: Vec<String> = fs::read_dir(corpus())
        .expect("conformance/sse/vectors exists")
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let streams: Vec<&str> = names.iter().filter_map(|n| n.strip_suffix(".stream")).collect();
    let expectations: Vec<&str> = names.iter().filter_map(|n| n.strip_suffix(".jsonl")).collect();
    assert_eq!(streams, expectations, "every .stream needs a .jsonl and back");
    assert_eq!(names.len(), streams.len() * 2, "only vector files in the corpus");
    assert!(
        streams.len() >= 80,
        "corpus went missing: {} vectors",
        streams.len()
    );

    let mut failures = Vec::new();
    for name in &streams {
        let stream = fs::read(corpus().join(format!("{name}.stream"))).unwrap();
        let expected = json_lines(&fs::read_to_string(corpus().join(format!("{name}.jsonl"))).unwrap());
        for chunk in [1, 2, 3, 7, stream.len().max(1)] {
            let (got, status) = decode(&stream, chunk);
            if got != expected || status != 0 {
                failures.push(format!(
                    "{name} (chunk {chunk}, exit {status}):\n  got      {got:?}\n  expected {expected:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
