#!/usr/bin/env bash
# One scenario against many fresh server processes, tether's and
# uWebSockets' in turn, to see how far one start of a server differs from
# the next: the echo's messages per server CPU-second over --rounds fresh
# servers of each (the spread: (max - min) / median), with each server's
# system calls and context switches per message counted by the kernel;
# then the memory of a fan-out, the server's RSS split into its code
# (file-backed) and its anonymous part, and the anonymous growth per
# subscriber.
#
#   UWS_ECHO=path UWS_PUBSUB=path bash benches/fresh-servers.sh
#   bash benches/fresh-servers.sh --rounds 2 --duration 2 --subscribers 100   # a smoke run, tether only
#
# Options: --rounds N fresh servers of each (10), --runs-per-server K
# measured echoes against each fresh server, one after another (1; more
# tell what a process brings from its start from what the moment brings:
# tables.py shows the spread within a process beside the spread between
# them), --scenario CxS (200x16384:
# 200 connections, 16 KiB messages), --duration SECONDS per echo (8),
# --subscribers "N ..." for the memory part (1000 10000; empty: none),
# --rate R messages a second of the fan-out (25), --out FILE (the JSON lines;
# default under target/). tether: `serve --app echo --threads 1` and `serve
# --app hub --memory --ws-publish bench.fan --threads 1`; uWebSockets: the
# UWS_ECHO and UWS_PUBSUB servers compare.sh describes, built by you
# (nothing of uWebSockets is in this repository). Each server on core 0,
# the load generator on core 1, the order of the two servers alternating
# from round to round; a server is started for one measurement and stopped
# after it.
#
# The counts: a second, 2-second echo against the same server under `perf
# stat` with the syscalls tracepoints (recvfrom, sendto, read, write,
# writev, epoll_wait) and context switches, divided by that run's
# messages; left out (and said) where perf cannot count them. The
# throughput run itself is never under perf.
#
# Tables: python3 benches/tables.py show spread FILE, and show
# fanout-memory FILE.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=10
RUNS_PER_SERVER=1
SCENARIO=200x16384
DURATION=8
SUBSCRIBERS="1000 10000"
RATE=25
OUT=""
COMMAND="bash benches/fresh-servers.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --runs-per-server) RUNS_PER_SERVER=$2; shift ;;
        --scenario) SCENARIO=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --subscribers) SUBSCRIBERS=$2; shift ;;
        --rate) RATE=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h | --help) sed -n '2,37p' "$0"; exit 0 ;;
        *) echo "fresh-servers.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$SCENARIO" in
    [0-9]*x[0-9]*) ;;
    *) echo "fresh-servers.sh: --scenario is CONNECTIONSxSIZE, e.g. 200x16384" >&2; exit 2 ;;
esac

export CARGO_TERM_COLOR=never
if [ -z "${TETHER_BIN:-}" ]; then
    TETHER_CODE_LAYOUT=${TETHER_CODE_LAYOUT:-on} cargo build --release -p tether
    TETHER_BIN=$PWD/target/release/tether
fi
cargo build --release -p tether-benches --bin loadgen
LOADGEN=$PWD/target/release/loadgen
mkdir -p target/fresh-servers
OUT=${OUT:-target/fresh-servers/$(date +%Y%m%d-%H%M%S).jsonl}

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 0)
    LOADGEN_PIN=(taskset -c 1)
else
    echo "fresh-servers.sh: fewer than 2 cores or no taskset: running unpinned" >&2
    SERVER_PIN=()
    LOADGEN_PIN=()
fi

EVENTS=syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,context-switches
PERF=""
if command -v perf >/dev/null && perf stat -x, -e "$EVENTS" -- true 2>/dev/null; then
    PERF=perf
else
    echo "fresh-servers.sh: perf cannot count the syscalls tracepoints here: no counts per message" >&2
fi

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

# shellcheck source=run-line.sh
. benches/run-line.sh
run_line fresh-servers "$COMMAND" scenario="$SCENARIO" >"$OUT"

start() { # kind(echo|pubsub) server -> SERVER_PID, PORT
    local kind=$1 server=$2 log=$LOGS/server.log
    PORT=$((20000 + RANDOM % 20000))
    : >"$log"
    case "$server/$kind" in
        tether/echo) "${SERVER_PIN[@]}" "$TETHER_BIN" serve --app echo --threads 1 --port "$PORT" --log-level warn >"$log" 2>&1 & ;;
        tether/pubsub) "${SERVER_PIN[@]}" "$TETHER_BIN" serve --app hub --memory --ws-publish bench.fan --threads 1 \
            --port "$PORT" --log-level warn >"$log" 2>&1 & ;;
        uwebsockets/echo) "${SERVER_PIN[@]}" "$UWS_ECHO" "$PORT" >"$log" 2>&1 & ;;
        uwebsockets/pubsub) "${SERVER_PIN[@]}" "$UWS_PUBSUB" "$PORT" >"$log" 2>&1 & ;;
    esac
    SERVER_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "fresh-servers.sh: $server did not start:" >&2
    cat "$log" >&2
    exit 1
}

