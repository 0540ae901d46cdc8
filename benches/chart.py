#!/usr/bin/env python3
"""Draws compare.sh's results as an SVG bar chart: messages (fan-out:
deliveries) per server CPU-second, the median over rounds, for every
scenario and generator, a bar per server, each labelled with its ratio to
the baseline server (uWebSockets when it was measured).

    python3 benches/chart.py target/compare/results-*.jsonl --out compare.svg

Reads the JSON lines the load generator (and compare.sh's load_test
wrapper) wrote; other lines, idle runs and runs that found problems are
left out, as in `loadgen summary`. Python 3 standard library only.
"""

import argparse
import json
import statistics
import sys
from xml.sax.saxutils import escape

COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"]


def generator(line):
    if "generator" in line:
        return str(line["generator"])
    procs = line.get("procs") or 1
    return f"loadgen ×{procs}" if procs > 1 else "loadgen"


def scenario(line):
    mode = line.get("mode")
    if mode == "echo":
        return f"echo {line.get('connections')} × {line.get('size')} B", "msg"
    if mode == "fanout":
        rate = round(float(line.get("rate") or 0))
        return (
            f"fan-out {rate}/s × {line.get('size')} B to {line.get('subscribers')} {line.get('transport', 'ws')}"
            + (" json" if line.get("json_payload") else "") + (" deflate" if line.get("deflate") else ""),
            "events",
        )
    return None, None


def read(paths):
    """{(scenario, generator): {server: [values]}}, in order of appearance."""
    groups = {}
    servers = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for raw in f:
                if not raw.startswith("{"):
                    continue
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                name, what = scenario(line)
                server = line.get("server")
                if name is None or server is None:
                    continue
                if server not in servers:
                    servers.append(server)
                cell = groups.setdefault((name, generator(line)), {}).setdefault(server, [])
                value = line.get(f"{what}_per_server_cpu_s")
                if (line.get("problems") or 0) == 0 and isinstance(value, (int, float)) and value > 0:
                    cell.append(float(value))
    return groups, servers


def svg(groups, servers, baseline, title):
    if baseline in servers:
        servers = [baseline] + [s for s in servers if s != baseline]
    colour = {s: COLOURS[i % len(COLOURS)] for i, s in enumerate(servers)}
    bar, gap, label_w, bar_w, text_w = 18, 4, 400, 400, 230
    width = label_w + bar_w + text_w
    out = []
    y = 56
    for (name, gen), cells in groups.items():
        medians = {s: statistics.median(v) for s, v in cells.items() if v}
        if not medians:
            continue
        top = max(medians.values())
        base = medians.get(baseline)
        rows = [s for s in servers if s in medians]
        out.append(
            f'<text x="8" y="{y + 12}" font-weight="bold">{escape(name)}</text>'
            f'<text x="8" y="{y + 28}" fill="#555">{escape(gen)}</text>'
        )
        for s in rows:
            v = medians[s]
            length = max(1.0, bar_w * v / top)
            ratio = f" ({v / base:.2f}× {baseline})" if base and s != baseline else ""
            out.append(
                f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar}" fill="{colour[s]}">'
                f"<title>{escape(s)}: {v:,.0f}</title></rect>"
                f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(s)}</text>'
                f'<text x="{label_w + length + 6:.1f}" y="{y + 13}">{v:,.0f}{escape(ratio)}</text>'
            )
            y += bar + gap
        y += max(0, 34 - len(rows) * (bar + gap)) + 14
    if not out:
        return None
    height = y + 24
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="8" y="22" font-size="15" font-weight="bold">{escape(title)}</text>'
        f'<text x="8" y="40" fill="#555">messages (fan-out: deliveries) per server CPU-second, '
        f"median over rounds; bars scaled within each scenario; ratios to {escape(baseline)}</text>"
    )
    return head + "".join(out) + f'<text x="8" y="{height - 8}" fill="#555">longer is better</text></svg>\n'


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="JSON lines from compare.sh")
    p.add_argument("--baseline", default="uwebsockets", help="the server ratios are to")
    p.add_argument("--title", default="tether beside other WebSocket servers")
    p.add_argument("--out", required=True, help="the SVG file to write")
    a = p.parse_args(argv)
    groups, servers = read(a.files)
    text = svg(groups, servers, a.baseline, a.title)
    if text is None:
        print("chart.py: no echo or fan-out runs without problems to draw", file=sys.stderr)
        return 1
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
