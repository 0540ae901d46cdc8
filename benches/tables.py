#!/usr/bin/env python3
"""The benchmark tables, made from the JSON lines the benchmarks write.

    python3 benches/tables.py show KIND FILE.jsonl   # print one run's table
    python3 benches/tables.py keep KIND FILE.jsonl   # make it the current run
    python3 benches/tables.py update                 # rewrite README's tables
    python3 benches/tables.py check                  # fail if one is stale

KIND is what the lines are, and so how they are read:

    echo         loadgen echo and idle lines, and compare.sh's load_test
                 lines (compare.sh): per scenario and generator, each
                 server's messages per server CPU-second, its ratio to the
                 baseline server and the range of that ratio over rounds
    fanout       compare.sh's pub/sub fan-out lines: the highest rate
                 every round sustained, latency and peak RSS at the first
    fanout-deflate  compare.sh's compressed fan-out pairs
    scale        scale.sh's lines: memory per connection (RSS, its
                 anonymous part, the kernel's), code per server, latency,
                 deliveries, connect failures by cause
    spread       fresh-servers.sh's echo lines: each server's messages per
                 server CPU-second over its fresh processes, their spread,
                 the kernel's share and system calls per message
    fanout-memory  fresh-servers.sh's fan-out lines: code and anonymous
                 memory apart, anonymous growth per subscriber
    tokio        tokio.sh's lines: tether-tokio beside the tokio peers
    criterion    lines of `criterion` below: the criterion benchmarks'
                 mean times, each beside its group's baseline

    CRITERION_HOME=$PWD/target/criterion-BENCH cargo bench -p tether-benches --bench BENCH
    python3 benches/tables.py criterion BENCH target/criterion-BENCH > FILE.jsonl

turns what one criterion benchmark left in its own directory into JSON
lines (after the line of benches/run-line.sh's run_line; CRITERION_HOME must be
an absolute path: a relative one is taken from the benchmark's package
directory).

A run's file may start with a line {"run": {...}}: its date, commit, load
average, cores and command, which the table's caption gives. `keep` copies
a run's file to benches/results/data/ (the name the README's marker
gives) and updates the pages. In benches/README.md and
docs/src/benchmarks.md a table is the text between

    <!-- table KIND results/data/NAME.jsonl -->
    <!-- end table -->

and `update` writes it anew from that file; `check` (in .ci/run) says
which tables differ from what their files give. Python 3's standard
library only.
"""

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
# The pages whose tables this writes; a marker's file is relative to benches/.
PAGES = [README, HERE.parent / "docs/src/benchmarks.md"]
MARKER = re.compile(r"^<!-- table (\S+) (\S+) -->$")
END = "<!-- end table -->"


def read(path):
    run, rows = {}, []
    for line in Path(path).read_text().splitlines():
        if not line.startswith("{"):
            continue
        value = json.loads(line)
        if "run" in value and len(value) == 1:
            run = value["run"]
        else:
            rows.append(value)
    return run, rows


def caption(run):
    if not run:
        return []
    parts = [run.get("date"), run.get("commit") and f"commit {run['commit']}",
             run.get("cores") and f"{run['cores']} cores",
             run.get("load") and f"load average {' / '.join(run['load'].split())} (1, 5, 15 min) at the start"]
    text = "Run of " + ", ".join(p for p in parts if p)
    if run.get("command"):
        text += f": `{run['command']}`"
    return [text + ".", ""]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def num(x, digits=0):
    return "-" if x is None else f"{x:,.{digits}f}"


def generator(r):
    if r.get("generator"):
        return str(r["generator"])
    procs = r.get("procs") or 1
    return f"loadgen ×{procs}" if procs > 1 else "loadgen"


