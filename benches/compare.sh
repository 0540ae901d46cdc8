#!/usr/bin/env bash
# Side-by-side echo benchmark of tether, the strongest Rust WebSocket
# servers (benches/peers) and the floor (src/bin/floor.rs: read, unmask,
# write, nothing else): each server pinned to core 0, the load generator to
# the other cores, servers in alternating order over several rounds, every
# echo scenario run on each echo server back to back; then one table of
# medians with each server's ratio to the baseline, tether's ratio to every
# other server (with the range of the single rounds' ratios), and an SVG
# chart of it (benches/chart.py).
#
#   bash benches/compare.sh            # everything (long; --servers, --rounds shorten it)
#   bash benches/compare.sh --quick    # a smoke run of the same (about 1 minute)
#
# Options: --rounds N (default 2), --duration SECONDS per echo scenario
# (default 10), --idle N idle connections (default 10000), --servers "a b"
# (default: all seven but floor-uring, the floor on io_uring instead of
# epoll, src/bin/floor_uring.rs, which is named to be run), --procs N
# load-generator processes per echo and
# fan-out run (default 1), --out FILE (the JSON lines; default under
# target/). Run it on a quiet machine: it reports the load average it
# started with.
#
# Pub/sub fan-out (server tether-pubsub: `tether serve --app hub --memory
# --ws-publish bench.fan`, one publisher and every subscriber on
# /topics/bench.fan/ws?format=raw): for each of --fanout-subs (default
# "1000 10000") and --fanout-sizes (default "20 1024" bytes; a message is
# never shorter than its "<seq> <ns> " header, about 24 bytes), the rates
# of --fanout-rates (default "500 1000 2000 4000 8000 16000" a second) in
# turn, stopping after the first one not sustained: a rate is sustained
# when every subscriber got every message, in order, and the p99 of
# delivery is under 100 ms. The summary names each server's highest rate
# sustained (in every round) with its deliveries per second, and p50 / p99
# / p99.9 and the server's peak RSS (VmHWM, started over by the load
# generator before each run's subscribers connect and read before the
# server is stopped) at the first rate, the common one.
#
# SSE fan-out (tether-pubsub only: uWS serves no event streams): one run
# of --fanout-sse-subs (default 10000) event-stream subscribers of the
# same topic at --fanout-sse-rate (default 150) messages a second of 20 B,
# every event checked (at 10 000 subscribers 150/s offers 1.5 M deliveries a
# second, so that a server can show more than 1 M); a row "to N sse" in the
# fan-out table.
#
# Compressed fan-out (tether-pubsub, and uWS with UWS_PUBSUB_DEFLATE): one
# run of --fanout-deflate-subs (default 1000) subscribers at
# --fanout-deflate-rate (default 1000) messages a second of 1 KiB JSON-like
# text (loadgen --json-payload), once with plain subscribers and once with
# subscribers that offer permessage-deflate and inflate and check every
# message (loadgen --deflate); the summary gives bytes read per delivery and
# server CPU per delivery, each pair's compressed row over its plain one.
#
# uWebSockets, in the same run, when prebuilt binaries are given (nothing
# of it is in this repository, nor a way to build it; benches/README.md
# says which commit was measured and what the servers are):
#   UWS_ECHO=path        a uWS echo server: takes the port as its argument,
#                        prints "listening on" once it listens
#   UWS_LOAD_TEST=path   uWS's benchmarks/load_test (plain, no deflate):
#                        every echo scenario is run a second time with it as
#                        the generator, for every server (rows of their own)
#   UWS_PUBSUB=path      a uWS pub/sub server: takes the port, joins every
#                        WebSocket to topic "t" on open, publishes every
#                        message it receives to "t"; the same fan-out runs
#                        against it as against tether-pubsub
#   UWS_TLS_ECHO=path    a uWS echo server over TLS (OpenSSL): takes the
#                        port, a certificate and a key file (PEM)
#   UWS_PUBSUB_DEFLATE=path  the same pub/sub server built with
#                        SHARED_COMPRESSOR (each message compressed once
#                        for all): the compressed fan-out pair runs against
#                        it as against tether-pubsub
# With UWS_ECHO the tables' ratios are to uWebSockets.
#
# Round trips at a fixed offered rate (loadgen latency, open loop): 100
# connections x 20 B at --latency-rate messages a second (default 20000,
# below what every server here sustains on one core), p50 / p99 / p99.9,
# for every echo server.
#
# Over TLS (a self-signed certificate made with openssl for the run):
# tether (rustls) and, with UWS_TLS_ECHO, uWS: idle memory and the echo
# scenarios of --tls-scenarios (default "100x20 200x16384"), rows marked
# TLS.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=2
DURATION=10
WARMUP=1
IDLE=10000
SCENARIOS="100x20 200x16384 500x16384"
TLS_SCENARIOS="100x20 200x16384"
LATENCY_RATE=20000
SERVERS="tether floor tokio-tungstenite fastwebsockets tokio-websockets tether-pubsub tether-tls"
PROCS=1
FANOUT_SUBS="1000 10000"
FANOUT_SIZES="20 1024"
FANOUT_RATES="500 1000 2000 4000 8000 16000"
FANOUT_DEFLATE_SUBS=1000
FANOUT_SSE_SUBS=10000
FANOUT_SSE_RATE=150
FANOUT_DEFLATE_RATE=1000
OUT=""
COMMAND="bash benches/compare.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ROUNDS=1 DURATION=2 WARMUP=0.5 IDLE=1000 FANOUT_SUBS=100 FANOUT_SIZES="20 1024" FANOUT_RATES="500 2000" FANOUT_DEFLATE_SUBS=100 FANOUT_DEFLATE_RATE=500 FANOUT_SSE_SUBS=100 FANOUT_SSE_RATE=200 ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --idle) IDLE=$2; shift ;;
        --servers) SERVERS=$2; shift ;;
        --procs) PROCS=$2; shift ;;
        --fanout-subs) FANOUT_SUBS=$2; shift ;;
        --fanout-rates) FANOUT_RATES=$2; shift ;;
        --fanout-sizes) FANOUT_SIZES=$2; shift ;;
        --latency-rate) LATENCY_RATE=$2; shift ;;
        --tls-scenarios) TLS_SCENARIOS=$2; shift ;;
        --fanout-deflate-subs) FANOUT_DEFLATE_SUBS=$2; shift ;;
        --fanout-deflate-rate) FANOUT_DEFLATE_RATE=$2; shift ;;
        --fanout-sse-subs) FANOUT_SSE_SUBS=$2; shift ;;
        --fanout-sse-rate) FANOUT_SSE_RATE=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h | --help) sed -n '2,78p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

