//! Metric lines in the Prometheus text format.

use std::fmt::Write;

/// Appends one metric to `out`: its `# HELP` and `# TYPE` lines (`kind`:
/// `counter` or `gauge`) and its value, with `labels` as written between
/// braces (`table="outbox"`; empty: none).
///
/// ```
/// let mut out = String::new();
/// tether_ingest::write_metric(&mut out, "tether_x_total", "counter", "Xs seen.", "topic=\"a\"", 3);
/// assert_eq!(out, "# HELP tether_x_total Xs seen.\n# TYPE tether_x_total counter\ntether_x_total{topic=\"a\"} 3\n");
/// ```
pub fn write_metric(out: &mut String, name: &str, kind: &str, help: &str, labels: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}
