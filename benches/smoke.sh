#!/usr/bin/env bash
# A short run of every load generator mode against `tether serve --app demo`
# (about 15 seconds): echo (with every byte checked), latency, fan-out
# through a hub chat topic to WebSocket and to SSE subscribers (every event
# checked, in order), and idle
# connections that must answer the server's pings to stay open. A check
# fails when the load generator exits non-zero: a connection failed, an
# echo differed, a subscriber missed an event or got one out of order.
# Nothing here judges speed. Ends with "loadgen: N passed, M failed".
#
# Uses $TETHER_BIN when set (CI builds it), else builds tether in release.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
if [ -z "${TETHER_BIN:-}" ]; then
    cargo build --release -p tether
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

# Pings every half second and a 1.5 s idle timeout: a connection that does
# not answer pings is closed within the idle check below.
"$TETHER_BIN" serve --app demo --port 0 --log-level warn --ping-interval 0.5 --idle-timeout 1.5 \
    >"$LOGS/server.log" 2>&1 &
SERVER_PID=$!
ADDR=""
for _ in $(seq 100); do
    ADDR=$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$LOGS/server.log" | head -1)
    [ -n "$ADDR" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ADDR" ]; then
    cat "$LOGS/server.log"
    echo "smoke: tether serve did not start"
    echo "loadgen: 0 passed, 1 failed"
    exit 1
fi
echo "tether serve --app demo on $ADDR (pid $SERVER_PID)"

passed=0
failed=0
check() { # name, then the loadgen arguments
    local name=$1
    shift
    if timeout 60 "$LOADGEN" "$@" --addr "$ADDR" --pid "$SERVER_PID" >"$LOGS/out" 2>"$LOGS/err"; then
        passed=$((passed + 1))
        echo "ok   $name: $(head -1 "$LOGS/out")"
    else
        failed=$((failed + 1))
        echo "FAIL $name: loadgen $*"
        cat "$LOGS/out" "$LOGS/err"
    fi
}

check "echo 4 x 20 B" echo --path /echo -c 4 -s 20 -d 2 --warmup 0.3 --verify
check "echo 4 x 64 KiB binary" echo --path /echo -c 4 -s 65536 -d 1 --warmup 0.2 --verify --binary
check "latency 4 conns at 2000/s" latency --path /echo -c 4 -s 20 -r 2000 -d 2 --warmup 0.3 --drain 3
check "fanout 20 ws subscribers" fanout --transport ws -n 20 -r 200 -s 64 -d 2 --drain 3 \
    --pub-path /topics/chat.smoke-ws/ws
check "fanout 20 sse subscribers" fanout --transport sse -n 20 -r 200 -s 64 -d 2 --drain 3 \
    --pub-path /topics/chat.smoke-sse/ws --sub-path /topics/chat.smoke-sse/events
check "idle 100 conns through pings" idle --path /echo -c 100 --settle 0.5 --hold 2.5

kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

echo "loadgen: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
