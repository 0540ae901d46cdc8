#!/usr/bin/env bash
# HTTP/2 beside HTTP/1.1 against one `tether serve` in one run:
#
# 1. h2load (nghttp2-client) requests per second on /healthz: h2c with
#    prior knowledge (C clients, M streams in flight on each) and
#    HTTP/1.1 (h2load --h1, C clients, one request in flight on each),
#    with the server's CPU seconds read from /proc around each run.
# 2. SSE fan-out with the load generator: S subscribers as S HTTP/1.1
#    connections, then as streams of S/K HTTP/2 connections (--h2
#    --streams-per-conn K), every event checked, events per second and per
#    server CPU-second.
#
# Prints each run and the ratios h2/h1. A benchmark, not a test: the
# figures mean something only on a quiet machine (see benches/README.md).
# Ends with "h2-bench: N passed, M failed" (a run that failed, not a
# figure that disappointed).
#
# Knobs (environment): THREADS (server loops, 1), DURATION (seconds a run,
# 5), CLIENTS (h2load clients, 16), STREAMS (h2load streams per h2
# client, 32), SUBSCRIBERS (fan-out, 1000), PER_CONN (streams per h2
# connection in the fan-out, 100), RATE (fan-out messages/s, 200).
# Uses $TETHER_BIN when set, else builds tether in release.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-1}
DURATION=${DURATION:-5}
CLIENTS=${CLIENTS:-16}
STREAMS=${STREAMS:-32}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
PER_CONN=${PER_CONN:-100}
RATE=${RATE:-200}

if ! command -v h2load >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null
    else
        echo "h2.sh: h2load is missing (Debian: apt-get install nghttp2-client)"
        echo "h2-bench: 0 passed, 1 failed"
        exit 1
    fi
fi

BENCH=h2-bench
# shellcheck source=fanout-common.sh
. benches/fanout-common.sh

start_tether --app demo --memory --threads "$THREADS" --max-connections $((SUBSCRIBERS + 1000))
echo "tether serve --app demo --threads $THREADS on http://$ADDR (pid $SERVER_PID)"

declare -A RPS CPU_RPS
h2load_run() { # name, then h2load's protocol arguments
    local name=$1
    shift
    local before after
    before=$(cpu_ticks)
    if h2load "$@" -c "$CLIENTS" -D "$DURATION" "http://$ADDR/healthz" >"$LOGS/h2load" 2>&1 &&
        grep -q '^status codes: .* 0 4xx, 0 5xx' "$LOGS/h2load"; then
        after=$(cpu_ticks)
        local rps done
        rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$LOGS/h2load")
        done=$(sed -n 's/^requests: .* \([0-9]*\) succeeded.*/\1/p' "$LOGS/h2load")
        RPS[$name]=$rps
        CPU_RPS[$name]=$(awk -v n="$done" -v t=$((after - before)) -v hz="$TICKS" \
            'BEGIN { c = t / hz; if (c > 0) printf "%.0f", n / c; else print "n/a" }')
        passed=$((passed + 1))
        echo "ok   h2load $name: $rps req/s, ${CPU_RPS[$name]} req/server-CPU-s"
    else
        failed=$((failed + 1))
        echo "FAIL h2load $name"
        cat "$LOGS/h2load"
    fi
}
h2load_run h2c -m "$STREAMS"
h2load_run h1 --h1

fanout_run h1 --addr "$ADDR" -n "$SUBSCRIBERS" -r "$RATE"
fanout_run h2 --addr "$ADDR" -n "$SUBSCRIBERS" -r "$RATE" --h2 --streams-per-conn "$PER_CONN"

echo
echo "| run | h1 | h2 | h2/h1 |"
echo "| --- | ---: | ---: | ---: |"
echo "| /healthz req/s (h2load, $CLIENTS clients, h2: $STREAMS streams each) | ${RPS[h1]:-} | ${RPS[h2c]:-} | $(ratio "${RPS[h2c]:-0}" "${RPS[h1]:-0}") |"
echo "| /healthz req per server CPU-s | ${CPU_RPS[h1]:-} | ${CPU_RPS[h2c]:-} | $(ratio "${CPU_RPS[h2c]:-0}" "${CPU_RPS[h1]:-0}") |"
echo "| SSE fan-out events/s ($SUBSCRIBERS subscribers, h2: $PER_CONN a connection) | ${EPS[h1]:-} | ${EPS[h2]:-} | $(ratio "${EPS[h2]:-0}" "${EPS[h1]:-0}") |"
echo "| SSE fan-out events per server CPU-s | ${CPU_EPS[h1]:-} | ${CPU_EPS[h2]:-} | $(ratio "${CPU_EPS[h2]:-0}" "${CPU_EPS[h1]:-0}") |"
echo
echo "h2-bench: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
