//! Several processes of the load generator as one run (`--procs N`), for
//! when one core of it cannot keep a server busy.
//!
//! The parent starts N copies of its own executable with the same
//! arguments plus `--child I/N`. Each takes its share of the connections
//! (or subscribers, or of the offered rate), opens them, says `ready` and
//! waits; when all are ready the parent lets them go at once, so their
//! measurement windows coincide. Each prints its JSON line with its latency
//! histograms' counts; the parent adds them up ([`combine`]): messages and
//! the load generator's CPU time are summed over the processes, wall time
//! and the server's CPU time (the same process measured over the same
//! span by each) are their mean, and the histograms are merged bucket by
//! bucket, so the percentiles are those of every sample.
//!
//! A fan-out's processes say when they have measured and then wait, their
//! connections open, until the parent has looked at the servers (see
//! [`super::watch`]): what the servers spend closing the connections is
//! counted apart from what the deliveries cost.
//!
//! In fan-out only process 0 publishes; the others count the messages due
//! as the publisher does and check their subscribers against that count.

use std::ffi::OsString;
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdout, Command, Stdio};

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use super::report::{self, ConnectFailures, Report, Span};
use super::spread::Spread;
use super::watch::{self, Watch};

/// Which process of how many this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// From 0.
    pub index: usize,
    /// How many processes.
    pub count: usize,
}

impl Share {
    /// Parses `I/N` (`I` below `N`).
    pub fn parse(s: &str) -> Result<Share, String> {
        let bad = || format!("{s}: expected I/N with I < N");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if index >= count {
            return Err(bad());
        }
        Ok(Share { index, count })
    }

    /// This process's part of `total` things: the first `total % count`
    /// processes take one more.
    pub fn of(&self, total: usize) -> usize {
        total / self.count + usize::from(self.index < total % self.count)
    }
}

