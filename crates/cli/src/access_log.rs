//! `tether serve --access-log`: a line on standard error for each request
//! the server answers, in the log's format (`--log-format`), with the
//! credentials a query string may carry redacted (and one for each
//! WebSocket or event stream that ends: `session_log.rs`).

use std::fmt::Write as _;
use std::io::Write;

use tether_server::{AccessEntry, AccessLog, Opened};

use crate::logger::{self, Format, JsonLine};

/// The query parameters whose values are never written: the hub's token
/// (`--token-query`), the usual OAuth name for one, and a ticket.
/// Compared without regard to case, after percent-decoding the name.
const CREDENTIALS: [&str; 3] = ["token", "access_token", "ticket"];

/// What replaces a credential's value.
const REDACTED: &str = "REDACTED";

/// The access log writing `format` lines on standard error: one for each
/// request answered, and one for each WebSocket or event stream as it
/// ends.
pub(crate) fn access_log(format: Format) -> AccessLog {
    AccessLog::new(move |entry| {
        let line = line(format, entry);
        // One write a line, so that lines from several loops do not mix.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    })
    .with_session_ends(move |end| {
        let line = crate::session_log::line(format, end);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    })
}

/// The line for `entry`.
fn line(format: Format, entry: &AccessEntry<'_>) -> String {
    let peer = entry.peer.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
    let target = target(entry.path, entry.query);
    match format {
        Format::Json => {
            let mut line = JsonLine::new("access", "INFO");
            line.field("conn", &entry.conn.to_string());
            line.field("method", entry.method);
            // `uri`, not `target`: on a log line `target` names the part
            // of the server that wrote it, and a key has one meaning.
            line.field("uri", &target);
            line.number("status", entry.status);
            line.number("bytes", entry.bytes);
            line.number(
                "duration_ms",
                format_args!("{:.3}", entry.duration.as_secs_f64() * 1e3),
            );
            line.field("transport", entry.transport.as_str());
            line.field("version", entry.version.as_str());
            line.field("peer", &peer);
            if let Some(opened) = opened(entry.opened) {
                line.field("opened", opened);
            }
            if let Some(subject) = entry.subject {
                line.field("subject", subject);
            }
            line.finish()
        }
        Format::Text => {
            let since = logger::since_start();
            let mut out = String::with_capacity(128);
            let _ = write!(
                out,
                "{:>5}.{:03} ACCESS {peer} {} {} \"",
                since.as_secs(),
                since.subsec_millis(),
                entry.conn,
                entry.transport.as_str(),
            );
            text_escaped(&mut out, entry.method);
            out.push(' ');
            text_escaped(&mut out, &target);
            let _ = write!(
                out,
                " HTTP/{}\" {} {} {:.3}ms",
                entry.version.as_str(),
                entry.status,
                entry.bytes,
                entry.duration.as_secs_f64() * 1e3
            );
            if let Some(opened) = opened(entry.opened) {
                out.push(' ');
                out.push_str(opened);
            }
            if let Some(subject) = entry.subject {
                out.push_str(" subject=\"");
                text_escaped(&mut out, subject);
                out.push('"');
            }
            out.push('\n');
            out
        }
    }
}

/// What a line says the answer opened, if anything.
pub(crate) fn opened(opened: Opened) -> Option<&'static str> {
    match opened {
        Opened::WebSocket => Some("websocket"),
        Opened::EventStream => Some("event-stream"),
        _ => None,
    }
}

/// The path and the query after it, credentials redacted.
pub(crate) fn target(path: &str, query: Option<&str>) -> String {
    let mut out = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1));
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) if is_credential(name) => {
                    out.push_str(name);
                    out.push('=');
                    out.push_str(REDACTED);
                }
                _ => out.push_str(pair),
            }
        }
    }
    out
}

/// Whether a query parameter's name (as sent, maybe percent-encoded)
/// names a credential.
fn is_credential(name: &str) -> bool {
    let decoded = percent_decoded(name);
    CREDENTIALS
        .iter()
        .any(|c| c.as_bytes().eq_ignore_ascii_case(&decoded))
}

/// `s` with its `%XX` escapes and `+` decoded, as the server reads query
/// names; a bad escape stays as it is.
fn percent_decoded(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|h| (*h as char).to_digit(16));
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2))
                    && let Ok(byte) = u8::try_from(h * 16 + l)
                {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Appends `s` so that it stays inside the text line's quotes: quotes,
/// backslashes and control characters escaped as Rust writes them.
pub(crate) fn text_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_query_are_redacted() {
        assert_eq!(
            target(
                "/topics/a",
                Some("token=abc.def&x=1&ACCESS_TOKEN=s&t%69cket=z&tokens=keep")
            ),
            "/topics/a?token=REDACTED&x=1&ACCESS_TOKEN=REDACTED&t%69cket=REDACTED&tokens=keep"
        );
        assert_eq!(target("/", Some("token")), "/?token");
        assert_eq!(target("/", None), "/");
        assert_eq!(target("/", Some("a=%zz&token=%")), "/?a=%zz&token=REDACTED");
    }

    #[test]
    fn text_stays_inside_its_quotes() {
        let mut out = String::new();
        text_escaped(&mut out, "/a\"b\\c\nd\u{1b}\u{2028}");
        assert_eq!(out, "/a\\\"b\\\\c\\u{a}d\\u{1b}\\u{2028}");
    }
}
