#!/usr/bin/env bash
# What half-open HTTP/3 handshakes cost a server, and whether it gets the
# memory back: for tether builds side by side, a flood of QUIC handshakes
# that never complete, RSS before, at the peak and after the handshake
# timeout, over several floods.
#
#   BINS="old/target/release/tether target/release/tether" bash benches/h3-half-open.sh
#
# Options: --count N (handshakes a flood, default 1000: under the 1024 a
# loop holds at once), --rounds N (floods one after another, default 4),
# --timeout S (the server's --handshake-timeout, default 5), --out FILE
# (the JSON lines; default under target/). Each build runs `serve --app
# hub --memory` with one loop, TLS and HTTP/3; the flood (crates/quic's
# half_open_flood example) sends each client's first flight from a
# loopback address of its own (127.1.x.y: no bound per source applies),
# answers a Retry as a client with a real address would, then reads
# nothing more. RssAnon is read from /proc/PID/status before the first
# flood, once a flood's first flights are all sent (the peak), and once
# its handshakes have timed out and drained; the half-open count is
# `tether_quic_half_open` from /metrics (n/a where a build does not export
# it). The bytes per handshake are (peak - before) / half-open. FLOOD
# (environment): the flood binary to use instead of building it. Linux only.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=1000
ROUNDS=4
TIMEOUT=5
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --count) COUNT=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        --timeout) TIMEOUT=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "h3-half-open.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
read -r -a BUILDS <<<"${BINS:-}"
[ "${#BUILDS[@]}" -gt 0 ] || { echo "h3-half-open.sh: set BINS to one or more tether binaries" >&2; exit 2; }
for bin in "${BUILDS[@]}"; do
    [ -x "$bin" ] || { echo "h3-half-open.sh: $bin is not an executable" >&2; exit 2; }
done
export CARGO_TERM_COLOR=never
if [ -z "${FLOOD:-}" ]; then
    cargo build --release -p tether-quic --example half_open_flood
    FLOOD=$PWD/target/release/examples/half_open_flood
fi
mkdir -p target/h3-half-open
OUT=${OUT:-target/h3-half-open/results-$(date +%Y%m%d-%H%M%S).jsonl}
# shellcheck source=run-line.sh
source "$(dirname "$0")/run-line.sh"
# shellcheck source=tls-files.sh
source "$(dirname "$0")/tls-files.sh"
names=()
# A build is named by its checkout's directory (CHECKOUT/target/release/tether).
for bin in "${BUILDS[@]}"; do names+=("$(basename "$(dirname "$(dirname "$(dirname "$(realpath "$bin")")")")")"); done
run_line h3-half-open "bash benches/h3-half-open.sh --count $COUNT --rounds $ROUNDS --timeout $TIMEOUT" \
    "builds=${names[*]}" >"$OUT"
LOGS=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$LOGS"
}
trap cleanup EXIT
make_tls_files "$LOGS/tls"

anon() { awk '/^RssAnon:/ { print $2 * 1024 }' "/proc/$1/status"; }
# tether_quic_half_open from the server's /metrics, or n/a.
half_open() {
    curl -s "http://$1/metrics" | awk '/^tether_quic_half_open / { print $2; found = 1 } END { if (!found) print "n/a" }'
}
# Waits until the server at $1 holds no half-open handshake (or, for a
# build without the gauge, the handshake timeout and a margin).
drained() {
    if [ "$(half_open "$1")" = n/a ]; then
        sleep $((TIMEOUT + 3))
        return
    fi
    for _ in $(seq $((TIMEOUT * 20 + 200))); do
        [ "$(half_open "$1")" = 0 ] && { sleep 2; return; }
        sleep 0.1
    done
    echo "h3-half-open.sh: half-open handshakes never drained" >&2
    exit 1
}

for i in "${!BUILDS[@]}"; do
    bin=${BUILDS[$i]}
    name=${names[$i]}
    : >"$LOGS/server.log" # emptied before the child runs, or the wait below reads the last server's lines
    "$bin" serve --app hub --memory --threads 1 --port 0 --log-level warn \
        --tls-listen 127.0.0.1:0 --tls-cert "$LOGS/tls/server.pem" --tls-key "$LOGS/tls/server.key" \
        --http3 on --handshake-timeout "$TIMEOUT" >>"$LOGS/server.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    addr="" h3=""
    for _ in $(seq 100); do
        addr=$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$LOGS/server.log" | head -1)
        h3=$(sed -n 's|^HTTP/3 on udp://\([^/]*\)/.*|\1|p' "$LOGS/server.log" | head -1)
        [ -n "$addr" ] && [ -n "$h3" ] && break
        sleep 0.1
    done
    [ -n "$h3" ] || { cat "$LOGS/server.log"; echo "h3-half-open.sh: $name did not start" >&2; exit 1; }
    sleep 1
    before=$(anon "$pid")
    echo "$name: RssAnon before $((before / 1024)) KiB"
    for round in $(seq "$ROUNDS"); do
        "$FLOOD" "$h3" "$COUNT" $((TIMEOUT + 2)) >"$LOGS/flood" 2>&1 &
        flood=$!
        for _ in $(seq 600); do
            grep -q '^first flights' "$LOGS/flood" && break
            kill -0 "$flood" 2>/dev/null || break
            sleep 0.1
        done
        grep -q '^first flights' "$LOGS/flood" || { cat "$LOGS/flood"; exit 1; }
        sleep 0.5
        peak=$(anon "$pid")
        held=$(half_open "$addr")
        wait "$flood"
        drained "$addr"
        after=$(anon "$pid")
        per=$(awk -v p="$peak" -v b="$before" -v h="$held" 'BEGIN { if (h + 0 > 0) printf "%d", (p - b) / h; else print "n/a" }')
        echo "$name flood $round: $(cat "$LOGS/flood"); half-open $held; RssAnon peak $((peak / 1024)) KiB, after $((after / 1024)) KiB; $per B per half-open handshake"
        printf '{"build":"%s","round":%d,"count":%d,"half_open":"%s","rss_anon_before":%d,"rss_anon_peak":%d,"rss_anon_after":%d,"bytes_per_half_open":"%s","flood":"%s"}\n' \
            "$name" "$round" "$COUNT" "$held" "$before" "$peak" "$after" "$per" "$(cat "$LOGS/flood")" >>"$OUT"
    done
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
echo "results in $OUT"
