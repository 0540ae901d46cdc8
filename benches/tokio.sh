#!/usr/bin/env bash
# tether-tokio beside the Rust WebSocket servers on tokio, in one run: echo
# of 100 x 20 B, 200 x 16 KiB and 500 x 16 KiB with tether's load generator
# (loadgen echo, text messages), and 100 x 1 KiB with permessage-deflate
# (loadgen echo --deflate: JSON-like text, about 3 to 1) for the servers
# that have it, each server once on a current-thread runtime and once on a
# multi-thread runtime with 2 workers; then a table of messages per server
# CPU-second (medians over rounds) with tether-tokio's ratio to each peer
# and to the fastest peer of the row.
#
#   bash benches/tokio.sh                   # 1 round, 5 s per scenario
#   bash benches/tokio.sh --rounds 3 --duration 10
#   bash benches/tokio.sh --pipelined       # several messages in flight
#   options: --servers "a b", --runtimes "0 2", --scenarios "100x20
#   100x1024-deflate 100x20-p8" (CONNECTIONSxBYTES, "-deflate" for a
#   compressed echo, "-pN" for N messages in flight on each connection:
#   loadgen echo --pipeline N), --no-build (use what $CARGO_TARGET_DIR or
#   target/ holds)
#   --pipelined: the pipelined scenarios (100x20-p8 200x16384-p4
#   100x1024-deflate-p8), every peer that can also with --forward (NAME-
#   forward: the echo as tokio-tungstenite's own example writes it, which
#   sends the echoes of messages that arrived together in one write), and
#   the lines named tokio-pipelined (the README's second table).
#   UWS_LOAD_TEST=path: uWebSockets' benchmarks/load_test (plain, built by
#   you from its source, as for compare.sh) as a second generator, run
#   after tether's on every scenario but the deflate ones (load_test has
#   no permessage-deflate, nor several messages in flight); the table has
#   a row per generator.
#
# Servers: tether-tokio is crates/tokio/examples/hyper_echo.rs (hyper's
# upgrade, then recv_ref + echo, as fastwebsockets' and axum's echoes take
# hyper's upgrade), tether-tokio-accept the same with --accept 1 (the
# handshake read by tether-tokio's Acceptor on the bare socket, as
# tokio-websockets' and tokio-tungstenite's echoes read theirs); the peers
# are benches/peers (tokio-tungstenite, fastwebsockets, tokio-websockets,
# yawc, axum's ws), all taking --threads N (0: current-thread). Of them
# only yawc has permessage-deflate (tether's default settings: level 1, no
# context takeover), so the deflate rows have tether-tokio, its -accept
# twin and yawc. floor-tokio (src/bin/floor_tokio.rs) is the least an echo
# on tokio can do: one read, the unmask, one write, no checks; it runs
# beside them as a bound (the most any server's figure could be), not as a
# peer. A current-thread server is pinned to
# core 0 and the load generator to the other cores; a 2-worker server
# gets cores 0 and 1 (with 2 cores, it shares one with the generator: the
# per-CPU-second figure is the one to read). Servers run one after the
# other, in alternating order in even rounds. The JSON lines go to
# target/compare/tokio-*.jsonl (tokio-pipelined-*.jsonl with --pipelined).
set -euo pipefail
cd "$(dirname "$0")/.."

COMMAND="bash benches/tokio.sh $*"
BENCHMARK=tokio
ROUNDS=1
DURATION=5
SCENARIOS="100x20 200x16384 500x16384 100x1024-deflate"
SERVERS="tether-tokio tether-tokio-accept floor-tokio tokio-tungstenite fastwebsockets tokio-websockets yawc axum"
# The servers that accept permessage-deflate.
DEFLATE_SERVERS=" tether-tokio tether-tokio-accept yawc yawc-forward "
RUNTIMES="0 2"
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --servers) SERVERS_GIVEN=$2; shift ;;
        --runtimes) RUNTIMES=$2; shift ;;
        --scenarios) SCENARIOS_GIVEN=$2; shift ;;
        --no-build) BUILD=0 ;;
        --pipelined) BENCHMARK=tokio-pipelined ;;
        -h | --help) sed -n '2,47p' "$0"; exit 0 ;;
        *) echo "tokio.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

# --pipelined's scenarios and servers, unless given.
if [ "$BENCHMARK" = tokio-pipelined ]; then
    SCENARIOS="100x20-p8 200x16384-p4 100x1024-deflate-p8"
    SERVERS="$SERVERS tokio-tungstenite-forward tokio-websockets-forward yawc-forward axum-forward"
fi
SCENARIOS=${SCENARIOS_GIVEN:-$SCENARIOS}
SERVERS=${SERVERS_GIVEN:-$SERVERS}

