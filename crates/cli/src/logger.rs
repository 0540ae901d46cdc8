//! The process's log on standard error: one line per record, as text
//! (the time since start, level, target and message) or as one JSON
//! object (`--log-format json`) for a log collector. The access log
//! (`access_log.rs`) writes its lines in the same format beside it.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `SECONDS.MILLIS LEVEL target: message`, for a terminal.
    Text,
    /// One JSON object a line: `time` (RFC 3339, UTC), `level`, `kind`,
    /// `target` (the part of the server that wrote it), `conn` (the
    /// connection the line is about, if any), `message`, then the
    /// record's other fields (`subject` where known). An access line has
    /// the request's path and query as `uri`: a key means one thing.
    Json,
}

struct StderrLogger {
    start: Instant,
    format: Format,
}

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = self.line(record);
        // One write a line, so that lines from several threads do not mix.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

impl StderrLogger {
    /// The record as one line, newline included.
    fn line(&self, record: &log::Record<'_>) -> String {
        match self.format {
            Format::Text => {
                let elapsed = self.start.elapsed();
                let mut line = format!(
                    "{:>5}.{:03} {:<5} {}: {}",
                    elapsed.as_secs(),
                    elapsed.subsec_millis(),
                    record.level(),
                    record.target(),
                    record.args()
                );
                for (key, value) in Fields::of(record).0 {
                    // Debug quotes and escapes it: one line, whatever it holds.
                    let _ = write!(line, " {key}={value:?}");
                }
                line.push('\n');
                line
            }
            Format::Json => {
                let fields = Fields::of(record);
                let mut line = JsonLine::new("log", record.level().as_str());
                line.field("target", record.target());
                let conn = fields.get("conn").map(str::to_owned);
                if let Some(conn) =
                    conn.or_else(|| tether_server::serving_connection().map(|c| c.to_string()))
                {
                    line.field("conn", &conn);
                }
                // The message may quote what a peer sent: formatted first,
                // then escaped like any other string.
                line.field("message", &record.args().to_string());
                for (key, value) in &fields.0 {
                    if !RESERVED.contains(&key.as_str()) {
                        line.field(key, value);
                    }
                }
                line.finish()
            }
        }
    }
}

/// The fields every JSON line has already: a record's key of one of these
/// names (other than `conn`, which stands for the served connection) is
/// left out rather than written twice.
const RESERVED: [&str; 6] = ["time", "level", "kind", "target", "conn", "message"];

/// A record's key-values, formatted, in the order given.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn of(record: &log::Record<'_>) -> Fields {
        let mut fields = Fields(Vec::new());
        let _ = record.key_values().visit(&mut fields);
        fields
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl<'kvs> log::kv::VisitSource<'kvs> for Fields {
    fn visit_pair(
        &mut self,
        key: log::kv::Key<'kvs>,
        value: log::kv::Value<'kvs>,
    ) -> Result<(), log::kv::Error> {
        self.0.push((key.as_str().to_owned(), value.to_string()));
        Ok(())
    }
}

static LOGGER: OnceLock<StderrLogger> = OnceLock::new();

/// Installs the logger at `level`, writing `format` (once; later calls
/// only change the level, and the format stays the first one's).
pub(crate) fn init(level: log::LevelFilter, format: Format) {
    let logger = LOGGER.get_or_init(|| StderrLogger {
        start: Instant::now(),
        format,
    });
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}

/// The time since the logger started, for text lines written beside it.
pub(crate) fn since_start() -> std::time::Duration {
    LOGGER.get().map(|l| l.start.elapsed()).unwrap_or_default()
}

/// One JSON object being written as a line: `time` and `level` first,
/// then the fields in the order given, every string escaped.
pub(crate) struct JsonLine {
    out: String,
}

impl JsonLine {
    /// A line of `kind` (`log`, `access` or `start`) at `level`, stamped
    /// now.
    pub(crate) fn new(kind: &str, level: &str) -> JsonLine {
        let mut out = String::with_capacity(256);
        out.push_str("{\"time\":\"");
        rfc3339(&mut out, SystemTime::now());
        out.push_str("\",\"level\":");
        json_string(&mut out, level);
        out.push_str(",\"kind\":");
        json_string(&mut out, kind);
        JsonLine { out }
    }

