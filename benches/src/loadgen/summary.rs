//! The comparison tables: medians over rounds of the JSON lines of runs
//! tagged with `server=NAME` (and `generator=NAME` when the load came from
//! another generator than this one), each server's ratio to a baseline,
//! and tether's ratio to every other server.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// The server whose ratios to every other server get a table of their own.
pub const SUBJECT: &str = "tether";

/// What was run, whatever the server; `tls` for runs over TLS (tagged
/// `tls=1`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    Echo {
        connections: u64,
        size: u64,
        tls: bool,
    },
    Fanout {
        transport: String,
        subscribers: u64,
        size: u64,
        rate: u64,
    },
    Latency {
        connections: u64,
        size: u64,
        rate: u64,
        tls: bool,
    },
    Idle {
        connections: u64,
        tls: bool,
    },
}

impl Scenario {
    fn from_json(v: &Value) -> Option<Scenario> {
        let num = |k: &str| v[k].as_f64().map_or(0, |x| x.round() as u64);
        let tls = match &v["tls"] {
            Value::Bool(b) => *b,
            Value::String(s) => s == "1" || s == "true",
            _ => false,
        };
        match v["mode"].as_str()? {
            "echo" => Some(Scenario::Echo {
                connections: num("connections"),
                size: num("size"),
                tls,
            }),
            "fanout" => Some(Scenario::Fanout {
                // Compressed fan-out pairs (JSON-like payloads, with and
                // without permessage-deflate) are scenarios of their own.
                transport: format!(
                    "{}{}{}",
                    v["transport"].as_str().unwrap_or("ws"),
                    if v["json_payload"] == true { " json" } else { "" },
                    if v["deflate"] == true { " deflate" } else { "" }
                ),
                subscribers: num("subscribers"),
                size: num("size"),
                rate: num("rate"),
            }),
            "latency" => Some(Scenario::Latency {
                connections: num("connections"),
                size: num("size"),
                rate: num("offered_rate"),
                tls,
            }),
            "idle" => Some(Scenario::Idle {
                connections: num("connections"),
                tls,
            }),
            _ => None,
        }
    }

    fn label(&self) -> String {
        let over = |tls: bool| if tls { " TLS" } else { "" };
        match self {
            Scenario::Echo {
                connections,
                size,
                tls,
            } => format!("{connections} × {size} B{}", over(*tls)),
            Scenario::Fanout {
                transport,
                subscribers,
                size,
                rate,
            } => format!("{rate}/s × {size} B to {subscribers} {transport}"),
            Scenario::Latency {
                connections,
                size,
                rate,
                tls,
            } => format!("{rate}/s × {size} B on {connections}{}", over(*tls)),
            Scenario::Idle { connections, tls } => format!("{connections}{}", over(*tls)),
        }
    }
}

