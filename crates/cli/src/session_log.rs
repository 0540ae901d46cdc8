//! `tether serve --access-log`: the line of a WebSocket or an event
//! stream that ends, beside the access line of its opening, in the log's
//! format: how long it was open, why it ended (and the close code), what
//! its connection carried (over HTTP/1.1), who it was, and what it
//! opened.

use std::fmt::Write as _;

use tether_server::{CloseReason, SessionEnd};

use crate::access_log::{opened, target, text_escaped};
use crate::logger::{self, Format, JsonLine};

/// Why a session ended, in a word, and the WebSocket close code that
/// went with it, if any.
fn reason(reason: &CloseReason) -> (&'static str, Option<u16>) {
    match reason {
        // The peer's close frame (its code; 1005 when it gave none).
        CloseReason::Closed(code) => ("peer-closed", Some(code.0)),
        // Closed by the server: a protocol error, a limit, the idle
        // timeout (1001) or the application's own close; the code says.
        CloseReason::Failed(code) => ("server-closed", Some(code.0)),
        CloseReason::Dropped => ("dropped", None),
        CloseReason::SlowConsumer => ("slow-consumer", None),
        CloseReason::Shutdown => ("shutdown", None),
        CloseReason::Ended => ("ended", None),
    }
}

/// The line for `end`.
pub(crate) fn line(format: Format, end: &SessionEnd<'_>) -> String {
    let peer = end.peer.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    let uri = target(end.path, end.query);
    let (why, code) = reason(end.reason);
    let what = opened(end.opened).unwrap_or("-");
    match format {
        Format::Json => {
            let mut line = JsonLine::new("close", "INFO");
            line.field("conn", &end.conn.to_string());
            line.field("opened", what);
            line.field("uri", &uri);
            line.field("reason", why);
            if let Some(code) = code {
                line.number("code", code);
            }
            line.number(
                "duration_ms",
                format_args!("{:.3}", end.duration.as_secs_f64() * 1e3),
            );
            line.field("transport", end.transport.as_str());
            line.field("version", end.version.as_str());
            line.field("peer", &peer);
            if let Some(bytes) = end.bytes {
                line.number("bytes_out", bytes.out);
                line.number("bytes_in", bytes.read);
            }
            if let Some(subject) = end.subject {
                line.field("subject", subject);
            }
            line.finish()
        }
        Format::Text => {
            let since = logger::since_start();
            let mut out = String::with_capacity(128);
            let _ = write!(
                out,
                "{:>5}.{:03} CLOSE {peer} {} {} {what} \"",
                since.as_secs(),
                since.subsec_millis(),
                end.conn,
                end.transport.as_str(),
            );
            text_escaped(&mut out, &uri);
            let _ = write!(out, "\" {why}");
            if let Some(code) = code {
                let _ = write!(out, " {code}");
            }
            let _ = write!(out, " {:.3}s", end.duration.as_secs_f64());
            if let Some(bytes) = end.bytes {
                let _ = write!(out, " out={} in={}", bytes.out, bytes.read);
            }
            if let Some(subject) = end.subject {
                out.push_str(" subject=\"");
                text_escaped(&mut out, subject);
                out.push('"');
            }
            out.push('\n');
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_word_and_codes_go_with_closes() {
        use tether_server::CloseCode;
        assert_eq!(
            reason(&CloseReason::Closed(CloseCode(1000))),
            ("peer-closed", Some(1000))
        );
        assert_eq!(
            reason(&CloseReason::Failed(CloseCode(1009))),
            ("server-closed", Some(1009))
        );
        assert_eq!(reason(&CloseReason::SlowConsumer), ("slow-consumer", None));
        assert_eq!(reason(&CloseReason::Shutdown), ("shutdown", None));
        assert_eq!(reason(&CloseReason::Ended), ("ended", None));
        assert_eq!(reason(&CloseReason::Dropped), ("dropped", None));
    }
}
