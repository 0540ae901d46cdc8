# Sourced by h2.sh and h3.sh (not run by itself): the release binaries, one
# `tether serve` with its log and its CPU time, an SSE fan-out run with the
# load generator, and a ratio. The caller has `set -euo pipefail`, is at
# the repository's root, and sets BENCH (the name in its last line,
# "BENCH: N passed, M failed"), DURATION and RATE before calling these.

export CARGO_TERM_COLOR=never
if [ -z "${TETHER_BIN:-}" ]; then
    # The code layout of the packaged binary (crates/cli/build.rs), which is what users run.
    TETHER_CODE_LAYOUT=${TETHER_CODE_LAYOUT:-on} cargo build --release -p tether
    TETHER_BIN=$PWD/target/release/tether
fi
cargo build --release -p tether-benches --bin loadgen
LOADGEN=$PWD/target/release/loadgen

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

passed=0
failed=0

# Starts `tether serve` with these arguments (and --port 0) and waits for
# the line that says where it listens; sets SERVER_PID and ADDR (host:port
# of the first listening line, whatever its scheme). Exits the script,
# with its last line, if the server does not start.
start_tether() {
    : >"$LOGS/server.log" # emptied before the child runs, or the wait below reads the last server's lines
    "$TETHER_BIN" serve "$@" --port 0 --log-level warn >>"$LOGS/server.log" 2>&1 &
    SERVER_PID=$!
    ADDR=""
    for _ in $(seq 100); do
        ADDR=$(sed -n 's|.*listening on https\{0,1\}://\([^/]*\)/.*|\1|p' "$LOGS/server.log" | head -1)
        [ -n "$ADDR" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$ADDR" ]; then
        cat "$LOGS/server.log"
        echo "$BENCH: 0 passed, 1 failed"
        exit 1
    fi
}

# Stops the server start_tether started.
stop_tether() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# The first match of a sed expression (`s|...|\1|p`) in the server's log.
server_log_value() { sed -n "$1" "$LOGS/server.log" | head -1; }

# The server's CPU time in clock ticks (utime + stime).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
TICKS=$(getconf CLK_TCK)

# One SSE fan-out run, every event checked: a name (also the hub topic's),
# then the load generator's arguments (--addr, -n, -r, the protocol). Its
# figures go into EPS, CPU_EPS, NS_PER (server CPU ns per delivery) and
# P99 (µs) under the name.
declare -A EPS CPU_EPS NS_PER P99
fanout_run() {
    local name=$1
    shift
    if timeout $((DURATION * 4 + 120)) "$LOADGEN" fanout --pid "$SERVER_PID" --transport sse \
        -s 64 -d "$DURATION" --drain 5 \
        --pub-path "/topics/chat.bench-$name/ws" --sub-path "/topics/chat.bench-$name/events" "$@" \
        >"$LOGS/fanout" 2>&1; then
        local json
        json=$(grep '^{' "$LOGS/fanout")
        field() { python3 -c "import json,sys; v=json.load(sys.stdin)$1; print(v if v is not None else 'n/a')" <<<"$json"; }
        EPS[$name]=$(field '["events_per_s"]')
        CPU_EPS[$name]=$(field '["events_per_server_cpu_s"]')
        NS_PER[$name]=$(field '["server_cpu_ns_per_delivery"]')
        P99[$name]=$(field '["latency_us"]["p99"]')
        passed=$((passed + 1))
        echo "ok   fanout $name: $(head -1 "$LOGS/fanout")"
    else
        failed=$((failed + 1))
        echo "FAIL fanout $name"
        cat "$LOGS/fanout"
    fi
}

# a / b to two decimals, or n/a.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
