//! The comparison table: medians over rounds of the JSON lines that runs
//! tagged with `server=NAME`, and each server's ratio to a baseline.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// One scenario's figures for one server, a value per round.
#[derive(Debug, Default)]
struct Cell {
    msg_per_s: Vec<f64>,
    msg_per_server_cpu_s: Vec<f64>,
    server_cpu_share: Vec<f64>,
    msg_per_loadgen_cpu_s: Vec<f64>,
    rss_per_conn: Vec<f64>,
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

/// Builds the Markdown tables from JSON lines (other lines are skipped).
/// Rows keep the order in which scenarios and servers first appear, with
/// `baseline` first; ratios are to it.
pub fn table(jsonl: &str, baseline: &str) -> String {
    let mut scenarios: Vec<(u8, u64, u64)> = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    let mut cells: BTreeMap<((u8, u64, u64), String), Cell> = BTreeMap::new();
    for line in jsonl.lines().filter(|l| l.starts_with('{')) {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(server) = v["server"].as_str() else {
            continue;
        };
        let num = |k: &str| v[k].as_f64();
        let key = match v["mode"].as_str() {
            Some("echo") => (
                0,
                num("connections").unwrap_or(0.0) as u64,
                num("size").unwrap_or(0.0) as u64,
            ),
            Some("idle") => (1, num("connections").unwrap_or(0.0) as u64, 0),
            _ => continue,
        };
        if !scenarios.contains(&key) {
            scenarios.push(key);
        }
        if !servers.iter().any(|s| s == server) {
            servers.push(server.to_owned());
        }
        let cell = cells.entry((key, server.to_owned())).or_default();
        if v["problems"].as_u64().unwrap_or(0) > 0 {
            continue;
        }
        let push = |to: &mut Vec<f64>, x: Option<f64>| to.extend(x);
        push(&mut cell.msg_per_s, num("msg_per_s"));
        push(&mut cell.msg_per_server_cpu_s, num("msg_per_server_cpu_s"));
        push(
            &mut cell.server_cpu_share,
            num("server_cpu_s").zip(num("wall_s")).map(|(c, w)| c / w),
        );
        push(&mut cell.msg_per_loadgen_cpu_s, num("msg_per_loadgen_cpu_s"));
        push(&mut cell.rss_per_conn, num("rss_per_conn"));
    }

    // The baseline first, whatever order the runs came in.
    if let Some(at) = servers.iter().position(|s| s == baseline) {
        let base = servers.remove(at);
        servers.insert(0, base);
    }
    let fmt_num = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{:.0}", x));
    let fmt_ratio = |x: Option<f64>, base: Option<f64>| match (x, base) {
        (Some(x), Some(b)) if b > 0.0 => format!("{:.2}", x / b),
        _ => "-".to_owned(),
    };
    let mut out = String::new();
    let echo: Vec<_> = scenarios.iter().filter(|s| s.0 == 0).collect();
    if !echo.is_empty() {
        out.push_str(&format!(
            "| scenario | server | msg/s | × {baseline} | msg per server CPU-s | × {baseline} | server CPU | \
             loadgen msg per CPU-s | runs |\n|---|---|--:|--:|--:|--:|--:|--:|--:|\n",
        ));
        for &&key in &echo {
            let base = cells.get(&(key, baseline.to_owned()));
            let base_rate = base.and_then(|c| median(&c.msg_per_s));
            let base_cpu = base.and_then(|c| median(&c.msg_per_server_cpu_s));
            for server in &servers {
                let Some(cell) = cells.get(&(key, server.clone())) else {
                    continue;
                };
                let rate = median(&cell.msg_per_s);
                let cpu = median(&cell.msg_per_server_cpu_s);
                let _ = writeln!(
                    out,
                    "| {} × {} B | {server} | {} | {} | {} | {} | {} | {} | {} |",
                    key.1,
                    key.2,
                    fmt_num(rate),
                    fmt_ratio(rate, base_rate),
                    fmt_num(cpu),
                    fmt_ratio(cpu, base_cpu),
                    median(&cell.server_cpu_share).map_or("-".to_owned(), |s| format!("{:.0}%", s * 100.0)),
                    fmt_num(median(&cell.msg_per_loadgen_cpu_s)),
                    cell.msg_per_s.len(),
                );
            }
        }
    }
    let idle: Vec<_> = scenarios.iter().filter(|s| s.0 == 1).collect();
    if !idle.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "| idle connections | server | server RSS per connection (B) | × {baseline} | runs |\n"
        ));
        out.push_str("|---|---|--:|--:|--:|\n");
        for &&key in &idle {
            let base = cells
                .get(&(key, baseline.to_owned()))
                .and_then(|c| median(&c.rss_per_conn));
            for server in &servers {
                let Some(cell) = cells.get(&(key, server.clone())) else {
                    continue;
                };
                let rss = median(&cell.rss_per_conn);
                let _ = writeln!(
                    out,
                    "| {} | {server} | {} | {} | {} |",
                    key.1,
                    fmt_num(rss),
                    fmt_ratio(rss, base),
                    cell.rss_per_conn.len()
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

    #[test]
    fn table_has_medians_and_ratios() {
        let lines = r#"
echo 100 conns: a human line
{"mode":"echo","server":"tether","connections":100,"size":20,"msg_per_s":100,"msg_per_server_cpu_s":200,"server_cpu_s":1,"wall_s":2,"msg_per_loadgen_cpu_s":300,"problems":0}
{"mode":"echo","server":"peer","connections":100,"size":20,"msg_per_s":50,"msg_per_server_cpu_s":100,"server_cpu_s":1,"wall_s":1,"msg_per_loadgen_cpu_s":300,"problems":0}
{"mode":"echo","server":"tether","connections":100,"size":20,"msg_per_s":300,"msg_per_server_cpu_s":400,"server_cpu_s":1,"wall_s":2,"msg_per_loadgen_cpu_s":300,"problems":0}
{"mode":"echo","server":"peer","connections":100,"size":20,"msg_per_s":1,"problems":3}
{"mode":"idle","server":"tether","connections":10,"rss_per_conn":250,"problems":0}
{"mode":"idle","server":"peer","connections":10,"rss_per_conn":1000,"problems":0}
"#;
        let t = table(lines, "tether");
        let tether_row = t.find("| 100 × 20 B | tether").unwrap();
        assert!(tether_row < t.find("| 100 × 20 B | peer").unwrap(), "{t}");
        let reordered: String = lines.lines().rev().map(|l| format!("{l}\n")).collect();
        let r = table(&reordered, "tether");
        assert!(
            r.find("| 100 × 20 B | tether").unwrap() < r.find("| 100 × 20 B | peer").unwrap(),
            "{r}"
        );
        assert!(
            t.contains("| 100 × 20 B | tether | 200 | 1.00 | 300 | 1.00 | 50% | 300 | 2 |"),
            "{t}"
        );
        // The run with problems is left out of the medians.
        assert!(
            t.contains("| 100 × 20 B | peer | 50 | 0.25 | 100 | 0.33 | 100% | 300 | 1 |"),
            "{t}"
        );
        assert!(t.contains("| 10 | peer | 1000 | 4.00 | 1 |"), "{t}");
    }
}
