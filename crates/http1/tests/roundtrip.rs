//! Round trips: requests and responses written by the writers, pipelined,
//! cut at random points, read back by the decoders as they were.

// A test fails by panicking; clippy.toml exempts #[test] functions only, not a test crate's helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

mod common;

use common::{requests, responses};
use proptest::prelude::*;
use tether_http1::{ChunkedEncoder, Framing, Limits, Response, TargetForm, write_request};

#[derive(Debug, Clone)]
struct Message {
    method: &'static str,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `None`: `Content-Length`; else the sizes of the chunks to cut the
    /// body into (taken in turn, the last repeated).
    chunks: Option<Vec<usize>>,
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        "X-[A-Za-z0-9-]{1,10}",
        // No whitespace at either end: a field value's edges are not part
        // of it (RFC 9110 section 5.5).
        proptest::option::of("[!-~]([ -~]{0,18}[!-~])?"),
    )
        .prop_map(|(name, value)| (name, value.unwrap_or_default()))
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
        "(/[A-Za-z0-9._~%-]{0,8}){1,4}",
        proptest::option::of("[A-Za-z0-9=&%+/?-]{0,16}"),
        prop::collection::vec(header(), 0..6),
        prop::collection::vec(any::<u8>(), 0..300),
        proptest::option::of(prop::collection::vec(1usize..80, 1..5)),
    )
        .prop_map(|(method, path, query, headers, body, chunks)| Message {
            method,
            path,
            query,
            headers,
            body,
            chunks,
        })
}

fn write_chunks(out: &mut Vec<u8>, encoder: &mut ChunkedEncoder, body: &[u8], sizes: &[usize]) {
    let mut rest = body;
    let mut sizes = sizes.iter();
    let mut size = 1;
    while !rest.is_empty() {
        size = sizes.next().copied().unwrap_or(size);
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        encoder.chunk(out, chunk);
        rest = tail;
    }
    encoder.finish(out);
}

fn header_refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
}

/// Cuts `wire` at the given points (as fractions of its length).
fn cut<'a>(wire: &'a [u8], points: &[f64]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = points.iter().map(|p| (p * wire.len() as f64) as usize).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points {
        pieces.push(&wire[start..p]);
        start = p;
    }
    pieces.push(&wire[start..]);
    pieces
}

proptest! {
    #[test]
    fn requests_round_trip(
        messages in prop::collection::vec(message(), 1..4),
        points in prop::collection::vec(0.0f64..1.0, 0..8),
    ) {
        let mut wire = Vec::new();
        for m in &messages {
            let target = match &m.query {
                Some(q) => format!("{}?{q}", m.path),
                None => m.path.clone(),
            };
            let headers = header_refs(&m.headers);
            let framing = match m.chunks {
                Some(_) => Framing::Chunked,
                None => Framing::Length(m.body.len() as u64),
            };
            write_request(&mut wire, m.method, &target, "example.com", &headers, framing).unwrap();
            match &m.chunks {
                Some(sizes) => write_chunks(&mut wire, &mut ChunkedEncoder::new(), &m.body, sizes),
                None => wire.extend_from_slice(&m.body),
            }
        }
        let outcome = requests(Limits::default(), &cut(&wire, &points));
        prop_assert_eq!(outcome.error, None);
        prop_assert!(!outcome.partial && outcome.rest.is_empty());
        prop_assert_eq!(outcome.messages.len(), messages.len());
        for (got, sent) in outcome.messages.iter().zip(&messages) {
            prop_assert_eq!(got.method.as_str(), sent.method);
            prop_assert_eq!(got.form, TargetForm::Origin);
            prop_assert_eq!(&got.path, &sent.path);
            prop_assert_eq!(&got.query, &sent.query);
            prop_assert_eq!(&got.body, &sent.body);
            prop_assert!(got.keep_alive && !got.expect_continue);
            let framing = if sent.chunks.is_some() { Framing::Chunked } else { Framing::Length(sent.body.len() as u64) };
            prop_assert_eq!(got.framing, framing);
            let extra: Vec<(String, Vec<u8>)> = got
                .headers
                .iter()
                .filter(|(n, _)| n.starts_with("X-"))
                .cloned()
                .collect();
            let sent_headers: Vec<(String, Vec<u8>)> =
                sent.headers.iter().map(|(n, v)| (n.clone(), v.as_bytes().to_vec())).collect();
            prop_assert_eq!(extra, sent_headers);
        }
    }

    #[test]
    fn responses_round_trip(
        messages in prop::collection::vec(
            (message(), prop::sample::select(vec![200u16, 201, 299, 404, 500]), any::<bool>()),
            1..4,
        ),
        until_close in any::<bool>(),
        points in prop::collection::vec(0.0f64..1.0, 0..8),
    ) {
        let mut wire = Vec::new();
        let mut methods = Vec::new();
        let last = messages.len() - 1;
        for (i, (m, status, head)) in messages.iter().enumerate() {
            let headers = header_refs(&m.headers);
            let response = Response::new(*status).headers(&headers).head_request(*head);
            methods.push(if *head { "HEAD" } else { "GET" });
            if until_close && i == last {
                response.write_until_close(&mut wire).unwrap();
                if response.has_body() {
                    wire.extend_from_slice(&m.body);
                }
            } else {
                match &m.chunks {
                    Some(sizes) => {
                        let mut encoder = response.write_chunked(&mut wire).unwrap();
                        write_chunks(&mut wire, &mut encoder, &m.body, sizes);
                    }
                    None => response.write(&mut wire, &m.body).unwrap(),
                }
            }
        }
        let outcome = responses(Limits::default(), false, &methods, &cut(&wire, &points));
        prop_assert_eq!(outcome.error, None);
        prop_assert!(outcome.rest.is_empty());
        prop_assert_eq!(outcome.messages.len(), messages.len());
        for (i, (got, (sent, status, head))) in outcome.messages.iter().zip(&messages).enumerate() {
            prop_assert_eq!(got.status, *status);
            let body: &[u8] = if *head { b"" } else { &sent.body };
            prop_assert_eq!(got.body.as_slice(), body);
            let closes = until_close && i == last;
            prop_assert_eq!(got.keep_alive, !closes);
            let framing = match (head, closes, &sent.chunks) {
                (true, _, _) => Framing::Length(0),
                (false, true, _) => Framing::UntilClose,
                (false, false, Some(_)) => Framing::Chunked,
                (false, false, None) => Framing::Length(sent.body.len() as u64),
            };
            prop_assert_eq!(got.framing, framing);
        }
    }
}
