#!/usr/bin/env bash
# The Redis bus on one Redis server and on a Redis Cluster of three
# primaries (no replicas), in the same run, with this tree's
# crates/redis/examples/bus_bench.rs: two nodes (two bridges in one
# process, one pretend event loop each), each following 1 000 / 10 000
# topics, node 0 publishing 100-byte events to 100 of them with a window
# of 2 000 unanswered. Three setups per row: one server (its one
# announcement stream), the cluster with a slot per topic
# (--redis-cluster-partitions 0: each followed stream polled), and the
# cluster in 16 partitions (one announcement stream per partition).
# Prints one line per run: deliveries per second (both nodes), publish to
# delivery p50/p99, Redis's CPU (summed over the servers) and the nodes'
# CPU (shares of one core). Not part of CI.
#
#   benches/bus-cluster.sh
#
# Environment: TOPICS ("1000 10000"), SECONDS_EACH (5), HOT (100),
# WINDOW (2000), PARTITIONS (16), SETUPS ("one slot-per-topic
# partitioned"). Needs redis-server and redis-cli.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
topics="${TOPICS:-1000 10000}"
seconds="${SECONDS_EACH:-5}"
hot="${HOT:-100}"
window="${WINDOW:-2000}"
partitions="${PARTITIONS:-16}"
setups="${SETUPS:-one slot-per-topic partitioned}"
work="$(mktemp -d "${TMPDIR:-/tmp}/tether-bus-cluster.XXXXXX")"
pids=()

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

# A free loopback port under 50 000 (a cluster node also listens on its
# port plus 10 000, which must be a port too).
free_port() {
    python3 -c '
import random, socket
while True:
    port = random.randrange(20000, 50000)
    try:
        for p in (port, port + 10000):
            socket.socket().bind(("127.0.0.1", p))
        print(port)
        break
    except OSError:
        pass'
}

# redis_server PORT [ARGS...]: a redis-server in the background, in memory.
redis_server() {
    local port="$1"
    shift
    mkdir -p "$work/$port"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
        --dir "$work/$port" "$@" > "$work/$port/log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$port" PING > /dev/null 2>&1 && return; sleep 0.1; done
    echo "bus-cluster: redis-server on $port did not start" >&2
    cat "$work/$port/log" >&2
    exit 1
}

CARGO_INCREMENTAL=0 cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p tether-redis \
    --example bus_bench
bench="$root/target/release/examples/bus_bench"

single="$(free_port)"
redis_server "$single"
primaries=()
for _ in 1 2 3; do
    port="$(free_port)"
    redis_server "$port" --cluster-enabled yes --cluster-config-file nodes.conf
    primaries+=("$port")
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${primaries[@]}") --cluster-replicas 0 \
    --cluster-yes > "$work/create.log" 2>&1 || { cat "$work/create.log" >&2; exit 1; }
for port in "${primaries[@]}"; do
    for _ in $(seq 100); do
        redis-cli -p "$port" CLUSTER INFO | grep -q 'cluster_state:ok' && break
        sleep 0.1
    done
done
cluster_url="redis+cluster://$(printf '127.0.0.1:%s,' "${primaries[@]}" | sed 's/,$//')"

flush() {
    redis-cli -p "$single" FLUSHALL > /dev/null
    for port in "${primaries[@]}"; do redis-cli -p "$port" FLUSHALL > /dev/null; done
}

echo "bus-cluster: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with uncommitted changes)'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(redis-server --version | cut -d' ' -f3)"
for n in $topics; do
    for setup in $setups; do
        flush
        case "$setup" in
            one) url="redis://127.0.0.1:$single/"; parts=0 ;;
            slot-per-topic) url="$cluster_url"; parts=0 ;;
            partitioned) url="$cluster_url"; parts="$partitions" ;;
            *) echo "bus-cluster: unknown setup $setup" >&2; exit 1 ;;
        esac
        printf 'bus-cluster: %-15s ' "$setup"
        "$bench" --url "$url" --partitions "$parts" --topics "$n" --hot "$hot" \
            --seconds "$seconds" --window "$window"
    done
done
echo "bus-cluster: load after $(cut -d' ' -f1-3 /proc/loadavg)"