def echo_table(run, rows):
    baseline = run.get("baseline", "tether")
    cells = defaultdict(list)  # (scenario, generator) -> rows
    servers = []
    for r in rows:
        if r.get("mode") not in ("echo", "idle") or r.get("problems"):
            continue
        if r["server"] not in servers:
            servers.append(r["server"])
        tls = " TLS" if str(r.get("tls", "")) in ("1", "true", "True") else ""
        if r["mode"] == "echo":
            key = (f"echo {r['connections']} × {r['size']} B{tls}", generator(r))
        else:
            key = (f"idle {r['connections']}{tls}", "")
        cells[key].append(r)
    out = caption(run) + [
        f"| scenario | generator | server | msg/s | msg per server CPU-s | × {baseline} | range over rounds |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for (scenario, gen), rs in sorted(cells.items()):
        idle = scenario.startswith("idle")
        field = "rss_per_conn" if idle else "msg_per_server_cpu_s"
        by_server = defaultdict(list)
        for r in rs:
            by_server[r["server"]].append(r)
        base = by_server.get(baseline, [])
        base_med = median(r.get(field) for r in base)
        base_by_round = {r.get("round"): r.get(field) for r in base}
        for server in servers:
            if server not in by_server:
                continue
            srs = by_server[server]
            med = median(r.get(field) for r in srs)
            ratio = f"{med / base_med:.2f}" if med and base_med else "-"
            rounds = [r.get(field) / base_by_round[r.get("round")] for r in srs
                      if r.get(field) and base_by_round.get(r.get("round"))]
            spread = f"{min(rounds):.2f} to {max(rounds):.2f}" if len(rounds) > 1 else "-"
            if idle:
                out.append(f"| {scenario} | | {server} | RSS {num(med)} B a connection | | {ratio} | {spread} |")
            else:
                out.append(f"| {scenario} | {gen} | {server} | {num(median(r.get('msg_per_s') for r in srs))} "
                           f"| {num(med)} | {ratio} | {spread} |")
    out += ["", f"Medians over rounds; × {baseline}: the figure over {baseline}'s (for RSS, above 1 is worse)."]
    return out


def sustained(r):
    p99 = (r.get("latency_us") or {}).get("p99")
    return r.get("problems") == 0 and p99 is not None and p99 < 100_000


def fanout_table(run, rows):
    runs = defaultdict(list)
    for r in rows:
        if r.get("mode") == "fanout" and r.get("raw") and not r.get("json_payload"):
            runs[(r["server"], r["subscribers"], r["size"])].append(r)
    common = min((r["rate"] for rs in runs.values() for r in rs), default=0)
    out = caption(run) + [
        f"| server | subscribers | size | highest rate sustained | deliveries/s there "
        f"| p50 ms at {common:.0f}/s | p99 ms | p99.9 ms | peak RSS MiB | code MiB | anon MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    starred = False
    for (server, subs, size), rs in sorted(runs.items()):
        rounds = {r.get("round") for r in rs}
        by_rate = defaultdict(list)
        for r in rs:
            by_rate[r["rate"]].append(r)
        best = None
        for rate in sorted(by_rate):
            if len(by_rate[rate]) == len(rounds) and all(sustained(r) for r in by_rate[rate]):
                best = rate
        per_s = median(r["events_per_s"] for r in by_rate[best]) if best else None
        lat = [r["latency_us"] for r in by_rate.get(common, []) if r.get("latency_us")]

        def ms(k):
            return num(median(l.get(k) for l in lat) / 1000, 2) if lat else "-"
        peaks = [r for r in by_rate.get(common, []) if r.get("server_peak_rss")]
        peak = num(median(r["server_peak_rss"] for r in peaks) / 1048576, 1) if peaks else "-"
        if peaks and not all(r.get("server_peak_rss_of_run") for r in peaks):
            peak += "*"
            starred = True
        # The RSS at the run's end in its two parts (runs from before the
        # split have neither: "-").
        def mib(k):
            vs = [r[k] for r in by_rate.get(common, []) if r.get(k) is not None]
            return num(median(vs) / 1048576, 1) if vs else "-"
        out.append(f"| {server} | {subs} | {size} | {num(best) if best else 'none'} | {num(per_s)} "
                   f"| {ms('p50')} | {ms('p99')} | {ms('p99_9')} | {peak} "
                   f"| {mib('server_rss_file_end')} | {mib('server_rss_anon_end')} |")
    out += ["", "Sustained: every delivery, in order, p99 under 100 ms, in every round. Medians over rounds; "
            "peak RSS from VmHWM over the run at the first rate; code: the file-backed part of the RSS "
            "(RssFile: the executable and its libraries, shared and constant), anon: the anonymous part "
            "(RssAnon: heap and stacks, what grows with subscribers and queues), both at the end of that run."]
    if starred:
        out.append("(*: the peak counts from the server's start: /proc/PID/clear_refs could not be written.)")
    return out


def fanout_deflate_table(run, rows):
    runs = defaultdict(list)
    for r in rows:
        if r.get("mode") == "fanout" and r.get("json_payload"):
            runs[(r["server"], bool(r.get("deflate")))].append(r)
    out = caption(run) + [
        "| server | subscribers | bytes/delivery | × plain | server ns/delivery | × plain | compressed | problems |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for server in sorted({s for s, _ in runs}):
        plain = runs.get((server, False), [])
        pb = median(r.get("wire_bytes_per_delivery") for r in plain)
        pc = median(r.get("server_cpu_ns_per_delivery") for r in plain)
        for deflate in (False, True):
            rs = runs.get((server, deflate), [])
            if not rs:
                continue
            b = median(r.get("wire_bytes_per_delivery") for r in rs)
            c = median(r.get("server_cpu_ns_per_delivery") for r in rs)
            share = sum(r.get("compressed", 0) for r in rs) / max(1, sum(r.get("delivered", 0) for r in rs))
            ratio = lambda x, y: f"{x / y:.2f}" if x is not None and y else "-"
            out.append(f"| {server} | {'deflate' if deflate else 'plain'} | {num(b)} | {ratio(b, pb)} | {num(c)} "
                       f"| {ratio(c, pc)} | {share:.0%} | {sum(r.get('problems', 0) for r in rs)} |")
    out += ["", "Medians; × plain: the compressed subscribers' figure over the plain ones'."]
    return out


def scenario_key(scenario):
    """tokio.sh's scenarios, "CONNSxBYTES", then "-deflate" for a compressed
    echo and "-pN" for N messages in flight: plain ones first, then by
    connections and size."""
    shape, _, extra = scenario.partition("-")
    return ("deflate" in extra.split("-"), *(int(x) for x in shape.split("x")), extra)


def scenario_label(scenario):
    shape, _, extra = scenario.partition("-")
    words = [f"{part[1:]} in flight" if re.fullmatch(r"p\d+", part) else part
             for part in extra.split("-") if part]
    return shape.replace("x", " × ") + " B" + "".join(f", {w}" for w in words)


TOKIO_BOUNDS = ("floor-tokio",)


def tokio_table(run, rows):
    values = defaultdict(list)
    # The kernel's share of each server's CPU time, per row (loadgen's
    # lines carry it; load_test's do not).
    kernel = defaultdict(list)
    servers = []
    for r in rows:
        v = r.get("msg_per_server_cpu_s")
        if v is None:
            continue
        values[(str(r["threads"]), r["scenario"], generator(r), r["server"])].append(v)
        if r.get("server_system_s") is not None and r.get("server_cpu_s"):
            kernel[(str(r["threads"]), r["scenario"], generator(r))].append(r["server_system_s"] / r["server_cpu_s"])
        if r["server"] not in servers:
            servers.append(r["server"])
    ours = sorted(s for s in servers if s.startswith("tether-tokio"))
    # floor-tokio, the least an echo on tokio can do: a bound, not a peer; its own
    # ratio to the fastest peer is the most any server could show.
    ours += [s for s in servers if s in TOKIO_BOUNDS]
    peers = [s for s in servers if s not in ours]
    servers = ours + peers
    out = caption(run) + [
        "| runtime | scenario | generator | " + " | ".join(servers) + " | "
        + " | ".join(f"{s} / fastest peer" for s in ours) + " | kernel's share |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in servers + ours) + " | ---: |",
    ]
    scenarios = sorted({k[1] for k in values}, key=scenario_key)
    generators = sorted({k[2] for k in values})
    for threads in sorted({k[0] for k in values}):
        for scenario in scenarios:
            for gen in generators:
                med = {s: statistics.median(values[(threads, scenario, gen, s)]) for s in servers
                       if (threads, scenario, gen, s) in values}
                if not med:
                    continue
                fastest = max((med[p] for p in peers if p in med), default=None)
                cells = [num(med.get(s)) for s in servers]
                ratios = [f"{med[s] / fastest:.2f}" if fastest and s in med else "-" for s in ours]
                runtime = "current-thread" if threads == "0" else f"multi-thread, {threads} workers"
                shares = kernel.get((threads, scenario, gen))
                share = f"{statistics.median(shares):.0%}" if shares else "-"
                out.append(f"| {runtime} | {scenario_label(scenario)} | {gen} | "
                           + " | ".join(cells + ratios + [share]) + " |")
    out += ["", "Messages per server CPU-second, medians over rounds; then each tether-tokio "
            "server's figure over the fastest peer's in that row; the last column: the median over "
            "the row's servers and rounds of the server's CPU time spent in the kernel (its system time)."
            + (" floor-tokio (benches/src/bin/floor_tokio.rs) is the least an echo on tokio can do (one "
               "read, the unmask, one write; no checks): a bound, not a peer." if any(s in TOKIO_BOUNDS for s in servers) else "")]
    return out


# Each criterion group's baseline: the benchmark of the same parameter
# (size) whose function is named here ("{kind}": the part of the row's
# function before its first "_"), else a memcpy of the same bytes.
CRITERION_BASELINES = {
    "verify": "decode_unverified",
    "receive": "{kind}_copied",
    "log_append": "write_all",
    "log_append_fsync": "write_all_fdatasync",
    "log_replay_100k": "read_files",
    "log_recover_1gib": "read_files",
    "cursor": "decimal",
}


def criterion_table(run, rows):
    groups = defaultdict(list)
    for r in rows:
        groups[r["group"]].append(r)
    out = caption(run) + ["| group | benchmark | time | throughput | × baseline |", "| --- | --- | ---: | ---: | ---: |"]
    def order(r):
        param = r.get("param") or ""
        return (r["function"], int(param) if param.isdigit() else 0, param)

    for group, rs in groups.items():
        for r in sorted(rs, key=order):
            name = CRITERION_BASELINES.get(group, "memcpy").replace("{kind}", r["function"].split("_")[0])
            base = next((b for b in rs if b["function"] == name and b.get("param") == r.get("param")), None)
            ns = r["mean_ns"]
            time = f"{ns / 1e6:.3g} ms" if ns >= 1e6 else f"{ns / 1e3:.3g} µs" if ns >= 1e3 else f"{ns:.3g} ns"
            rate = r["bytes"] / ns * 1e9 / 2**20 if r.get("bytes") else None
            tput = "" if rate is None else f"{rate:,.0f} MiB/s" if rate >= 10 else f"{rate * 1024:,.0f} KiB/s"
            x = ns / base["mean_ns"] if base else None
            ratio = "baseline" if r is base else "-" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.3g}"
            ident = r["function"] + (f" / {r['param']}" if r.get("param") else "")
            out.append(f"| {group} | {ident} | {time} | {tput} | {ratio} |")
    out += ["", "Criterion's mean time per iteration; × baseline: that time over its group's baseline "
            "of the same size, measured in the same run."]
    return out


def scale_table(run, rows):
    """scale.sh's lines: one row a run (a rate), with memory per connection
    (the servers' RSS, its anonymous part, and the kernel's) and the
    file-backed part per server, latency, CPU, and what went missing or
    could not connect."""
    def failures(r):
        causes = r.get("connect_failures")
        return " ".join(f"{k} {v:,}" for k, v in sorted(causes.items())) if causes else "none"

    def ms(r, key, p):
        v = (r.get(key) or {}).get(p)
        return num(v / 1000, 1) if v is not None else "-"

    def mb(v):
        return num(v / 1e6, 1) if v is not None else "-"
    out = caption(run) + [
        "| bus | tls | ehash buckets | rate/s | connections | connect s | RSS B/conn | anon B/conn | code MB/server "
        "| TCP buf B/conn | slab B/conn | peak RSS MB | lat p50 ms | lat p99 ms | all p99 ms | deliveries/s "
        "| srv µs/deliv less idle | softirq µs/deliv | gen µs/deliv | close µs/conn | delivered | missing "
        "| connect failures |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        if r.get("mode") != "fanout":
            continue
        held = r.get("connections_held") or r.get("connections_opened")
        out.append(
            f"| {r.get('bus', 'redis')} | {r.get('tls', '0')} "
            f"| {num(int(r['ehash_buckets'])) if str(r.get('ehash_buckets', '')).isdigit() else '-'} "
            f"| {num(r.get('rate'))} | {num(held)} "
            f"| {num(r.get('connect_s'), 1)} | {num(r.get('server_rss_per_connection_b'))} "
            f"| {num(r.get('server_rss_anon_per_connection_b'))} | {mb(r.get('server_rss_file_per_server_b'))} "
            f"| {num(r.get('tcp_mem_per_connection_b'))} | {num(r.get('kernel_socket_slab_per_connection_b'))} "
            f"| {mb(r.get('server_peak_rss_sum'))} | {ms(r, 'latency_us', 'p50')} | {ms(r, 'latency_us', 'p99')} "
            f"| {ms(r, 'last_delivery_us', 'p99')} | {num(r.get('events_per_s'))} "
            f"| {num(r.get('servers_cpu_us_per_delivery_less_idle'), 2)} "
            f"| {num(r.get('machine_softirq_us_per_delivery'), 2)} "
            f"| {num(1e6 * r['loadgen_cpu_s'] / r['delivered'], 2) if r.get('loadgen_cpu_s') and r.get('delivered') else '-'} "
            f"| {num(r.get('servers_close_cpu_us_per_connection'), 2)} | {num(r.get('delivered'))} "
            f"| {num(r.get('missing'))} | {failures(r)} |")
    out += ["", "Per connection: the growth from before the connections to all of them open, over them. RSS: "
            "the servers' resident memory summed over their processes; anon: its anonymous part (RssAnon: heap "
            "and stacks, what grows with the connections); code: the file-backed part (RssFile: the executable "
            "and its libraries, the same pages mapped in each process, constant) per server process; TCP buf "
            "and slab: the kernel's socket buffers and socket slabs, both ends of each loopback connection. "
            "ehash buckets: the kernel's table of established connections in the run's network namespace "
            "(scale.sh --netns sizes it to the run). "
            "all p99: publish to the last subscriber's delivery. srv µs/deliv: the servers' CPU from "
            "the first publish to the last delivery, every connection still open (runs from before "
            "2026-11-28 counted until the load generator had exited, closing included: no close column); "
            "softirq µs/deliv: the machine's time in software interrupts over the same span, where "
            "loopback does the receiving end's TCP work, counted in no process; gen µs/deliv: the load "
            "generator's CPU, reading (the three share the same cores); "
            "close µs/conn: the servers' CPU to close them, after. Connect failures: connections not opened, by "
            "cause (source_ports is EADDRNOTAVAIL)."]
    return out


def spread_table(run, rows):
    """fresh-servers.sh's echo lines: each server's messages per server
    CPU-second over its fresh processes, their spread, and the kernel's
    counts per message."""
    by_server = defaultdict(list)
    for r in rows:
        if r.get("mode") == "echo":
            by_server[r["server"]].append(r)
    out = caption(run) + [
        "| server | fresh servers | median msg/CPU-s | min | max | spread | kernel share "
        "| switches/msg in the run | recv/msg | send/msg | epoll_wait/msg | switches/msg |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def per_msg(rs, *names):
        vs = [sum((r.get("syscalls_per_message") or {}).get(n, 0) for n in names)
              for r in rs if r.get("syscalls_per_message")]
        return num(median(vs), 2) if vs else "-"
    for server, rs in sorted(by_server.items()):
        rates = [r["msg_per_server_cpu_s"] for r in rs]
        med = median(rates)
        share = median(r["server_system_s"] / r["server_cpu_s"] for r in rs
                       if r.get("server_system_s") is not None and r.get("server_cpu_s"))
        switches = [r["context_switches_per_message"] for r in rs
                    if r.get("context_switches_per_message") is not None]
        in_run = [r["server_context_switches"] / r["messages"] for r in rs
                  if r.get("server_context_switches") is not None and r.get("messages")]
        out.append(f"| {server} | {len({r.get('round') for r in rs})} | {num(med)} | {num(min(rates))} | {num(max(rates))} "
                   f"| {num(100 * (max(rates) - min(rates)) / med, 1)} % "
                   f"| {'-' if share is None else num(100 * share, 1) + ' %'} "
                   f"| {num(median(in_run), 3) if in_run else '-'} "
                   f"| {per_msg(rs, 'recvfrom', 'read')} | {per_msg(rs, 'sendto', 'write', 'writev')} "
                   f"| {per_msg(rs, 'epoll_wait')} | {num(median(switches), 3) if switches else '-'} |")
    rounds = defaultdict(lambda: defaultdict(list))
    for server, rs in by_server.items():
        for r in rs:
            rounds[r.get("round")][server].append(r["msg_per_server_cpu_s"])
    ratios = [median(v["tether"]) / median(v["uwebsockets"]) for v in rounds.values()
              if "tether" in v and "uwebsockets" in v]
    out += ["", "Each row's runs: one fresh server process each, the servers in turn. Spread: (max - min) / "
            "median. Kernel share: the server's system time over its CPU time. Switches in the run: the "
            "server's context switches over the measured run (each a wait for work, mostly), per message. "
            "The other counts per message: "
            "a second, 2-second echo against the same process under perf stat (recv: recvfrom and read; "
            "send: sendto, write and writev)."]
    for server, rs in sorted(by_server.items()):
        pairs = [(r["server_context_switches"] / r["messages"], r["msg_per_server_cpu_s"]) for r in rs
                 if r.get("server_context_switches") is not None and r.get("messages")]
        if len(pairs) > 2 and len({x for x, _ in pairs}) > 1 and len({y for _, y in pairs}) > 1:
            out.append(f"{server}: correlation of a run's switches per message with its msg/CPU-s: "
                       f"{statistics.correlation(*zip(*pairs)):.2f}.")
    if ratios:
        out.append(f"tether over uWebSockets, round by round: median {num(median(ratios), 2)}, "
                   f"{num(min(ratios), 2)} to {num(max(ratios), 2)}.")
    return out + within_process(by_server)


def within_process(by_server):
    """With several runs against each fresh server (--runs-per-server):
    how far the runs of one process differ (what the moment brings) beside
    how far the processes' medians differ (what a start brings)."""
    procs = {server: defaultdict(list) for server in by_server}
    for server, rs in by_server.items():
        for r in rs:
            procs[server][r.get("round")].append(r["msg_per_server_cpu_s"])
    if not any(len(v) > 1 for p in procs.values() for v in p.values()):
        return []
    out = ["", "| server | fresh servers | runs each | spread within a process: median | largest "
           "| spread of the processes' medians |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for server, p in sorted(procs.items()):
        within = [100 * (max(v) - min(v)) / median(v) for v in p.values() if len(v) > 1]
        medians = [median(v) for v in p.values()]
        between = 100 * (max(medians) - min(medians)) / median(medians)
        out.append(f"| {server} | {len(p)} | {num(median(len(v) for v in p.values()))} "
                   f"| {num(median(within), 1)} % | {num(max(within), 1)} % | {num(between, 1)} % |")
    out += ["", "Within a process: (max - min) / median of the runs against one fresh server, one after "
            "another; between: the same of the servers' medians. A slow start would show as a process "
            "slow in all its runs (between much larger than within); a slow moment as runs of one "
            "process that differ as much as the processes do."]
    return out


def fanout_memory_table(run, rows):
    """fresh-servers.sh's fan-out lines: the server's RSS at the end in its
    file-backed part (code) and anonymous part, and the anonymous growth per
    subscriber."""
    cells = defaultdict(list)
    for r in rows:
        if r.get("mode") == "fanout" and r.get("server_rss_anon_end") is not None:
            cells[(r["subscribers"], r["server"])].append(r)
    out = caption(run) + [
        "| subscribers | server | runs | code KiB at start | code KiB at end | anon KiB at start "
        "| anon KiB at end | anon B per subscriber | peak RSS KiB | deliveries per server CPU-s | p99 ms | missing |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (subs, server), rs in sorted(cells.items()):
        def kib(k):
            return num(median(r.get(k) for r in rs) / 1024) if median(r.get(k) for r in rs) is not None else "-"
        growth = median((r["server_rss_anon_end"] - r["server_rss_anon_start"]) / subs for r in rs
                        if r.get("server_rss_anon_start") is not None)
        out.append(f"| {num(subs)} | {server} | {len(rs)} | {kib('server_rss_file_start')} "
                   f"| {kib('server_rss_file_end')} | {kib('server_rss_anon_start')} | {kib('server_rss_anon_end')} "
                   f"| {num(growth)} | {kib('server_peak_rss')} "
                   f"| {num(median(r.get('events_per_server_cpu_s') for r in rs))} "
                   f"| {num(median((r.get('latency_us') or {}).get('p99') for r in rs) / 1000, 2) if median((r.get('latency_us') or {}).get('p99') for r in rs) is not None else '-'} "
                   f"| {num(sum(r.get('missing', 0) for r in rs))} |")
    out += ["", "Medians over the runs, each on a fresh server. Code: RssFile, the executable and its "
            "libraries mapped from their files (shared, the same whatever the load); anon: RssAnon, heap "
            "and stacks, what the subscribers and their queues cost. At start: before the first "
            "subscriber connected; at end: after the last delivery. Anon per subscriber: the growth over "
            "the subscribers. Deliveries per server CPU-second and p99 (publish to delivery): the same runs, "
            "at 25/s, every delivery made: what a delivery costs and how late, not how many a server can make."]
    return out


TABLES = {"echo": echo_table, "fanout": fanout_table, "fanout-deflate": fanout_deflate_table,
          "tokio": tokio_table, "criterion": criterion_table, "scale": scale_table,
          "spread": spread_table, "fanout-memory": fanout_memory_table}


def criterion_lines(bench, root):
    """What `cargo bench --bench BENCH` left under root, as JSON lines: one
    per benchmark, its group, function, parameter, mean time and bytes per
    iteration."""
    lines = []
    for estimates in sorted(Path(root).glob("**/new/estimates.json")):
        info = json.loads((estimates.parent / "benchmark.json").read_text())
        mean = json.loads(estimates.read_text())["mean"]["point_estimate"]
        throughput = info.get("throughput") or {}
        lines.append({"bench": bench, "group": info["group_id"],
                      "function": info.get("function_id") or info["group_id"], "param": info.get("value_str"),
                      "mean_ns": round(mean, 1), "bytes": throughput.get("Bytes")})
    return lines


def blocks(text, page=README):
    """(start, end, kind, file) of each generated table in text's lines."""
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if m:
            end = next((j for j in range(i + 1, len(lines)) if lines[j] == END), None)
            if end is None:
                sys.exit(f"tables: {page.name}:{i + 1}: a table marker without '{END}'")
            found.append((i, end, m.group(1), m.group(2)))
    return lines, found


def regenerate(text, page=README):
    """text with every table made anew, and the tables that changed."""
    lines, found = blocks(text, page)
    changed = []
    for start, end, kind, name in reversed(found):
        if kind not in TABLES:
            sys.exit(f"tables: {page.name}:{start + 1}: no table kind '{kind}'")
        fresh = [""] + TABLES[kind](*read(HERE / name)) + [""]
        if lines[start + 1:end] != fresh:
            changed.append(f"{page.name}:{start + 1}: {kind} {name}")
        lines[start + 1:end] = fresh
    return "\n".join(lines), changed


def main(argv):
    if len(argv) == 3 and argv[0] == "show" and argv[1] in TABLES:
        print("\n".join(TABLES[argv[1]](*read(argv[2]))))
    elif len(argv) == 3 and argv[0] == "keep" and argv[1] in TABLES:
        text = README.read_text()
        names = {name for _, _, kind, name in blocks(text)[1] if kind == argv[1]}
        # Several tables of one kind (the criterion benchmarks): the one
        # whose file is named after the run's benchmark.
        bench = read(argv[2])[0].get("benchmark")
        if len(names) > 1:
            names = {n for n in names if Path(n).stem == bench}
        if len(names) != 1:
            sys.exit(f"tables: no single table of kind {argv[1]} for benchmark {bench} in {README.name}")
        target = HERE / names.pop()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Path(argv[2]).read_text())
        for page in PAGES:
            page.write_text(regenerate(page.read_text(), page)[0])
        print(f"tables: {target.relative_to(HERE.parent)} kept, the pages updated")
    elif argv in (["update"], ["check"]):
        count, stale = 0, []
        for page in PAGES:
            text = page.read_text()
            fresh, changed = regenerate(text, page)
            count += len(blocks(fresh, page)[1])
            stale += reversed(changed)
            if argv == ["update"]:
                page.write_text(fresh)
        if stale and argv == ["check"]:
            sys.exit("tables: not what their JSON lines give (python3 benches/tables.py update): " + "; ".join(stale))
        print(f"tables: {count} tables in benches/README.md and docs/src/benchmarks.md, each as its JSON lines give it")
    elif len(argv) in (2, 3) and argv[0] == "criterion":
        root = argv[2] if len(argv) == 3 else "target/criterion"
        for line in criterion_lines(argv[1], root):
            print(json.dumps(line))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