if [ -n "${UWS_ECHO:-}" ] && [[ " $SERVERS " != *" uwebsockets "* ]]; then
    SERVERS="$SERVERS uwebsockets"
fi
# The pub/sub server takes its turn in the rounds like the others; its rows
# are tagged server=uwebsockets.
if [ -n "${UWS_TLS_ECHO:-}" ] && [[ " $SERVERS " != *" uwebsockets-tls "* ]]; then
    SERVERS="$SERVERS uwebsockets-tls"
fi
if [ -n "${UWS_PUBSUB:-}" ] && [[ " $SERVERS " != *" uwebsockets-pubsub "* ]]; then
    SERVERS="$SERVERS uwebsockets-pubsub"
fi
if [ -n "${UWS_PUBSUB_DEFLATE:-}" ] && [[ " $SERVERS " != *" uwebsockets-pubsub-deflate "* ]]; then
    SERVERS="$SERVERS uwebsockets-pubsub-deflate"
fi

export CARGO_TERM_COLOR=never
echo "== building (release): tether, the load generator and the floor, the peers (when run)"
# The code layout of the packaged binary (crates/cli/build.rs), which is what users run.
TETHER_CODE_LAYOUT=${TETHER_CODE_LAYOUT:-on} cargo build --release -p tether
cargo build --release -p tether-benches --bin loadgen --bin floor --bin floor_uring
if [[ " $SERVERS " =~ \ (tokio-tungstenite|fastwebsockets|tokio-websockets)\  ]]; then
    cargo build --release --manifest-path benches/peers/Cargo.toml --target-dir target/peers