stop() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# The counts of a short echo under perf, merged into the throughput run's
# line as syscalls_per_message and context_switches_per_message.
counted_echo() { # server round
    local line counts
    line=$(grep '^{' "$LOGS/run.out" | head -1)
    if [ -n "$PERF" ]; then
        perf stat -x, -e "$EVENTS" -p "$SERVER_PID" -o "$LOGS/perf.txt" &
        local perf_pid=$!
        sleep 0.2
        "${LOADGEN_PIN[@]}" "$LOADGEN" echo --addr "127.0.0.1:$PORT" -c "${SCENARIO%x*}" -s "${SCENARIO#*x}" \
            -d 2 --warmup 0 >"$LOGS/count.out" 2>/dev/null || true
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        counts=$(python3 - "$LOGS/perf.txt" "$LOGS/count.out" <<'PY'
import json, sys
counts = {}
for line in open(sys.argv[1]):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[0].isdigit():
        counts[parts[2].split(":")[-1].replace("sys_enter_", "")] = int(parts[0])
run = next((json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")), None)
if run and run.get("messages"):
    n = run["messages"]
    cs = counts.pop("context-switches", None)
    print(json.dumps({"syscalls_per_message": {k: round(v / n, 3) for k, v in counts.items() if v},
                      "context_switches_per_message": None if cs is None else round(cs / n, 4),
                      "counted_messages": n}))
PY
        )
        [ -n "$counts" ] && line=$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); a.update(json.loads(sys.argv[2])); print(json.dumps(a))' "$line" "$counts")
    fi
    echo "$line" >>"$OUT"
}

servers=(tether)
[ -n "${UWS_ECHO:-}" ] && servers+=(uwebsockets)
[ -z "${UWS_ECHO:-}" ] && echo "fresh-servers.sh: UWS_ECHO not set: tether's echo alone" >&2
echo "== echo $SCENARIO, $ROUNDS fresh servers each, ${DURATION}s each; JSON lines in $OUT"
for round in $(seq "$ROUNDS"); do
    order=("${servers[@]}")
    if [ $((round % 2)) -eq 0 ]; then order=(); for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done; fi
    for server in "${order[@]}"; do
        start echo "$server"
        for run in $(seq "$RUNS_PER_SERVER"); do
            "${LOADGEN_PIN[@]}" "$LOADGEN" echo --addr "127.0.0.1:$PORT" -c "${SCENARIO%x*}" -s "${SCENARIO#*x}" \
                -d "$DURATION" --warmup 1 --pid "$SERVER_PID" --tag "server=$server" --tag "round=$round" \
                --tag "run=$run" >"$LOGS/run.out" 2>"$LOGS/run.err" || { cat "$LOGS/run.err" >&2; exit 1; }
            echo "   round $round $server run $run: $(head -1 "$LOGS/run.out")"
            counted_echo "$server" "$round"
        done
        stop
    done
done

pubsub=(tether)
[ -n "${UWS_PUBSUB:-}" ] && pubsub+=(uwebsockets)
for subs in $SUBSCRIBERS; do
    echo "== fan-out memory: $subs subscribers x 20 B at $RATE/s"
    for round in 1 2; do
        for server in "${pubsub[@]}"; do
            start pubsub "$server"
            target=/topics/bench.fan/ws?format=raw
            [ "$server" = uwebsockets ] && target=/
            "${LOADGEN_PIN[@]}" "$LOADGEN" fanout --raw --addr "127.0.0.1:$PORT" --pub-path "$target" \
                --sub-path "$target" -n "$subs" -r "$RATE" -s 20 -d 4 --drain 5 --pid "$SERVER_PID" \
                --tag "server=$server" --tag "round=$round" >"$LOGS/run.out" 2>"$LOGS/run.err" ||
                { cat "$LOGS/run.err" >&2; exit 1; }
            echo "   round $round $server: $(head -1 "$LOGS/run.out")"
            grep '^{' "$LOGS/run.out" >>"$OUT"
            stop
        done
    done
done

echo
python3 benches/tables.py show spread "$OUT"
if [ -n "$SUBSCRIBERS" ]; then
    echo
    python3 benches/tables.py show fanout-memory "$OUT"
fi
