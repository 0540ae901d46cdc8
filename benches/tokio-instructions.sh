#!/usr/bin/env bash
# Instructions per echoed message of tether-tokio's echo and the tokio
# peers', counted by valgrind's callgrind: a figure that the noise of a
# shared machine does not move, where tokio.sh's throughput runs cannot
# resolve a 10 % difference.
#
#   bash benches/tokio-instructions.sh
#   options: --servers "tether-tokio fastwebsockets", --scenarios "100x20",
#   --duration SECONDS of echo under callgrind (default 10), --no-build;
#   a server "tether-tokio=PATH" runs the hyper_echo binary at PATH (to
#   compare two builds of tether-tokio in one run).
#
# Each server (the commands of tokio.sh: hyper_echo and benches/peers, on
# a current-thread runtime) runs under callgrind once idle (start, then
# stop) and once per scenario under `loadgen echo` (text messages, no
# warm-up). A figure is (instructions of the loaded run - those of the
# idle run) / messages echoed; the handshakes are in it, spread over the
# messages. User space only: the kernel's work in send and receive is not
# counted. Needs valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVERS="tether-tokio fastwebsockets tokio-websockets"
SCENARIOS="100x20"
DURATION=10
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --servers) SERVERS=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "tokio-instructions.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "tokio-instructions.sh: valgrind is needed" >&2; exit 1; }

TARGET=${CARGO_TARGET_DIR:-target}
export CARGO_TERM_COLOR=never
if [ "$BUILD" = 1 ]; then
    cargo build --release -p tether-tokio --features hyper --example hyper_echo
    cargo build --release -p tether-benches --bin loadgen
    cargo build --release --manifest-path benches/peers/Cargo.toml --target-dir "$TARGET/peers"
fi
LOADGEN=$TARGET/release/loadgen
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

server_cmd() { # name[=path] port
    case "$1" in
        tether-tokio=*) echo "${1#*=} --port $2 --threads 0" ;;
        tether-tokio) echo "$TARGET/release/examples/hyper_echo --port $2 --threads 0" ;;
        tether-tokio-accept) echo "$TARGET/release/examples/hyper_echo --port $2 --threads 0 --accept 1" ;;
        tokio-tungstenite | fastwebsockets | tokio-websockets | axum) echo "$TARGET/peers/release/echo-$1 --port $2 --threads 0" ;;
        *) echo "tokio-instructions.sh: unknown server $1" >&2; return 1 ;;
    esac
}

# Prints "instructions messages" of one run under callgrind.
measure() { # server port scenario|idle
    local out=$WORK/callgrind.out log=$WORK/server.log messages=0
    rm -f "$out"
    # shellcheck disable=SC2046 # the command is words on purpose
    valgrind --tool=callgrind --callgrind-out-file="$out" $(server_cmd "$1" "$2") >"$log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 600); do
        grep -q "listening on" "$log" && break
        sleep 0.1
    done
    grep -q "listening on" "$log" || { cat "$log" >&2; return 1; }
    if [ "$3" != idle ]; then
        "$LOADGEN" echo --addr "127.0.0.1:$2" --path / -c "${3%x*}" -s "${3#*x}" -d "$DURATION" \
            --warmup 0 --connect-timeout 120 >"$WORK/load.out"
        messages=$(grep -oE '^echo .*: ([0-9]+) messages' "$WORK/load.out" | grep -oE '[0-9]+ messages' | grep -oE '[0-9]+')
    fi
    # TERM: a background job of a script ignores INT, and the peers keep
    # the default action (callgrind writes its counts when it ends them).
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
    for _ in $(seq 100); do
        grep -qE '^(summary|totals):' "$out" 2>/dev/null && break
        sleep 0.1
    done
    echo "$(grep -E '^(summary|totals):' "$out" | head -1 | awk '{print $2}') $messages"
}

echo "== commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ)"
printf '| scenario | server | instructions per message | messages |\n|---|---|--:|--:|\n'
port=19700
for server in $SERVERS; do
    port=$((port + 1))
    read -r idle _ < <(measure "$server" "$port" idle)
    for scenario in $SCENARIOS; do
        port=$((port + 1))
        read -r total messages < <(measure "$server" "$port" "$scenario")
        per=$(( (total - idle) / (messages > 0 ? messages : 1) ))
        printf '| %s | %s | %s | %s |\n' "${scenario/x/ × } B" "$server" "$per" "$messages"
    done
done