/// Kills the children still running when the parent gives up.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Runs this executable's arguments as `procs` processes and combines
/// their reports; with `watch`, adds what it measured of the servers
/// ([`watch`]).
pub fn run(procs: usize, watch: Option<watch::Options>) -> io::Result<Report> {
    let mut watch = watch.map(Watch::start).transpose()?;
    let exe = std::env::current_exe()?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let mut children = Children(Vec::with_capacity(procs));
    let mut outputs: Vec<BufReader<ChildStdout>> = Vec::with_capacity(procs);
    for i in 0..procs {
        let mut child = Command::new(&exe)
            .args(&args)
            .arg("--child")
            .arg(format!("{i}/{procs}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = child.stdout.take().ok_or_else(|| io::Error::other("no stdout"))?;
        outputs.push(BufReader::new(out));
        children.0.push(child);
    }
    // Every process has its connections open before any starts. One that
    // could not open them all says so in a JSON line (the counts of
    // [`ConnectFailures`]) instead of `ready`: the others' are added to it,
    // and the run ends there with a report of the causes.
    let mut failures: Option<(String, ConnectFailures)> = None;
    let mut ready = 0usize;
    for (i, out) in outputs.iter_mut().enumerate() {
        match ready_or_failures(i, out)? {
            None => ready += 1,
            Some(line) => {
                let mode = line["mode"].as_str().unwrap_or("?").to_owned();
                let (_, sum) = failures.get_or_insert_with(|| (mode, ConnectFailures::default()));
                sum.merge(&line).map_err(io::Error::other)?;
            }
        }
    }
    if let Some((mode, failures)) = failures {
        let mut report = failures.report(&mode);
        report.human = format!(
            "{} (over the {} processes that failed; {ready} of {procs} opened all of theirs)",
            report.human,
            procs - ready
        );
        if let Value::Object(json) = &mut report.json {
            json.insert("procs".into(), json!(procs));
            json.insert("procs_ready".into(), json!(ready));
        }
        return Ok(report);
    }
    if let Some(watch) = &mut watch {
        watch.connected()?;
    }
    let mut stdins = Vec::with_capacity(procs);
    for child in &mut children.0 {
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "go")?;
            stdins.push(stdin);
        }
    }
    // Each process says when it has measured, its connections still open
    // (a fan-out's do; the others end without saying it): the servers are
    // looked at then, and the processes let go to close them.
    let mut jsons: Vec<Option<String>> = vec![None; procs];
    let mut all_measured = true;
    for (out, json) in outputs.iter_mut().zip(&mut jsons) {
        let mut measured = false;
        for line in out.lines() {
            let line = line?;
            if line == report::MEASURED {
                measured = true;
                break;
            }
            if line.starts_with('{') {
                *json = Some(line);
            }
        }
        all_measured &= measured;
    }
    // Only then: a run whose processes ended without saying it (an echo,
    // one that failed) has no moment with its connections open to look at.
    if all_measured && let Some(watch) = &mut watch {
        watch.measured()?;
    }
    drop(stdins);
    let mut lines = Vec::with_capacity(procs);
    for (i, (out, mut json)) in outputs.iter_mut().zip(jsons).enumerate() {
        for line in out.lines() {
            let line = line?;
            if line.starts_with('{') {
                json = Some(line);
            }
        }
        let status = children.0[i].wait()?;
        match json.map(|l| serde_json::from_str::<Value>(&l)) {
            Some(Ok(v)) => lines.push(v),
            Some(Err(e)) => return Err(io::Error::other(format!("process {i}: bad JSON line: {e}"))),
            None => {
                return Err(io::Error::other(format!(
                    "process {i} failed ({status}) without a report"
                )));
            }
        }
    }
    let mut report = combine(&lines).map_err(io::Error::other)?;
    if let Some(watch) = &watch {
        let (connections, deliveries) = match report.json["mode"].as_str() {
            // The publisher's connection is held too.
            Some("fanout") => (sum(&lines, "subscribers") + 1, sum(&lines, "delivered")),
            _ => (sum(&lines, "connections"), sum(&lines, "messages")),
        };
        let figures = watch.finish(connections, deliveries)?;
        report.human = format!("{}\n{}", report.human, watch::human(&figures));
        if let Value::Object(json) = &mut report.json {
            json.extend(figures);
        }
    }
    Ok(report)
}

/// Reads a process's output up to its `ready`: `None` once it is ready, or
/// the JSON line of a process that could not open its connections.
fn ready_or_failures(i: usize, out: &mut BufReader<ChildStdout>) -> io::Result<Option<Value>> {
    let mut said = Vec::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line == "ready" {
            return Ok(None);
        }
        if line.starts_with('{') {
            let json: Value = serde_json::from_str(line)
                .map_err(|e| io::Error::other(format!("process {i}: bad JSON line: {e}")))?;
            if json.get("connect_failures").is_some() {
                return Ok(Some(json));
            }
        }
        said.push(line.to_owned());
    }
    Err(io::Error::other(format!(
        "process {i} stopped before it was ready{}",
        if said.is_empty() {
            String::new()
        } else {
            format!(": {}", said.join(" / "))
        }
    )))
}

/// The mean of a field over the processes, if every one has it.
fn mean(lines: &[Value], key: &str) -> Option<f64> {
    let sum: Option<f64> = lines.iter().map(|v| v[key].as_f64()).sum();
    sum.map(|s| s / lines.len() as f64)
}

/// The sum of a whole-number field over the processes (missing: 0).
fn sum(lines: &[Value], key: &str) -> u64 {
    lines.iter().map(|v| v[key].as_u64().unwrap_or(0)).sum()
}