fi
TETHER=target/release/tether
LOADGEN=target/release/loadgen
FLOOR=target/release/floor
FLOOR_URING=target/release/floor_uring
PEERS=target/peers/release

# Each connection is a descriptor, in the servers and in the load generator.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
MOST_CONNS=$IDLE
for n in $FANOUT_SUBS; do [ "$n" -gt "$MOST_CONNS" ] && MOST_CONNS=$n; done
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((MOST_CONNS + 100)) ]; then
    echo "compare.sh: the open-files limit ($(ulimit -n)) is too low for $MOST_CONNS connections" >&2
    exit 1
fi

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 0)
    LOADGEN_PIN=(taskset -c "1-$(($(nproc) - 1))")
else
    echo "compare.sh: fewer than 2 cores or no taskset: running unpinned" >&2
    SERVER_PIN=()
    LOADGEN_PIN=()
fi

mkdir -p target/compare
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-target/compare/results-$STAMP.jsonl}
LOGS=$(mktemp -d)
# shellcheck source=run-line.sh
source "$(dirname "$0")/run-line.sh"
run_line compare "$COMMAND" "baseline=$([ -n "${UWS_ECHO:-}" ] && echo uwebsockets || echo tether)" >"$OUT"

# The server the next run measures, and every server running.
SERVER_PID=""
SERVER_PIDS=""
stop_servers() {
    local pid
    for pid in $SERVER_PIDS; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=""
    SERVER_PID=""
}
cleanup() {
    stop_servers
    rm -rf "$LOGS"
}
trap cleanup EXIT

# One certificate for every TLS server of the run (an end-entity
# certificate for 127.0.0.1, trusted by the load generator with --ca).
CERT=$LOGS/cert.pem
KEY=$LOGS/key.pem
if [[ " $SERVERS " == *"-tls "* ]]; then
    if ! command -v openssl >/dev/null ||
        ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -keyout "$KEY" -out "$CERT" -subj /CN=localhost \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -addext "basicConstraints=critical,CA:FALSE" 2>"$LOGS/openssl.err"; then
        echo "compare.sh: no certificate (openssl missing or failed): the TLS rows are left out" >&2
        SERVERS=$(echo " $SERVERS " | sed 's/ [a-z]*-tls / /g')
    fi
fi

server_cmd() { # name port
    case "$1" in
        tether) echo "$TETHER serve --app echo --threads 1 --port $2 --log-level warn" ;;
        tether-tls) echo "$TETHER serve --app echo --threads 1 --port $2 --tls-cert $CERT --tls-key $KEY --log-level warn" ;;
        uwebsockets-tls) echo "$UWS_TLS_ECHO $2 $CERT $KEY" ;;
        tether-pubsub) echo "$TETHER serve --app hub --memory --ws-publish bench.fan --threads 1 --port $2 --log-level warn" ;;
        floor) echo "$FLOOR $2" ;;
        floor-uring) echo "$FLOOR_URING $2" ;;
        tokio-tungstenite | fastwebsockets | tokio-websockets) echo "$PEERS/echo-$1 --port $2" ;;
        uwebsockets) echo "$UWS_ECHO $2" ;;
        uwebsockets-pubsub) echo "$UWS_PUBSUB $2" ;;
        uwebsockets-pubsub-deflate) echo "$UWS_PUBSUB_DEFLATE $2" ;;
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
    SERVER_PIDS="$SERVER_PIDS $SERVER_PID"
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "compare.sh: $1 did not start:" >&2
    cat "$log" >&2
    return 1
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

