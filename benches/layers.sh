#!/usr/bin/env bash
# Echo throughput of two tether builds side by side, and of the second over
# TLS: each server pinned to core 0, the load generator (this tree's) to
# core 1, in alternating order over several rounds; then the medians with
# ratios to the first build and to the second one in plaintext.
#
#   BEFORE_BIN=path/to/old/tether AFTER_BIN=path/to/new/tether bash benches/layers.sh
#
# Options: --rounds N (default 4), --duration SECONDS per scenario
# (default 5), --scenarios "100x20 200x16384" (connections x bytes),
# --sse-fanout "1000@500" (event-stream subscribers @ events a second of
# 20 B, published over a WebSocket to one hub topic; "" for none), --out
# FILE (the JSON lines; default under target/). The servers are "before"
# (BEFORE_BIN), "after" (AFTER_BIN) and "after-tls" (AFTER_BIN serving TLS
# with a certificate from a throwaway CA made with openssl, which the load
# generator trusts with --ca). Each runs `serve --app echo --threads 1`
# for the echo scenarios, and "before" and "after" `serve --app hub
# --memory --threads 1` for the fan-out. Nothing is built but the load
# generator.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=4
DURATION=5
WARMUP=1
SCENARIOS="100x20 200x16384"
SSE_FANOUT="1000@500"
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --sse-fanout) SSE_FANOUT=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "layers.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
: "${BEFORE_BIN:?set BEFORE_BIN to the tether binary to compare against}"
: "${AFTER_BIN:?set AFTER_BIN to the tether binary to measure}"
command -v openssl >/dev/null || { echo "layers.sh: openssl is needed for the TLS server's certificate" >&2; exit 1; }

export CARGO_TERM_COLOR=never
cargo build --release -p tether-benches --bin loadgen
LOADGEN=target/release/loadgen

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 0)
    LOADGEN_PIN=(taskset -c 1)
else
    echo "layers.sh: fewer than 2 cores or no taskset: running unpinned" >&2
    SERVER_PIN=()
    LOADGEN_PIN=()
fi

mkdir -p target/layers
OUT=${OUT:-target/layers/results-$(date +%Y%m%d-%H%M%S).jsonl}
LOGS=$(mktemp -d)
: >"$OUT"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$LOGS"
}
trap cleanup EXIT

# A throwaway CA and a certificate it signs for 127.0.0.1.
{
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=tether-bench-ca -keyout "$LOGS/ca.key" -out "$LOGS/ca.pem" &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
            -keyout "$LOGS/server.key" -out "$LOGS/server.csr" &&
        printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
            'keyUsage=digitalSignature' 'extendedKeyUsage=serverAuth' >"$LOGS/ext.cnf" &&
        openssl x509 -req -in "$LOGS/server.csr" -CA "$LOGS/ca.pem" -CAkey "$LOGS/ca.key" \
            -CAcreateserial -days 2 -extfile "$LOGS/ext.cnf" -out "$LOGS/server.pem"
} >"$LOGS/openssl.log" 2>&1 || { cat "$LOGS/openssl.log" >&2; exit 1; }

start_server() { # name port [app arguments; default: the echo]
    local bin=$AFTER_BIN tls=() log=$LOGS/$1-$2.log name=$1 port=$2
    shift 2
    local app=("$@")
    [ ${#app[@]} -eq 0 ] && app=(--app echo)
    [ "$name" = before ] && bin=$BEFORE_BIN
    [ "$name" = after-tls ] && tls=(--tls-cert "$LOGS/server.pem" --tls-key "$LOGS/server.key")
    "${SERVER_PIN[@]}" "$bin" serve "${app[@]}" --threads 1 --port "$port" --log-level warn "${tls[@]}" \
        >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "layers.sh: $name did not start:" >&2
    cat "$log" >&2
    return 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "== load before: $(uptime | sed 's/.*load average/load average/')"
echo "== $ROUNDS rounds; echo ${DURATION}s after ${WARMUP}s warm-up: $SCENARIOS; SSE fan-out: ${SSE_FANOUT:-none}"
failures=0
servers=(before after after-tls)
for round in $(seq "$ROUNDS"); do
    order=("${servers[@]}")
    [ $((round % 2)) -eq 0 ] && order=(after-tls after before)
    for name in "${order[@]}"; do
        for i in "${!servers[@]}"; do [ "${servers[i]}" = "$name" ] && index=$i; done
        # A port per server and round: nothing left in TIME_WAIT shares a
        # 4-tuple with this run.
        port=$((9600 + round * 10 + index))
        addr=127.0.0.1:$port
        ca=()
        [ "$name" = after-tls ] && addr=wss://$addr ca=(--ca "$LOGS/ca.pem")
        echo "-- round $round: $name on port $port"
        start_server "$name" "$port"
        for scenario in $SCENARIOS; do
            if ! "${LOADGEN_PIN[@]}" "$LOADGEN" echo --addr "$addr" "${ca[@]}" -c "${scenario%x*}" \
                -s "${scenario#*x}" -d "$DURATION" --warmup "$WARMUP" --pid "$SERVER_PID" \
                --tag "server=$name" --tag "round=$round" >"$LOGS/run.out" 2>"$LOGS/run.err"; then
                failures=$((failures + 1))
                echo "   FAILED: $(cat "$LOGS/run.err")" >&2
            fi
            echo "   $(head -1 "$LOGS/run.out" || true)"
            grep '^{' "$LOGS/run.out" >>"$OUT" || true
        done
        stop_server
        # SSE fan-out through the hub (plaintext builds only): every
        # subscriber checks each event arrives, once and in order.
        if [ -n "$SSE_FANOUT" ] && [ "$name" != after-tls ]; then
            port=$((port + 5))
            start_server "$name" "$port" --app hub --memory --ws-publish bench.fan
            if ! "${LOADGEN_PIN[@]}" "$LOADGEN" fanout --addr "127.0.0.1:$port" --transport sse \
                --pub-path /topics/bench.fan/ws --sub-path /topics/bench.fan/events \
                -n "${SSE_FANOUT%@*}" -r "${SSE_FANOUT#*@}" -s 20 -d "$DURATION" --drain 3 \
                --pid "$SERVER_PID" --tag "server=$name" --tag "round=$round" \
                >"$LOGS/run.out" 2>"$LOGS/run.err"; then
                failures=$((failures + 1))
                echo "   FAILED: $(cat "$LOGS/run.err")" >&2
            fi
            echo "   $(head -1 "$LOGS/run.out" || true)"
            grep '^{' "$LOGS/run.out" >>"$OUT" || true
            stop_server
        fi
    done
done

echo
echo "== $(date '+%Y-%m-%d %H:%M %Z'); load after: $(uptime | sed 's/.*load average/load average/')"
echo "== medians over $ROUNDS rounds (JSON lines in $OUT); ratios to before:"
"$LOADGEN" summary "$OUT" --baseline before
echo
echo "== ratios to after (plaintext):"
"$LOADGEN" summary "$OUT" --baseline after
[ "$failures" -eq 0 ] || { echo "layers.sh: $failures runs failed" >&2; exit 1; }
