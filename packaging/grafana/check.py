#!/usr/bin/env python3
"""The Grafana dashboard (packaging/grafana/tether.json) against a real
server: every metric named by a panel's query, and by the dashboard's
variables, is one `tether serve` exports.

    TETHER_BIN=target/debug/tether python3 packaging/grafana/check.py

It starts `tether serve --app hub` on a free port of the loopback, with a
publish token and per-topic series, publishes once and holds an event
stream open (so that the counters have moved and the transports have a
connection), scrapes /metrics, and checks each panel's queries. A name
counts as exported when a sample of that name is on the page, or when
the page declares it (`# TYPE NAME`): a histogram's `NAME_bucket`,
`NAME_sum` and `NAME_count` are its samples. Prints one "ok" or "FAIL"
line per check and "grafana: N passed, M failed", as the packaging checks
do. Without $TETHER_BIN, target/debug/tether or target/release/tether is
used, else it is built.
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(ROOT, "packaging", "grafana", "tether.json")
TOKEN = "grafana-check-token"

# PromQL words that are not metric names: aggregation modifiers, vector
# matching, set operators.
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "atan2", "inf", "nan",
}


def metric_names(expr):
    """The metric names a PromQL expression selects (sans-IO: text in,
    names out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\$\{?\w+\}?", "", text)  # dashboard variables
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    # Grouping and matching label lists.
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?\w+", " ", text)  # offset DURATION
    # Numbers, exponents included (not the digits of a name).
    text = re.sub(r"(?<![A-Za-z0-9_:.])[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        rest = text[match.end():].lstrip()
        if rest.startswith("("):  # a function
            continue
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def exported(page):
    """The names a /metrics page exports: its samples' and its `# TYPE`
    lines' (name -> type, `sample` for a name only seen in a sample)."""
    names = {}
    for line in page.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                names[parts[2]] = parts[3]
        elif line and not line.startswith("#"):
            name = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line)
            if name:
                names.setdefault(name.group(0), "sample")
    return names


def is_exported(name, names):
    if name in names:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and names.get(name[: -len(suffix)]) == "histogram":
            return True
    return False


def queries(dashboard):
    """(where, expr) for every panel target and every query variable."""
    found = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]))
            walk(panel.get("panels", []))  # rows

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and isinstance(query, str):
            # label_values(METRIC, LABEL): the metric is the selector.
            inner = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", query)
            found.append((f"variable {variable.get('name')!r}", inner.group(1) if inner else query))
    return found


def tether_binary():
    binary = os.environ.get("TETHER_BIN")
    if binary:
        return binary
    for candidate in ("target/debug/tether", "target/release/tether"):
        path = os.path.join(ROOT, candidate)
        if os.access(path, os.X_OK):
            return path
    subprocess.run(["cargo", "build", "-q", "-p", "tether"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target/debug/tether")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=None, token=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read().decode()


def scrape_running_server():
    port = free_port()
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [tether_binary(), "serve", "--app", "hub", "--port", str(port), "--log-level", "warn",
         "--publish-token", TOKEN, "--metrics-topics"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    stream = None
    try:
        for _ in range(200):
            try:
                http(port, "GET", "/healthz")
                break
            except OSError:
                if server.poll() is not None:
                    break
                time.sleep(0.05)
        else:
            raise RuntimeError("the server did not answer")
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError("the server ended: " + log.read().decode(errors="replace"))
        # A subscriber, whose stream is read up to its first bytes (it is
        # open), and a publish that reaches it.
        stream = socket.create_connection(("127.0.0.1", port), timeout=5)
        stream.sendall(b"GET /topics/grafana/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        stream.recv(1)
        status, _ = http(port, "POST", "/topics/grafana", body=b"hello", token=TOKEN)
        if status != 200:
            raise RuntimeError(f"publish: {status}")
        _, page = http(port, "GET", "/metrics")
        return page
    finally:
        if stream:
            stream.close()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main():
    passed = failed = 0

    def check(what, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {what}")
        else:
            failed += 1
            print(f"FAIL {what}{': ' + detail if detail else ''}")

    # The parser itself, on what the dashboard's queries look like: the
    # names it must find, and none of the words around them.
    for expr, want in [
        ('histogram_quantile(0.99, sum by (le, hook) (rate(a_seconds_bucket{instance=~"$instance"}[5m])))',
         {"a_seconds_bucket"}),
        ("sum(rate(a_sum[1m])) / sum(rate(a_count[1m])) > 1e-3", {"a_sum", "a_count"}),
        ("rate(x2_total[5m] offset 1h) * 2.5E+2", {"x2_total"}),
        ('time() - b{job="x"} and on (instance) c == bool 1', {"b", "c"}),
    ]:
        got = metric_names(expr)
        check(f"parser: {expr}", got == want, f"got {sorted(got)}")

    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    found = queries(dashboard)
    check("the dashboard has queries", len(found) > 0)
    ids = [p.get("id") for p in dashboard.get("panels", [])]
    check("every panel has its own id", len(ids) == len(set(ids)) and None not in ids)

    page = scrape_running_server()
    names = exported(page)
    # The check can fail: a name the server does not export is caught.
    check("a name the server lacks is caught", not is_exported("tether_no_such_metric_total", names))
    for where, expr in found:
        selected = metric_names(expr)
        missing = sorted(n for n in selected if not is_exported(n, names))
        check(f"{where}: {', '.join(sorted(selected))}", selected and not missing,
              f"not exported: {', '.join(missing)}" if missing else "no metric in the query")

    print(f"grafana: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
