#!/usr/bin/env bash
# The memory of two builds of tether side by side, file-backed and
# anonymous apart: whether the code layout of the packaged build
# (crates/cli/build.rs, TETHER_CODE_LAYOUT=on) is worth having in a plain
# `cargo install` too. The layout changes which pages of the executable a
# running server touches (RssFile, the code), not what it allocates
# (RssAnon); both are read from /proc/PID/status.
#
#   PLAIN_BIN=path/to/tether LAYOUT_BIN=path/to/tether bash benches/layout-memory.sh
#
# Options: --rounds N (default 3), --connections N (default 1000), --out
# FILE (the JSON lines; default under target/). For each round, each build
# in turn (the order alternates) runs `serve --app hub --memory --threads
# 1`: its RSS is read once it listens and has idled a second ("start"),
# then after `loadgen idle` has opened N WebSockets, held them a second and
# closed them, and a fan-out of a few messages to 100 subscribers
# ("warm": the code of a connection's life has run once). Nothing is built
# but the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=3
CONNECTIONS=1000
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --connections) CONNECTIONS=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "layout-memory.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
for var in PLAIN_BIN LAYOUT_BIN; do
    [ -x "${!var:-}" ] || { echo "layout-memory.sh: set $var to a tether binary" >&2; exit 2; }
done
export CARGO_TERM_COLOR=never
cargo build --release -p tether-benches --bin loadgen
LOADGEN=$PWD/target/release/loadgen
mkdir -p target/layout-memory
OUT=${OUT:-target/layout-memory/results-$(date +%Y%m%d-%H%M%S).jsonl}
# shellcheck source=run-line.sh
source "$(dirname "$0")/run-line.sh"
run_line layout-memory "bash benches/layout-memory.sh" >"$OUT"
LOGS=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$LOGS"
}
trap cleanup EXIT

# RssFile and RssAnon of a process, in KiB: "FILE ANON".
split() { awk '/^RssFile:/ { f = $2 } /^RssAnon:/ { a = $2 } END { print f, a }' "/proc/$1/status"; }

measure() { # name binary round
    local name=$1 bin=$2 round=$3 addr="" start warm
    : >"$LOGS/server.log" # emptied before the child runs, or the wait below reads the last server's lines
    "$bin" serve --app hub --memory --ws-publish 'bench.*' --threads 1 --port 0 --log-level warn \
        >>"$LOGS/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 200); do
        addr=$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$LOGS/server.log" | head -1)
        [ -n "$addr" ] && break
        sleep 0.05
    done
    [ -n "$addr" ] || { cat "$LOGS/server.log"; echo "layout-memory.sh: $name did not start" >&2; exit 1; }
    sleep 1
    start=$(split "$SERVER_PID")
    "$LOADGEN" idle --addr "$addr" --path /topics/bench.idle/ws -c "$CONNECTIONS" --settle 1 --hold 1 >"$LOGS/idle.out" 2>&1 ||
        { cat "$LOGS/idle.out"; exit 1; }
    "$LOADGEN" fanout --addr "$addr" --raw --pub-path '/topics/bench.fan/ws?format=raw' -n 100 -r 50 -s 20 \
        -d 1 --drain 2 >"$LOGS/fanout.out" 2>&1 || { cat "$LOGS/fanout.out"; exit 1; }
    sleep 1
    warm=$(split "$SERVER_PID")
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    read -r sf sa <<<"$start"
    read -r wf wa <<<"$warm"
    echo "{\"mode\":\"layout-memory\",\"server\":\"$name\",\"round\":$round,\"rss_file_start_kib\":$sf,\"rss_anon_start_kib\":$sa,\"rss_file_warm_kib\":$wf,\"rss_anon_warm_kib\":$wa,\"binary_bytes\":$(stat -c %s "$bin")}" >>"$OUT"
    echo "   $name round $round: start $sf KiB file / $sa KiB anon; warm $wf KiB file / $wa KiB anon"
}

echo "== layout-memory: $ROUNDS rounds; load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then
        measure plain "$PLAIN_BIN" "$round"
        measure layout "$LAYOUT_BIN" "$round"
    else
        measure layout "$LAYOUT_BIN" "$round"
        measure plain "$PLAIN_BIN" "$round"
    fi
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"mode"' in l]
print("| build | binary MB | file KiB at start | anon KiB at start | file KiB warm | anon KiB warm |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
med = {}
for name in ("plain", "layout"):
    rs = [r for r in rows if r["server"] == name]
    m = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k.endswith("_kib") or k == "binary_bytes"}
    med[name] = m
    print(f"| {name} | {m['binary_bytes'] / 1e6:.1f} | {m['rss_file_start_kib']:.0f} | {m['rss_anon_start_kib']:.0f} "
          f"| {m['rss_file_warm_kib']:.0f} | {m['rss_anon_warm_kib']:.0f} |")
ratio = lambda k: med["layout"][k] / med["plain"][k]
print(f"\nlayout / plain (medians): file at start {ratio('rss_file_start_kib'):.2f}, file warm "
      f"{ratio('rss_file_warm_kib'):.2f}, anon warm {ratio('rss_anon_warm_kib'):.2f}")
PY
echo "layout-memory: JSON lines in $OUT"