    /// A string field.
    pub(crate) fn field(&mut self, name: &str, value: &str) {
        self.name(name);
        json_string(&mut self.out, value);
    }

    /// An object field of string fields.
    pub(crate) fn object<'a>(&mut self, name: &str, fields: impl IntoIterator<Item = (&'a str, &'a str)>) {
        self.name(name);
        self.out.push('{');
        for (i, (key, value)) in fields.into_iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            json_string(&mut self.out, key);
            self.out.push(':');
            json_string(&mut self.out, value);
        }
        self.out.push('}');
    }

    /// A number field.
    pub(crate) fn number(&mut self, name: &str, value: impl std::fmt::Display) {
        self.name(name);
        let _ = write!(self.out, "{value}");
    }

    fn name(&mut self, name: &str) {
        self.out.push(',');
        json_string(&mut self.out, name);
        self.out.push(':');
    }

    /// The line, closed and ended with a newline.
    pub(crate) fn finish(mut self) -> String {
        self.out.push_str("}\n");
        self.out
    }
}

/// Appends `s` as a JSON string (RFC 8259): quotes and backslashes
/// escaped, and every control character as `\uXXXX`, so that whatever a
/// peer sent can neither end the line nor the string. U+2028 and U+2029
/// are escaped too, for readers that take them for line ends.
pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                // `is_control` covers C0, DEL and C1: all fit in 4 digits.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `time` as RFC 3339 in UTC with milliseconds
/// (`2026-11-27T18:06:58.123Z`).
pub(crate) fn rfc3339(out: &mut String, time: SystemTime) {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    );
}

/// The proleptic Gregorian date `days` after 1970-01-01: the usual
/// era-based conversion (400-year eras of 146 097 days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> String {
        let mut out = String::new();
        rfc3339(
            &mut out,
            UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis),
        );
        out
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        // A leap day, and the last second of a century year that is one.
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(978_307_199, 999), "2000-12-31T23:59:59.999Z");
        assert_eq!(at(1_795_804_018, 0), "2026-11-27T18:26:58.000Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
    }

    #[test]
    fn any_string_stays_one_json_string() {
        let hostile = "a\"b\\c\nd\re\u{0}f\u{1b}[31m\u{7f}\u{85}\u{2028}g\tü";
        let mut out = String::new();
        json_string(&mut out, hostile);
        assert!(!out.contains('\n') && !out.contains('\r') && !out.contains('\u{2028}'));
        let back: String = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(back, hostile);
    }

    fn logged(format: Format, message: &str, kvs: &[(&str, &str)]) -> String {
        let logger = StderrLogger {
            start: Instant::now(),
            format,
        };
        let args = format_args!("hub: refused {message}");
        let record = log::Record::builder()
            .level(log::Level::Debug)
            .target("tether_hub_app::router")
            .args(args)
            .key_values(&kvs)
            .build();
        logger.line(&record)
    }

    #[test]
    fn key_values_are_fields_of_their_own() {
        let hostile = "al\"ice\n{\"level\":\"ERROR\"}";
        let json = logged(Format::Json, "\"x\ny\"", &[("subject", hostile), ("conn", "7.3")]);
        assert_eq!(json.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(value["subject"], hostile);
        assert_eq!(value["conn"], "7.3");
        assert_eq!(value["level"], "DEBUG");
        assert_eq!(value["message"], "hub: refused \"x\ny\"");
        // A key that names a field of every line does not replace it.
        let json = logged(Format::Json, "", &[("level", "ERROR")]);
        let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(value["level"], "DEBUG");

        let text = logged(Format::Text, "x", &[("subject", hostile)]);
        assert_eq!(text.matches('\n').count(), 1, "{text}");
        assert!(
            text.trim_end()
                .ends_with(r#"subject="al\"ice\n{\"level\":\"ERROR\"}""#),
            "{text}"
        );
    }

    #[test]
    fn a_line_is_one_object() {
        let mut line = JsonLine::new("log", "WARN");
        line.field("message", "x\",\"level\":\"ERROR");
        line.number("status", 200);
        let text = line.finish();
        assert_eq!(text.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(value["level"], "WARN");
        assert_eq!(value["message"], "x\",\"level\":\"ERROR");
        assert_eq!(value["status"], 200);
    }
}
