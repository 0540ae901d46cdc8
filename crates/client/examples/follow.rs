//! Follows one event stream with [`EventSource`] and prints what happens
//! as JSON lines, one per event, opening or reconnection, until killed:
//!
//! ```text
//! cargo run -p tether-client --example follow -- URL [SILENCE_SECONDS]
//! {"kind":"open"}
//! {"kind":"event","type":"message","id":"17-1","data":"hello"}
//! {"kind":"reconnecting","why":"the stream ended"}
//! ```
//!
//! The network fault tests (conformance/netfault) run it as one of their
//! subscribers: it resumes as `EventSource` does, with the last id it
//! had (the first connection from the URL's own `?lastEventId=`, which
//! the hub reads when there is no `Last-Event-ID`), and treats a stream
//! silent past SILENCE_SECONDS (heartbeats count) as lost.

use std::io::Write;
use std::time::Duration;

use tether_client::{EventSource, SseEvent};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: follow URL [SILENCE_SECONDS]");
        std::process::exit(2);
    };
    let silence = args.next().and_then(|s| s.parse::<f64>().ok()).unwrap_or(5.0);
    let builder = EventSource::builder(url)
        .retry(Duration::from_millis(300))
        .read_timeout(Some(Duration::from_secs_f64(silence)));
    let mut source = match builder.build() {
        Ok(source) => source,
        Err(e) => {
            eprintln!("follow: {e}");
            std::process::exit(1);
        }
    };
    let stdout = std::io::stdout();
    while let Some(next) = source.next_event() {
        let line = match next {
            Ok(SseEvent::Open) => r#"{"kind":"open"}"#.to_owned(),
            Ok(SseEvent::Message(event)) => format!(
                r#"{{"kind":"event","type":{},"id":{},"data":{}}}"#,
                json_string(event.event_type()),
                json_string(event.last_event_id()),
                json_string(event.data())
            ),
            Ok(SseEvent::Reconnecting { error, .. }) => {
                let why = error.map_or_else(|| "the stream ended".to_owned(), |e| e.to_string());
                format!(r#"{{"kind":"reconnecting","why":{}}}"#, json_string(&why))
            }
            Ok(other) => format!(
                r#"{{"kind":"other","what":{}}}"#,
                json_string(&format!("{other:?}"))
            ),
            Err(e) => {
                eprintln!("follow: {e}");
                std::process::exit(1);
            }
        };
        let mut out = stdout.lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return;
        }
    }
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
