//! `tether sse-decode`: reads an event stream on stdin and prints what a
//! WHATWG-conforming client sees, one JSON object per line:
//!
//! - `{"type": ..., "data": ..., "last_event_id": ...}` for each dispatched
//!   event;
//! - `{"retry": <ms>}` for each valid `retry` field, where it appears;
//! - `{"error": ...}` where the stream went past a limit (the parser then
//!   skips that event and carries on; the exit status is 1).
//!
//! Comments and an incomplete event at the end of input print nothing.

use std::io::{self, BufWriter, Read, Write};
use std::num::NonZeroUsize;
use std::process::ExitCode;

use tether_sse::{Item, Limits, Parser};

/// Options of `tether sse-decode`.
#[derive(clap::Args)]
#[command(after_help = "Example: curl -N https://example.com/events | tether sse-decode")]
pub(crate) struct Args {
    /// Feed the parser at most N bytes at a time (the output does not
    /// depend on N; small values test that).
    #[arg(long, value_name = "N", default_value = "65536")]
    chunk: NonZeroUsize,
    /// Longest `id`, `event` or `retry` line accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT_MAX_LINE_LEN)]
    max_line_len: usize,
    /// Largest event data accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT_MAX_EVENT_SIZE)]
    max_event_size: usize,
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let limits = Limits::new()
        .with_max_line_len(args.max_line_len)
        .with_max_event_size(args.max_event_size);
    match decode(io::stdin().lock(), io::stdout().lock(), args.chunk.get(), limits) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        // The reader went away (`| head`): not our failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether sse-decode: {e}");
            ExitCode::from(2)
        }
    }
}

/// Decodes `input` to JSON Lines on `output`; returns how many stream
/// errors it reported.
fn decode(mut input: impl Read, output: impl Write, chunk: usize, limits: Limits) -> io::Result<u64> {
    let mut parser = Parser::with_limits(limits);
    let mut out = BufWriter::new(output);
    let mut buf = vec![0; chunk];
    let mut errors = 0;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        parser.feed(buf.get(..n).unwrap_or_default());
        errors += drain(&mut parser, &mut out)?;
        // Live output for `curl -N`: what the bytes so far produced shows
        // up now, not when the buffer fills.
        out.flush()?;
    }
    parser.finish();
    errors += drain(&mut parser, &mut out)?;
    out.flush()?;
    Ok(errors)
}

fn drain(parser: &mut Parser, out: &mut impl Write) -> io::Result<u64> {
    let mut errors = 0;
    while let Some(item) = parser.poll() {
        match item {
            Ok(Item::Event(event)) => {
                out.write_all(b"{\"type\":")?;
                serde_json::to_writer(&mut *out, event.event_type())?;
                out.write_all(b",\"data\":")?;
                serde_json::to_writer(&mut *out, event.data())?;
                out.write_all(b",\"last_event_id\":")?;
                serde_json::to_writer(&mut *out, event.last_event_id())?;
                out.write_all(b"}\n")?;
            }
            Ok(Item::Retry(ms)) => writeln!(out, "{{\"retry\":{ms}}}")?,
            Err(e) => {
                errors += 1;
                out.write_all(b"{\"error\":")?;
                serde_json::to_writer(&mut *out, &e.to_string())?;
                out.write_all(b"}\n")?;
            }
        }
    }
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(input: &[u8], chunk: usize, limits: Limits) -> (String, u64) {
        let mut out = Vec::new();
        let errors = decode(input, &mut out, chunk, limits).unwrap();
        (String::from_utf8(out).unwrap(), errors)
    }

    #[test]
    fn events_and_retry_in_stream_order() {
        let input = b"retry: 10\nid: 1\nevent: e\ndata: a\"\\\ndata: \xFF\n\n: c\ndata: x";
        let expected = "{\"retry\":10}\n\
            {\"type\":\"e\",\"data\":\"a\\\"\\\\\\n\u{FFFD}\",\"last_event_id\":\"1\"}\n";
        for chunk in [1, 2, 3, 7, 1 << 16] {
            assert_eq!(decoded(input, chunk, Limits::new()), (expected.to_owned(), 0));
        }
    }

    #[test]
    fn errors_are_reported_in_place_and_counted() {
        let limits = Limits::new().with_max_event_size(4);
        let (out, errors) = decoded(b"data: 12345\n\ndata: ok\n\n", 3, limits);
        assert_eq!(
            out,
            "{\"error\":\"event data larger than 4 bytes\"}\n\
             {\"type\":\"message\",\"data\":\"ok\",\"last_event_id\":\"\"}\n"
        );
        assert_eq!(errors, 1);
    }

    #[test]
    fn control_characters_are_escaped() {
        let (out, _) = decoded(b"data: a\0b\x1b\n\n", 64, Limits::new());
        assert_eq!(
            out,
            "{\"type\":\"message\",\"data\":\"a\\u0000b\\u001b\",\"last_event_id\":\"\"}\n"
        );
    }
}