# One fan-out ladder against the server running: for each subscriber count
# and size, the rates in turn until one is not sustained (that run's
# problems are the measurement, not a failure of the script).
run_fanout_ladder() { # name round target
    local name=$1 round=$2 target=$3 subs size rate line
    for subs in $FANOUT_SUBS; do
        for size in $FANOUT_SIZES; do
            for rate in $FANOUT_RATES; do
                "${LOADGEN_PIN[@]}" "$LOADGEN" fanout --addr "127.0.0.1:$port" --raw \
                    --pub-path "$target" --sub-path "$target" -n "$subs" -r "$rate" -s "$size" \
                    -d "$DURATION" --drain 5 --procs "$PROCS" --pid "$SERVER_PID" \
                    --tag "server=$name" --tag "round=$round" >"$LOGS/run.out" 2>"$LOGS/run.err" || true
                line=$(grep -m1 '^{' "$LOGS/run.out" || true)
                if [ -z "$line" ]; then
                    failures=$((failures + 1))
                    echo "   FAILED: fanout $subs x $size B at $rate/s against $name" >&2
                    cat "$LOGS/run.err" >&2
                    break
                fi
                echo "$line" >>"$OUT"
                echo "   $name: $(head -1 "$LOGS/run.out")"
                sustained "$line" || break
            done
        done
    done
}

# The compressed fan-out pair against the server running: the same run
# with plain subscribers, then with permessage-deflate ones.
run_deflate_pair() { # name round target
    local name=$1 round=$2 target=$3 deflate line
    for deflate in "" --deflate; do
        "${LOADGEN_PIN[@]}" "$LOADGEN" fanout --addr "127.0.0.1:$port" --raw --json-payload $deflate \
            --pub-path "$target" --sub-path "$target" -n "$FANOUT_DEFLATE_SUBS" -r "$FANOUT_DEFLATE_RATE" \
            -s 1024 -d "$DURATION" --drain 5 --procs "$PROCS" --pid "$SERVER_PID" \
            --tag "server=$name" --tag "round=$round" >"$LOGS/run.out" 2>"$LOGS/run.err" || true
        line=$(grep -m1 '^{' "$LOGS/run.out" || true)
        if [ -z "$line" ]; then
            failures=$((failures + 1))
            echo "   FAILED: fanout ${deflate:-plain} against $name" >&2
            cat "$LOGS/run.err" >&2
            continue
        fi
        echo "$line" >>"$OUT"
        echo "   $name ${deflate:-plain}: $(head -1 "$LOGS/run.out")"
    done
}

# Whether a fan-out JSON line is a rate sustained: no problems, p99 under
# 100 ms. Without python3, every rate is run.
sustained() {
    command -v python3 >/dev/null || return 0
    python3 -c 'import json, sys
r = json.loads(sys.argv[1])
p99 = (r.get("latency_us") or {}).get("p99")
sys.exit(0 if r.get("problems") == 0 and p99 is not None and p99 < 100000 else 1)' "$1"
}

# shellcheck source=load-test-run.sh
. "$(dirname "$0")/load-test-run.sh"

BASELINE=tether
[ -n "${UWS_ECHO:-}" ] && BASELINE=uwebsockets

echo
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), \
$(free -g | awk '/^Mem:/ {print $2 " GiB"}') memory"
echo "== load before: $(uptime | sed 's/.*load average/load average/')"
echo "== $ROUNDS rounds; echo ${DURATION}s after ${WARMUP}s warm-up: $SCENARIOS; idle $IDLE connections; \
loadgen in $PROCS process(es)"
[[ " $SERVERS " == *" tether-pubsub "* || " $SERVERS " == *" uwebsockets-pubsub"* ]] &&
    echo "== fan-out: $FANOUT_SUBS subscribers x $FANOUT_SIZES B, ${DURATION}s at each of $FANOUT_RATES msg/s until one is not sustained"

