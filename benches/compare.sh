#!/usr/bin/env bash
# Side-by-side echo benchmark of tether and the strongest Rust WebSocket
# servers (benches/peers): each server pinned to core 0, the load generator
# to core 1, servers in alternating order over several rounds; then a table
# of medians and each server's ratio to tether.
#
#   bash benches/compare.sh            # the full comparison (about 6 minutes)
#   bash benches/compare.sh --quick    # a smoke run of the same (about 1 minute)
#
# Options: --rounds N (default 2), --duration SECONDS per echo scenario
# (default 10), --idle N idle connections (default 10000), --servers "a b"
# (default: all four), --out FILE (the JSON lines; default under target/).
# Run it on a quiet machine: it reports the load average it started with.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=2
DURATION=10
WARMUP=1
IDLE=10000
SCENARIOS="100x20 200x16384 500x16384"
SERVERS="tether tokio-tungstenite fastwebsockets tokio-websockets"
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ROUNDS=1 DURATION=2 WARMUP=0.5 IDLE=1000 ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --idle) IDLE=$2; shift ;;
        --servers) SERVERS=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

export CARGO_TERM_COLOR=never
echo "== building (release): tether, the load generator, the peers"
cargo build --release -p tether
cargo build --release -p tether-benches --bin loadgen
cargo build --release --manifest-path benches/peers/Cargo.toml --target-dir target/peers
TETHER=target/release/tether
LOADGEN=target/release/loadgen
PEERS=target/peers/release

# Each connection is a descriptor, in the servers and in the load generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((IDLE + 100)) ]; then
    echo "compare.sh: the open-files limit ($(ulimit -n)) is too low for --idle $IDLE" >&2
    exit 1
fi

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 0)
    LOADGEN_PIN=(taskset -c 1)
else
    echo "compare.sh: fewer than 2 cores or no taskset: running unpinned" >&2
    SERVER_PIN=()
    LOADGEN_PIN=()
fi

mkdir -p target/compare
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-target/compare/results-$STAMP.jsonl}
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

server_cmd() { # name port
    case "$1" in
        tether) echo "$TETHER serve --app echo --threads 1 --port $2 --log-level warn" ;;
        tokio-tungstenite | fastwebsockets | tokio-websockets) echo "$PEERS/echo-$1 --port $2" ;;
        *) echo "compare.sh: unknown server $1" >&2; return 1 ;;
    esac
}

start_server() { # name port
    local cmd log=$LOGS/$1-$2.log
    cmd=$(server_cmd "$1" "$2")
    : >"$log"
    # shellcheck disable=SC2086 # the command is words on purpose
    "${SERVER_PIN[@]}" $cmd >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "compare.sh: $1 did not start:" >&2
    cat "$log" >&2
    return 1
}

stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

failures=0
run_loadgen() { # name round args...
    local name=$1 round=$2 line
    shift 2
    if ! "${LOADGEN_PIN[@]}" "$LOADGEN" "$@" --pid "$SERVER_PID" --tag "server=$name" --tag "round=$round" \
        >"$LOGS/run.out" 2>"$LOGS/run.err"; then
        failures=$((failures + 1))
        echo "   FAILED: loadgen $*" >&2
        cat "$LOGS/run.err" >&2
    fi
    line=$(head -1 "$LOGS/run.out" || true)
    [ -n "$line" ] && echo "   $name: $line"
    grep '^{' "$LOGS/run.out" >>"$OUT" || true
}

echo
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), \
$(free -g | awk '/^Mem:/ {print $2 " GiB"}') memory"
echo "== load before: $(uptime | sed 's/.*load average/load average/')"
echo "== $ROUNDS rounds; echo ${DURATION}s after ${WARMUP}s warm-up: $SCENARIOS; idle $IDLE connections"

read -r -a servers <<<"$SERVERS"
for round in $(seq "$ROUNDS"); do
    order=("${servers[@]}")
    if [ $((round % 2)) -eq 0 ]; then
        order=()
        for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
    fi
    for name in "${order[@]}"; do
        # A port per server and round: no connection of an earlier run (in
        # TIME_WAIT) shares a 4-tuple with this one.
        for i in "${!servers[@]}"; do [ "${servers[i]}" = "$name" ] && index=$i; done
        port=$((9400 + round * 10 + index))
        echo "-- round $round: $name on port $port"
        start_server "$name" "$port"
        # Idle first, on a fresh process, so its RSS baseline is clean.
        run_loadgen "$name" "$round" idle --addr "127.0.0.1:$port" -c "$IDLE" --settle 1 --hold 1
        for scenario in $SCENARIOS; do
            run_loadgen "$name" "$round" echo --addr "127.0.0.1:$port" \
                -c "${scenario%x*}" -s "${scenario#*x}" -d "$DURATION" --warmup "$WARMUP"
        done
        stop_server
    done
done

echo
echo "== $(date '+%Y-%m-%d %H:%M %Z'); load after: $(uptime | sed 's/.*load average/load average/')"
echo "== medians over $ROUNDS rounds (JSON lines in $OUT); × tether: a server's figure over tether's"
echo "   (above 1 is better than tether for msg/s, worse for RSS)"
echo
"$LOADGEN" summary "$OUT"
if [ "$failures" -gt 0 ]; then
    echo
    echo "compare.sh: $failures runs failed (left out of the table)" >&2
    exit 1
fi