/// One scenario's figures for one generator and server, a value per round.
#[derive(Debug, Default)]
struct Cell {
    per_s: Vec<f64>,
    per_server_cpu_s: Vec<f64>,
    /// `per_server_cpu_s` of the runs tagged with a round, by round.
    per_server_cpu_s_by_round: BTreeMap<String, f64>,
    server_cpu_share: Vec<f64>,
    loadgen_cpu_share: Vec<f64>,
    per_loadgen_cpu_s: Vec<f64>,
    rss_per_conn: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    p99_9: Vec<f64>,
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Which generator a line came from: `generator` when tagged, else this
/// load generator (with its process count when above one).
fn generator(v: &Value) -> String {
    match v["generator"].as_str() {
        Some(g) => g.to_owned(),
        None => match v["procs"].as_u64() {
            Some(n) if n > 1 => format!("loadgen ×{n}"),
            _ => "loadgen".to_owned(),
        },
    }
}

/// The round a line was tagged with (`round=N`), as text.
fn round(v: &Value) -> Option<String> {
    match &v["round"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `subject` over `other` per round, for the rounds both ran in.
fn ratios_by_round(subject: &BTreeMap<String, f64>, other: &BTreeMap<String, f64>) -> Vec<f64> {
    subject
        .iter()
        .filter_map(|(round, x)| other.get(round).filter(|y| **y > 0.0).map(|y| x / y))
        .collect()
}

/// A ratio of medians, followed, when two or more rounds ran both, by the
/// lowest and highest of the rounds' own ratios: "1.05 (0.98–1.12)".
fn fmt_ratio_with_range(x: Option<f64>, base: Option<f64>, by_round: &[f64]) -> String {
    let ratio = fmt_ratio(x, base);
    if by_round.len() < 2 || ratio == "-" {
        return ratio;
    }
    let lo = by_round.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = by_round.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{ratio} ({lo:.2}–{hi:.2})")
}

fn fmt_num(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |x| format!("{x:.0}"))
}

fn fmt_ratio(x: Option<f64>, base: Option<f64>) -> String {
    match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => format!("{:.2}", x / b),
        _ => "-".to_owned(),
    }
}

fn fmt_share(values: &[f64]) -> String {
    median(values).map_or("-".to_owned(), |s| format!("{:.0}%", s * 100.0))
}

fn fmt_ms(values: &[f64]) -> String {
    median(values).map_or("-".to_owned(), |us| format!("{:.2}", us / 1000.0))
}

/// Builds the Markdown tables from JSON lines (other lines are skipped).
/// Rows keep the order in which scenarios, generators and servers first
/// appear, with `baseline` first; ratios are to it. Runs that found
/// problems are left out of the medians (the `runs` column counts the
/// others).
pub fn table(jsonl: &str, baseline: &str) -> String {
    let mut rows: Vec<(Scenario, String)> = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    let mut cells: BTreeMap<(Scenario, String, String), Cell> = BTreeMap::new();
    for line in jsonl.lines().filter(|l| l.starts_with('{')) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(server), Some(scenario)) = (v["server"].as_str(), Scenario::from_json(&v)) else {
            continue;
        };
        let generator = generator(&v);
        let row = (scenario.clone(), generator.clone());
        if !rows.contains(&row) {
            rows.push(row);
        }
        if !servers.iter().any(|s| s == server) {
            servers.push(server.to_owned());
        }
        let cell = cells
            .entry((scenario.clone(), generator, server.to_owned()))
            .or_default();
        if v["problems"].as_u64().unwrap_or(0) > 0 {
            continue;
        }
        let num = |k: &str| v[k].as_f64();
        let what = if matches!(scenario, Scenario::Fanout { .. }) {
            "events"
        } else {
            "msg"
        };
        let push = |to: &mut Vec<f64>, x: Option<f64>| to.extend(x);
        push(&mut cell.per_s, num(&format!("{what}_per_s")));
        let per_server_cpu_s = num(&format!("{what}_per_server_cpu_s"));
        push(&mut cell.per_server_cpu_s, per_server_cpu_s);
        if let (Some(round), Some(x)) = (round(&v), per_server_cpu_s) {
            cell.per_server_cpu_s_by_round.insert(round, x);
        }
        push(
            &mut cell.per_loadgen_cpu_s,
            num(&format!("{what}_per_loadgen_cpu_s")),
        );
        push(
            &mut cell.server_cpu_share,
            num("server_cpu_s").zip(num("wall_s")).map(|(c, w)| c / w),
        );
        push(
            &mut cell.loadgen_cpu_share,
            num("loadgen_cpu_s").zip(num("wall_s")).map(|(c, w)| c / w),
        );
        push(&mut cell.rss_per_conn, num("rss_per_conn"));
        let latency = &v["latency_us"];
        push(&mut cell.p50, latency["p50"].as_f64());
        push(&mut cell.p99, latency["p99"].as_f64());
        push(&mut cell.p99_9, latency["p99_9"].as_f64());
    }

    // The baseline first, whatever order the runs came in.
    if let Some(at) = servers.iter().position(|s| s == baseline) {
        let base = servers.remove(at);
        servers.insert(0, base);
    }
    let mut out = String::new();
    let section = |out: &mut String, head: &str| {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(head);
    };
    let cell = |row: &(Scenario, String), server: &str| {
        cells.get(&(row.0.clone(), row.1.clone(), server.to_owned()))
    };

    let echo: Vec<_> = rows
        .iter()
        .filter(|r| matches!(r.0, Scenario::Echo { .. }))
        .collect();
    let fanout: Vec<_> = rows
        .iter()
        .filter(|r| matches!(r.0, Scenario::Fanout { .. }))
        .collect();
    for (rows, head) in [
        (
            &echo,
            format!(
                "| scenario | generator | server | msg/s | × {baseline} | msg per server CPU-s | × {baseline} | \
                 server CPU | loadgen CPU | loadgen msg per CPU-s | runs |\n\
                 |---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
            ),
        ),
        (
            &fanout,
            format!(
                "| fan-out | generator | server | deliveries/s | × {baseline} | deliveries per server CPU-s | \
                 × {baseline} | server CPU | p50 / p99 / p99.9 ms | loadgen CPU | loadgen deliveries per CPU-s | \
                 runs |\n|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
            ),
        ),
    ] {
        if rows.is_empty() {
            continue;
        }
        section(&mut out, &head);
        let is_fanout = matches!(rows[0].0, Scenario::Fanout { .. });
        for &row in rows {
            let base = cell(row, baseline);
            let base_rate = base.and_then(|c| median(&c.per_s));
            let base_cpu = base.and_then(|c| median(&c.per_server_cpu_s));
            for server in &servers {
                let Some(c) = cell(row, server) else { continue };
                let rate = median(&c.per_s);
                let cpu = median(&c.per_server_cpu_s);
                let latency = if is_fanout {
                    format!(
                        " {} / {} / {} |",
                        fmt_ms(&c.p50),
                        fmt_ms(&c.p99),
                        fmt_ms(&c.p99_9)
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {server} | {} | {} | {} | {} | {} |{latency} {} | {} | {} |",
                    row.0.label(),
                    row.1,
                    fmt_num(rate),
                    fmt_ratio(rate, base_rate),
                    fmt_num(cpu),
                    fmt_ratio(cpu, base_cpu),
                    fmt_share(&c.server_cpu_share),
                    fmt_share(&c.loadgen_cpu_share),
                    fmt_num(median(&c.per_loadgen_cpu_s)),
                    c.per_s.len(),
                );
            }
        }
    }

    // tether over every other server, per server CPU-second: the figure
    // that does not depend on how much CPU the generator left the server;
    // with the range of the ratios of single rounds, each a pair of runs
    // made close together.
    let others: Vec<&String> = servers.iter().filter(|s| *s != SUBJECT).collect();
    let throughput: Vec<_> = echo.iter().chain(&fanout).copied().collect();
    if !others.is_empty() && throughput.iter().any(|row| cell(row, SUBJECT).is_some()) {
        let mut head = "| scenario | generator |".to_owned();
        for other in &others {
            let _ = write!(head, " {SUBJECT} / {other} |");
        }
        head.push_str("\n|---|---|");
        head.push_str(&"--:|".repeat(others.len()));
        head.push('\n');
        section(&mut out, &head);
        for &row in &throughput {
            let Some(subject) = cell(row, SUBJECT) else {
                continue;
            };
            let Some(ours) = median(&subject.per_server_cpu_s) else {
                continue;
            };
            let _ = write!(out, "| {} | {} |", row.0.label(), row.1);
            for other in &others {
                let (theirs, by_round) = match cell(row, other) {
                    Some(c) => (
                        median(&c.per_server_cpu_s),
                        ratios_by_round(&subject.per_server_cpu_s_by_round, &c.per_server_cpu_s_by_round),
                    ),
                    None => (None, Vec::new()),
                };
                let _ = write!(out, " {} |", fmt_ratio_with_range(Some(ours), theirs, &by_round));
            }
            out.push('\n');
        }
    }

    // Round trips at a fixed offered rate: lower is better.
    let latency: Vec<_> = rows
        .iter()
        .filter(|r| matches!(r.0, Scenario::Latency { .. }))
        .collect();
    if !latency.is_empty() {
        section(
            &mut out,
            &format!(
                "| round trip at a fixed rate | generator | server | p50 / p99 / p99.9 ms | p99 × {baseline} | runs |\n\
                 |---|---|---|--:|--:|--:|\n"
            ),
        );
        for &row in &latency {
            let base = cell(row, baseline).and_then(|c| median(&c.p99));
            for server in &servers {
                let Some(c) = cell(row, server) else { continue };
                let _ = writeln!(
                    out,
                    "| {} | {} | {server} | {} / {} / {} | {} | {} |",
                    row.0.label(),
                    row.1,
                    fmt_ms(&c.p50),
                    fmt_ms(&c.p99),
                    fmt_ms(&c.p99_9),
                    fmt_ratio(median(&c.p99), base),
                    c.p99.len()
                );
            }
        }
    }

    let idle: Vec<_> = rows
        .iter()
        .filter(|r| matches!(r.0, Scenario::Idle { .. }))
        .collect();
    if !idle.is_empty() {
        section(
            &mut out,
            &format!(
                "| idle connections | server | server RSS per connection (B) | × {baseline} | runs |\n\
                 |---|---|--:|--:|--:|\n"
            ),
        );
        for &row in &idle {
            let base = cell(row, baseline).and_then(|c| median(&c.rss_per_conn));
            for server in &servers {
                let Some(c) = cell(row, server) else { continue };
                let rss = median(&c.rss_per_conn);
                let _ = writeln!(
                    out,
                    "| {} | {server} | {} | {} | {} |",
                    row.0.label(),
                    fmt_num(rss),
                    fmt_ratio(rss, base),
                    c.rss_per_conn.len()
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    const LINES: &str = r#"
echo 100 conns: a human line
{"mode":"echo","server":"tether","connections":100,"size":20,"msg_per_s":100,"msg_per_server_cpu_s":200,"server_cpu_s":1,"wall_s":2,"loadgen_cpu_s":1.5,"msg_per_loadgen_cpu_s":300,"problems":0}
{"mode":"echo","server":"peer","connections":100,"size":20,"msg_per_s":50,"msg_per_server_cpu_s":100,"server_cpu_s":1,"wall_s":1,"loadgen_cpu_s":0.5,"msg_per_loadgen_cpu_s":300,"problems":0}
{"mode":"echo","server":"tether","connections":100,"size":20,"msg_per_s":300,"msg_per_server_cpu_s":400,"server_cpu_s":1,"wall_s":2,"loadgen_cpu_s":1.5,"msg_per_loadgen_cpu_s":300,"problems":0}
{"mode":"echo","server":"peer","connections":100,"size":20,"msg_per_s":1,"problems":3}
{"mode":"echo","server":"floor","connections":100,"size":20,"msg_per_s":600,"msg_per_server_cpu_s":600,"server_cpu_s":1,"wall_s":1,"loadgen_cpu_s":1.8,"msg_per_loadgen_cpu_s":330,"procs":2,"problems":0}
{"mode":"echo","server":"tether","connections":100,"size":20,"msg_per_s":400,"msg_per_server_cpu_s":450,"server_cpu_s":1,"wall_s":1,"loadgen_cpu_s":1.8,"msg_per_loadgen_cpu_s":330,"procs":2,"problems":0}
{"mode":"echo","generator":"load_test","server":"peer","connections":100,"size":20,"msg_per_s":90,"msg_per_server_cpu_s":90,"server_cpu_s":1,"wall_s":1,"loadgen_cpu_s":0.5,"msg_per_loadgen_cpu_s":180,"problems":0}
{"mode":"fanout","transport":"ws","server":"uws","subscribers":1000,"size":64,"rate":100,"events_per_s":100000,"events_per_server_cpu_s":200000,"server_cpu_s":0.5,"wall_s":1,"loadgen_cpu_s":0.4,"events_per_loadgen_cpu_s":250000,"latency_us":{"p50":1500,"p99":20000,"p99_9":45000},"problems":0}
{"mode":"idle","server":"tether","connections":10,"rss_per_conn":250,"problems":0}
{"mode":"idle","server":"peer","connections":10,"rss_per_conn":1000,"problems":0}
"#;

    #[test]
    fn table_has_medians_and_ratios() {
        let t = table(LINES, "tether");
        let tether_row = t.find("| 100 × 20 B | loadgen | tether").unwrap();
        assert!(
            tether_row < t.find("| 100 × 20 B | loadgen | peer").unwrap(),
            "{t}"
        );
        let reordered: String = LINES.lines().rev().map(|l| format!("{l}\n")).collect();
        let r = table(&reordered, "tether");
        assert!(
            r.find("| 100 × 20 B | loadgen | tether").unwrap()
                < r.find("| 100 × 20 B | loadgen | peer").unwrap(),
            "{r}"
        );
        assert!(
            t.contains("| 100 × 20 B | loadgen | tether | 200 | 1.00 | 300 | 1.00 | 50% | 75% | 300 | 2 |"),
            "{t}"
        );
        // The run with problems is left out of the medians.
        assert!(
            t.contains("| 100 × 20 B | loadgen | peer | 50 | 0.25 | 100 | 0.33 | 100% | 50% | 300 | 1 |"),
            "{t}"
        );
        // Other generators get rows of their own.
        assert!(
            t.contains(
                "| 100 × 20 B | loadgen ×2 | floor | 600 | 1.50 | 600 | 1.33 | 100% | 180% | 330 | 1 |"
            ),
            "{t}"
        );
        assert!(
            t.contains("| 100 × 20 B | load_test | peer | 90 | - | 90 | - | 100% | 50% | 180 | 1 |"),
            "{t}"
        );
        assert!(t.contains("| 10 | peer | 1000 | 4.00 | 1 |"), "{t}");
    }

    #[test]
    fn tether_over_every_other_server() {
        let t = table(LINES, "peer");
        assert!(
            t.contains("| scenario | generator | tether / peer | tether / floor | tether / uws |"),
            "{t}"
        );
        assert!(t.contains("| 100 × 20 B | loadgen | 3.00 | - | - |"), "{t}");
        assert!(t.contains("| 100 × 20 B | loadgen ×2 | - | 0.75 | - |"), "{t}");
        // Baseline first in the per-server rows.
        assert!(
            t.find("| loadgen | peer").unwrap() < t.find("| loadgen | tether").unwrap(),
            "{t}"
        );
    }

    #[test]
    fn tether_over_another_server_gives_the_range_of_the_rounds_ratios() {
        let lines = r#"{"mode":"echo","server":"tether","round":"1","connections":100,"size":20,"msg_per_s":1,"msg_per_server_cpu_s":110,"problems":0}
{"mode":"echo","server":"uws","round":"1","connections":100,"size":20,"msg_per_s":1,"msg_per_server_cpu_s":100,"problems":0}
{"mode":"echo","server":"tether","round":"2","connections":100,"size":20,"msg_per_s":1,"msg_per_server_cpu_s":90,"problems":0}
{"mode":"echo","server":"uws","round":"2","connections":100,"size":20,"msg_per_s":1,"msg_per_server_cpu_s":100,"problems":0}
{"mode":"echo","server":"tether","round":"3","connections":100,"size":20,"msg_per_s":1,"msg_per_server_cpu_s":200,"problems":0}
{"mode":"echo","server":"uws","round":"3","connections":100,"size":20,"msg_per_s":1,"msg_per_server_cpu_s":160,"problems":0}
{"mode":"echo","server":"tether","round":"4","connections":100,"size":20,"msg_per_s":1,"msg_per_server_cpu_s":500,"problems":0}
{"mode":"echo","server":"tether","round":"1","connections":200,"size":20,"msg_per_s":1,"msg_per_server_cpu_s":100,"problems":0}
{"mode":"echo","server":"uws","round":"1","connections":200,"size":20,"msg_per_s":1,"msg_per_server_cpu_s":100,"problems":0}"#;
        let t = table(lines, "uws");
        // Medians 155 over 100; the rounds run by both give 1.10, 0.90 and
        // 1.25 (round 4 ran tether only).
        assert!(t.contains("| 100 × 20 B | loadgen | 1.55 (0.90–1.25) |"), "{t}");
        // One round: no range.
        assert!(t.contains("| 200 × 20 B | loadgen | 1.00 |"), "{t}");
    }

    #[test]
    fn tls_rows_and_fixed_rate_latency_have_rows_of_their_own() {
        let lines = r#"{"mode":"echo","server":"tether","tls":"1","connections":100,"size":20,"msg_per_s":90,"msg_per_server_cpu_s":300,"problems":0}
{"mode":"echo","server":"uws","tls":"1","connections":100,"size":20,"msg_per_s":90,"msg_per_server_cpu_s":200,"problems":0}
{"mode":"echo","server":"tether","connections":100,"size":20,"msg_per_s":100,"msg_per_server_cpu_s":500,"problems":0}
{"mode":"latency","server":"tether","connections":100,"size":20,"offered_rate":20000,"latency_us":{"p50":100,"p99":400,"p99_9":900},"problems":0}
{"mode":"latency","server":"uws","connections":100,"size":20,"offered_rate":20000,"latency_us":{"p50":120,"p99":800,"p99_9":1500},"problems":0}
{"mode":"idle","server":"tether","tls":"1","connections":10,"rss_per_conn":5000,"problems":0}
{"mode":"idle","server":"uws","tls":"1","connections":10,"rss_per_conn":10000,"problems":0}"#;
        let t = table(lines, "uws");
        assert!(
            t.contains("| 100 × 20 B TLS | loadgen | tether | 90 | 1.00 | 300 | 1.50 |"),
            "{t}"
        );
        assert!(
            t.contains("| 100 × 20 B | loadgen | tether | 100 | - | 500 | - |"),
            "{t}"
        );
        assert!(t.contains("| 100 × 20 B TLS | loadgen | 1.50 |"), "{t}");
        assert!(
            t.contains("| 20000/s × 20 B on 100 | loadgen | tether | 0.10 / 0.40 / 0.90 | 0.50 | 1 |"),
            "{t}"
        );
        assert!(t.contains("| 10 TLS | tether | 5000 | 0.50 | 1 |"), "{t}");
    }

    #[test]
    fn fanout_rows_have_percentiles() {
        let t = table(LINES, "uws");
        assert!(
            t.contains(
                "| 100/s × 64 B to 1000 ws | loadgen | uws | 100000 | 1.00 | 200000 | 1.00 | 50% | 1.50 / 20.00 / 45.00 | 40% | 250000 | 1 |"
            ),
            "{t}"
        );
    }
}