/// One report from the JSON lines of the processes of one run.
pub fn combine(lines: &[Value]) -> Result<Report, String> {
    let first = lines.first().ok_or("no process reported")?;
    let mode = first["mode"]
        .as_str()
        .ok_or("a report without a mode")?
        .to_owned();
    if lines.iter().any(|v| v["mode"].as_str() != Some(mode.as_str())) {
        return Err("the processes ran different modes".into());
    }
    let mut json = Map::new();
    let mut problems = Vec::new();
    json.insert("mode".into(), json!(mode));
    json.insert("procs".into(), json!(lines.len()));
    let copy = |json: &mut Map<String, Value>, keys: &[&str]| {
        for &k in keys {
            json.insert(k.into(), first[k].clone());
        }
    };
    let add = |json: &mut Map<String, Value>, keys: &[&str]| {
        for &k in keys {
            json.insert(k.into(), json!(sum(lines, k)));
        }
    };
    let (what, count) = match mode.as_str() {
        "echo" => {
            copy(&mut json, &["size", "binary"]);
            add(&mut json, &["connections", "messages"]);
            ("msg", sum(lines, "messages"))
        }
        "latency" => {
            copy(&mut json, &["size"]);
            add(&mut json, &["connections"]);
            json.insert(
                "offered_rate".into(),
                json!(
                    lines
                        .iter()
                        .filter_map(|v| v["offered_rate"].as_f64())
                        .sum::<f64>()
                ),
            );
            add(&mut json, &["sent", "messages", "missing"]);
            ("msg", sum(lines, "messages"))
        }
        "fanout" => {
            copy(
                &mut json,
                &["transport", "size", "rate", "raw", "deflate", "json_payload"],
            );
            add(&mut json, &["subscribers"]);
            let publishers: Vec<&Value> = lines.iter().filter(|v| v["publisher"] == json!(true)).collect();
            let [publisher] = publishers[..] else {
                return Err(format!("{} processes published, not one", publishers.len()));
            };
            let published = publisher["published"].as_u64().unwrap_or(0);
            if lines.iter().any(|v| v["published"].as_u64() != Some(published)) {
                problems.push("the processes counted different numbers of messages published".to_owned());
            }
            json.insert("published".into(), json!(published));
            json.insert("publisher_echoes".into(), publisher["publisher_echoes"].clone());
            // The server's memory, as the publishing process read it (it
            // also started the peak over).
            for key in [
                "server_rss_start",
                "server_rss_end",
                "server_peak_rss",
                "server_peak_rss_of_run",
                "server_rss_file_start",
                "server_rss_anon_start",
                "server_rss_file_end",
                "server_rss_anon_end",
            ] {
                if let Some(v) = publisher.get(key).filter(|v| !v.is_null()) {
                    json.insert(key.into(), v.clone());
                }
            }
            add(
                &mut json,
                &[
                    "delivered",
                    "missing",
                    "out_of_order",
                    "unreadable",
                    "bad_ids",
                    "incomplete_subscribers",
                    "closed_subscribers",
                    "compressed",
                    "wire_bytes",
                ],
            );
            let busy = lines
                .iter()
                .filter_map(|v| v["busy_s"].as_f64())
                .fold(0.0, f64::max);
            let delivered = sum(lines, "delivered");
            json.insert(
                "delivered_per_s_while_busy".into(),
                json!(if busy > 0.0 {
                    (delivered as f64 / busy).round()
                } else {
                    0.0
                }),
            );
            ("events", delivered)
        }
        other => return Err(format!("mode {other} does not run as several processes")),
    };
    let span = Span {
        wall: mean(lines, "wall_s").ok_or("a report without wall_s")?,
        server_cpu: mean(lines, "server_cpu_s"),
        server_system: mean(lines, "server_system_s"),
        own_cpu: lines.iter().filter_map(|v| v["loadgen_cpu_s"].as_f64()).sum(),
        // The same server watched over the same span by each: their mean.
        server_switches: mean(lines, "server_context_switches").map(|m| m.round() as u64),
    };
    json.extend(span.rates(what, count));
    if mode == "fanout" {
        // Each event's first and last read over every process.
        let mut spread = Spread::new(1);
        for line in lines {
            spread.merge(&line["timeline"])?;
        }
        json.extend(spread.delivery_json());
        json.extend(super::fanout::per_delivery(
            sum(lines, "wire_bytes"),
            span.server_cpu,
            count,
        ));
    }

    // The histograms, merged: every key any process sent.
    let mut hists: Vec<(String, Histogram<u64>)> = Vec::new();
    for line in lines {
        let Some(map) = line["hist"].as_object() else {
            return Err("a report without histogram counts".into());
        };
        for (key, counts) in map {
            let at = match hists.iter().position(|(k, _)| k == key) {
                Some(at) => at,
                None => {
                    hists.push((key.clone(), report::latency_histogram()));
                    hists.len() - 1
                }
            };
            report::merge_counts(&mut hists[at].1, counts)?;
        }
    }
    for (key, h) in &hists {
        json.insert(key.clone(), report::percentiles_us(h));
    }
    let child_problems = sum(lines, "problems");
    json.insert("problems".into(), json!(child_problems + problems.len() as u64));
    if child_problems > 0 {
        problems.push(format!(
            "{child_problems} problems in the processes (shown above)"
        ));
    }
    let (main, label) = if mode == "echo" {
        ("rtt_us", "round trip")
    } else {
        ("latency_us", "latency")
    };
    let latency = hists.iter().find(|(k, _)| k == main).map_or_else(
        || "no samples".to_owned(),
        |(_, h)| format!("{label} {}", report::percentiles_human(h)),
    );
    Ok(Report {
        human: format!(
            "{mode} in {} processes: {count} {what} in {:.2} s: {}; {latency}",
            lines.len(),
            span.wall,
            span.rates_human(what, count)
        ),
        json: json.into(),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(values: &[u64]) -> Value {
        let mut h = report::latency_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        report::histogram_counts(&h)
    }

    #[test]
    fn shares_add_up() {
        for total in [1, 2, 7, 100, 101] {
            for count in 1..=4 {
                let parts: Vec<usize> = (0..count).map(|index| Share { index, count }.of(total)).collect();
                assert_eq!(parts.iter().sum::<usize>(), total);
                assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
            }
        }
        assert_eq!(Share::parse("1/3"), Ok(Share { index: 1, count: 3 }));
        assert!(Share::parse("3/3").is_err());
        assert!(Share::parse("x").is_err());
        assert!(Share::parse("0/0").is_err());
    }

    #[test]
    fn two_echo_processes_make_one_report() {
        let a = json!({"mode":"echo","connections":50,"size":20,"binary":false,"messages":1000,
            "wall_s":2.0,"server_cpu_s":1.0,"loadgen_cpu_s":0.5,"problems":0,
            "hist":{"rtt_us":counts(&[1000, 2000, 3000])}});
        let b = json!({"mode":"echo","connections":50,"size":20,"binary":false,"messages":3000,
            "wall_s":2.2,"server_cpu_s":1.2,"loadgen_cpu_s":0.7,"problems":0,
            "hist":{"rtt_us":counts(&[4000, 5000])}});
        let r = combine(&[a, b]).unwrap();
        let j = &r.json;
        assert!(r.problems.is_empty());
        assert_eq!(j["procs"], 2);
        assert_eq!(j["connections"], 100);
        assert_eq!(j["messages"], 4000);
        assert_eq!(j["wall_s"], 2.1);
        assert_eq!(j["server_cpu_s"], 1.1);
        assert_eq!(j["loadgen_cpu_s"], 1.2);
        assert_eq!(j["msg_per_s"], (4000.0f64 / 2.1).round());
        assert_eq!(j["msg_per_server_cpu_s"], (4000.0f64 / 1.1).round());
        assert_eq!(j["msg_per_loadgen_cpu_s"], (4000.0f64 / 1.2).round());
        assert_eq!(j["rtt_us"]["count"], 5);
        assert_eq!(j["rtt_us"]["p50"], 3.0);
        assert_eq!(j["rtt_us"]["max"], 5.0);
        assert!(j.get("hist").is_none());
        assert!(r.human.contains("echo in 2 processes: 4000 msg"), "{}", r.human);
    }

    #[test]
    fn fanout_takes_the_publisher_count_and_sums_the_rest() {
        let sub = |publisher: bool, delivered: u64, missing: u64, problems: u64| {
            json!({"mode":"fanout","transport":"ws","size":64,"rate":100.0,"raw":false,"subscribers":10,
            "publisher":publisher,"published":200,"publisher_echoes":if publisher {200} else {0},
            "delivered":delivered,"missing":missing,"out_of_order":0,"unreadable":0,"bad_ids":0,
            "incomplete_subscribers":u64::from(missing > 0),"closed_subscribers":0,"busy_s":2.0,
            "wall_s":2.0,"server_cpu_s":0.5,"loadgen_cpu_s":0.1,"problems":problems,
            "server_rss_file_end":if publisher {json!(3_000_000)} else {Value::Null},
            "server_rss_anon_end":if publisher {json!(9_000_000)} else {Value::Null},
            "hist":{"latency_us":counts(&[100_000; 3])},
            // Message 1, published at 1 ms by the publisher, read from 2
            // to 4 ms there and at 9 ms in the other process.
            "timeline": if publisher {
                json!({"sent":[1_000_000],"first":[2_000_000],"last":[4_000_000]})
            } else {
                json!({"sent":[0],"first":[9_000_000],"last":[9_000_000]})
            }})
        };
        let r = combine(&[sub(true, 2000, 0, 0), sub(false, 1990, 10, 1)]).unwrap();
        assert_eq!(r.json["published"], 200);
        assert_eq!(r.json["publisher_echoes"], 200);
        assert_eq!(r.json["server_rss_file_end"], 3_000_000);
        assert_eq!(r.json["server_rss_anon_end"], 9_000_000);
        assert_eq!(r.json["subscribers"], 20);
        assert_eq!(r.json["delivered"], 3990);
        assert_eq!(r.json["missing"], 10);
        assert_eq!(r.json["incomplete_subscribers"], 1);
        assert_eq!(r.json["events_per_server_cpu_s"], 7980.0);
        assert_eq!(r.json["delivered_per_s_while_busy"], 1995.0);
        assert_eq!(r.json["latency_us"]["count"], 6);
        // Within the histogram's three significant digits.
        let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() <= want / 1000.0;
        assert!(
            close(&r.json["first_delivery_us"]["max"], 1000.0),
            "{}",
            r.json["first_delivery_us"]
        );
        assert!(
            close(&r.json["last_delivery_us"]["max"], 8000.0),
            "{}",
            r.json["last_delivery_us"]
        );
        assert_eq!(r.json["problems"], 1);
        assert_eq!(r.problems.len(), 1);

        assert!(combine(&[sub(true, 1, 0, 0), sub(true, 1, 0, 0)]).is_err());
        let mut late = sub(false, 2000, 0, 0);
        late["published"] = json!(199);
        let r = combine(&[sub(true, 2000, 0, 0), late]).unwrap();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.json["problems"], 1);
    }

    #[test]
    fn latency_rates_add_up() {
        let part = |rate: f64| {
            json!({"mode":"latency","connections":5,"size":20,"offered_rate":rate,"sent":100,"messages":100,
                "missing":0,"wall_s":1.0,"server_cpu_s":0.2,"loadgen_cpu_s":0.9,"problems":0,
                "hist":{"latency_us":counts(&[10_000]),"latency_from_write_us":counts(&[9_000])}})
        };
        let r = combine(&[part(500.0), part(500.0)]).unwrap();
        assert_eq!(r.json["offered_rate"], 1000.0);
        assert_eq!(r.json["messages"], 200);
        assert_eq!(r.json["latency_from_write_us"]["p99"], 9.0);
        assert_eq!(r.json["loadgen_cpu_s"], 1.8);
        assert!(combine(&[part(1.0), json!({"mode":"echo"})]).is_err());
        let mut no_hist = part(1.0);
        no_hist.as_object_mut().unwrap().remove("hist");
        assert!(combine(&[no_hist]).is_err());
    }
}