read -r -a servers <<<"$SERVERS"
# A port per server and round: no connection of an earlier run (in
# TIME_WAIT) shares a 4-tuple with this one.
port_of() { # name round
    local i
    for i in "${!servers[@]}"; do
        if [ "${servers[i]}" = "$1" ]; then echo $((9400 + $2 * 10 + i)); fi
    done
}
# The plain echo servers (every server not named *-tls or *-pubsub*) all
# run for the whole round, idle on core 0 but for their turn, so that each
# echo scenario is measured on every one of them back to back: the rounds'
# figures for two servers are then seconds apart, not minutes, and their
# ratio in one round is a paired comparison on a machine whose speed moves
# from minute to minute (the summary gives its range over the rounds).
is_plain_echo() { [[ "$1" != *-tls && "$1" != *-pubsub* ]]; }
declare -A PID_OF
use_server() { # name round: the next runs go to this one
    SERVER_PID=${PID_OF[$1]}
    port=$(port_of "$1" "$2")
}
for round in $(seq "$ROUNDS"); do
    order=("${servers[@]}")
    if [ $((round % 2)) -eq 0 ]; then
        order=()
        for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[i]}"); done
    fi
    echo_order=()
    for name in "${order[@]}"; do
        if is_plain_echo "$name"; then echo_order+=("$name"); fi
    done
    if [ ${#echo_order[@]} -gt 0 ]; then
        # Idle first, each on its fresh process, so its RSS baseline is
        # clean (the others are idle meanwhile).
        for name in "${echo_order[@]}"; do
            port=$(port_of "$name" "$round")
            echo "-- round $round: $name on port $port"
            start_server "$name" "$port"
            PID_OF[$name]=$SERVER_PID
            run_loadgen "$name" "$round" idle --addr "127.0.0.1:$port" -c "$IDLE" --settle 1 --hold 1
        done
        for scenario in $SCENARIOS; do
            echo "-- round $round: echo $scenario"
            for name in "${echo_order[@]}"; do
                use_server "$name" "$round"
                run_loadgen "$name" "$round" echo --addr "127.0.0.1:$port" \
                    -c "${scenario%x*}" -s "${scenario#*x}" -d "$DURATION" --warmup "$WARMUP" --procs "$PROCS"
            done
            if [ -n "${UWS_LOAD_TEST:-}" ]; then
                for name in "${echo_order[@]}"; do
                    use_server "$name" "$round"
                    run_load_test "$name" "$round" "${scenario%x*}" "${scenario#*x}"
                done
            fi
        done
        echo "-- round $round: round trips at $LATENCY_RATE/s"
        for name in "${echo_order[@]}"; do
            use_server "$name" "$round"
            run_loadgen "$name" "$round" latency --addr "127.0.0.1:$port" -c 100 -s 20 \
                -r "$LATENCY_RATE" -d "$DURATION" --warmup "$WARMUP"
        done
        stop_servers
    fi
    for name in "${order[@]}"; do
        if is_plain_echo "$name"; then continue; fi
        port=$(port_of "$name" "$round")
        echo "-- round $round: $name on port $port"
        start_server "$name" "$port"
        # Pub/sub: one publisher, raw messages ("<seq> <ns> ...."), every
        # subscriber checks each one arrives, once and in order. Rows are
        # tagged with the server's own name.
        if [ "$name" = uwebsockets-pubsub ]; then
            run_fanout_ladder uwebsockets "$round" /
        elif [ "$name" = uwebsockets-pubsub-deflate ]; then
            run_deflate_pair uwebsockets "$round" /
        elif [ "$name" = tether-pubsub ]; then
            run_fanout_ladder tether "$round" "/topics/bench.fan/ws?format=raw"
            run_deflate_pair tether "$round" "/topics/bench.fan/ws?format=raw"
            run_loadgen tether "$round" fanout --addr "127.0.0.1:$port" --transport sse \
                --pub-path /topics/bench.fan/ws --sub-path /topics/bench.fan/events \
                -n "$FANOUT_SSE_SUBS" -r "$FANOUT_SSE_RATE" -s 20 -d "$DURATION" --drain 5
        else
            # Over TLS: rows tagged with the server's own name and tls=1.
            tls_args=(--addr "wss://127.0.0.1:$port" --ca "$CERT" --tag tls=1)
            run_loadgen "${name%-tls}" "$round" idle "${tls_args[@]}" -c "$IDLE" --settle 1 --hold 1
            for scenario in $TLS_SCENARIOS; do
                run_loadgen "${name%-tls}" "$round" echo "${tls_args[@]}" \
                    -c "${scenario%x*}" -s "${scenario#*x}" -d "$DURATION" --warmup "$WARMUP" --procs "$PROCS"
            done
        fi
        stop_servers
    done
done

echo
echo "== $(date '+%Y-%m-%d %H:%M %Z'); load after: $(uptime | sed 's/.*load average/load average/')"
echo "== medians over $ROUNDS rounds (JSON lines in $OUT); × $BASELINE: a server's figure over $BASELINE's"
echo "   (above 1 is better than $BASELINE for msg/s, worse for RSS)"
echo
[ -z "${UWS_ECHO:-}" ] && echo "== uWebSockets not measured: set UWS_ECHO (and UWS_LOAD_TEST, UWS_PUBSUB, UWS_TLS_ECHO) to prebuilt binaries to add it"
[ -n "${UWS_ECHO:-}" ] && [ -z "${UWS_TLS_ECHO:-}" ] && echo "== uWebSockets over TLS not measured: set UWS_TLS_ECHO"
echo "== generator: loadgen (×N: in N processes) or load_test; the loadgen columns are the generator's own CPU"
echo
"$LOADGEN" summary "$OUT" --baseline "$BASELINE"
if [ -s "$OUT" ] && grep -q '"mode":"fanout"' "$OUT" && command -v python3 >/dev/null; then
    echo
    echo "== pub/sub fan-out: the highest rate sustained in every round (every delivery, in order, p99 < 100 ms),"
    echo "   deliveries per second there (median), and latency and the server's peak RSS at the first rate"
    echo "   ($(echo "$FANOUT_RATES" | cut -d' ' -f1)/s, medians; peak RSS over that run, from VmHWM)"
    python3 benches/tables.py show fanout "$OUT"
fi
if [ -s "$OUT" ] && grep -q '"json_payload":true' "$OUT" && command -v python3 >/dev/null; then
    echo
    echo "== compressed fan-out: $FANOUT_DEFLATE_SUBS subscribers x $FANOUT_DEFLATE_RATE/s x 1 KiB JSON-like, plain"
    echo "   subscribers vs permessage-deflate ones (medians; × plain: the compressed figure over the plain one)"
    [ -z "${UWS_PUBSUB_DEFLATE:-}" ] && echo "   (uWebSockets not measured: set UWS_PUBSUB_DEFLATE to a pub/sub server built with SHARED_COMPRESSOR)"
    python3 benches/tables.py show fanout-deflate "$OUT"
fi
if command -v python3 >/dev/null; then
    if python3 benches/chart.py "$OUT" --baseline "$BASELINE" --out target/compare/compare.svg; then
        echo
        echo "== chart: target/compare/compare.svg"
    else
        failures=$((failures + 1))
    fi
else
    echo "== no python3: no chart"
fi
if [ "$failures" -gt 0 ]; then
    echo
    echo "compare.sh: $failures runs failed (left out of the table)" >&2
    exit 1
fi