TARGET=${CARGO_TARGET_DIR:-target}
if [ "$BUILD" = 1 ]; then
    echo "== building (release, the workspace's profile): hyper_echo, loadgen, floor_tokio, the peers"
    cargo build --release -p tether-tokio --features hyper --example hyper_echo
    cargo build --release -p tether-benches --bin loadgen --bin floor_tokio
    cargo build --release --manifest-path benches/peers/Cargo.toml --target-dir "$TARGET/peers"
fi
LOADGEN=$TARGET/release/loadgen

# shellcheck source=tokio-servers.sh
source "$(dirname "$0")/tokio-servers.sh"

mkdir -p target/compare
OUT=target/compare/$BENCHMARK-$(date +%Y%m%d-%H%M%S).jsonl
# shellcheck source=run-line.sh
source "$(dirname "$0")/run-line.sh"
run_line "$BENCHMARK" "$COMMAND" >"$OUT"
# shellcheck source=load-test-run.sh
source "$(dirname "$0")/load-test-run.sh"
LOADGEN_PIN=(taskset -c "1-$(($(nproc) - 1))")
failures=0
runs=0
LOGS=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$LOGS"
}
trap cleanup EXIT
echo "== load average at the start: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
echo "== commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ)"

port=19100
for round in $(seq "$ROUNDS"); do
    order=$SERVERS
    [ $((round % 2)) -eq 0 ] && order=$(echo "$SERVERS" | tr ' ' '\n' | tac | tr '\n' ' ')
    for threads in $RUNTIMES; do
        for server in $order; do
            if [ "$threads" = 0 ]; then pin=(taskset -c 0); else pin=(taskset -c 0-1); fi
            # On a loaded machine a server now and then never prints its
            # ready line (seen twice, not understood): it is stopped and
            # started again on the next port, up to three times.
            started=0
            for _ in 1 2 3; do
                port=$((port + 1))
                : >"$LOGS/server.log" # emptied before the child runs, or the wait below reads the last server's lines
                # shellcheck disable=SC2046 # the command is words on purpose
                "${pin[@]}" $(tokio_server_cmd "$server" "$port" "$threads") >>"$LOGS/server.log" 2>&1 &
                SERVER_PID=$!
                for _ in $(seq 100); do
                    grep -q "listening on" "$LOGS/server.log" && break
                    sleep 0.1
                done
                if grep -q "listening on" "$LOGS/server.log"; then
                    started=1
                    break
                fi
                echo "   $server (pid $SERVER_PID) did not start on port $port: trying again" >&2
                cat "$LOGS/server.log" >&2
                kill "$SERVER_PID" 2>/dev/null || true
                wait "$SERVER_PID" 2>/dev/null || true
            done
            if [ "$started" = 0 ]; then
                echo "tokio.sh: $server did not start" >&2
                exit 1
            fi
            for scenario in $SCENARIOS; do
                shape=${scenario%%-*}
                conns=${shape%x*}
                size=${shape#*x}
                case "$scenario" in *-deflate*)
                    # tether-tokio=PATH (another build) compresses as tether-tokio.
                    case "$DEFLATE_SERVERS" in *" ${server%%=*} "*) ;; *) continue ;; esac ;;
                esac
                read -ra load <<<"$(scenario_options "$scenario")"
                taskset -c 1-$(($(nproc) - 1)) "$LOADGEN" echo --addr "127.0.0.1:$port" --path / \
                    "${load[@]}" -d "$DURATION" --pid "$SERVER_PID" \
                    --tag "server=$server" --tag "threads=$threads" --tag "round=$round" \
                    --tag "scenario=$scenario" >"$LOGS/run.out" 2>"$LOGS/run.err" || {
                    echo "   FAILED: $server threads=$threads $scenario" >&2
                    cat "$LOGS/run.err" >&2
                    failures=$((failures + 1))
                }
                runs=$((runs + 1))
                grep '^{' "$LOGS/run.out" >>"$OUT" || true
                echo "   round $round, threads $threads, $server, $scenario: $(head -1 "$LOGS/run.out")"
                if [ -n "${UWS_LOAD_TEST:-}" ] && [ "$shape" = "$scenario" ]; then
                    run_load_test "$server" "$round" "$conns" "$size" \
                        "\"threads\":\"$threads\",\"scenario\":\"$scenario\","
                    runs=$((runs + 1))
                fi
            done
            kill "$SERVER_PID" 2>/dev/null || true
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
        done
    done
done

echo
python3 benches/tables.py show tokio "$OUT"
echo
echo "== JSON lines: $OUT (python3 benches/tables.py keep tokio $OUT makes them the README's $BENCHMARK table)"
# Every run of either generator counts; a failed one fails the script.
echo "tokio-bench: $((runs - failures)) passed, $failures failed"
[ "$failures" = 0 ]
