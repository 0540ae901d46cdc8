#!/usr/bin/env bash
# The Redis bus as the followed topics grow: one local redis-server, two
# nodes (crates/redis/examples/redis_bus_bench.rs with benches/bus/harness.rs:
# two bridges in one process, one pretend event loop each), 1 000 /
# 10 000 / 100 000 topics followed per node and the same traffic (node 0
# publishes 100-byte events to 100 of them, a window of 2 000
# unanswered), "before" (a git worktree of BASE with the same benchmark
# files; BASE needs RedisConfig::cluster_partitions) and "after" (this
# tree), in the same run.
# Prints one line per run: deliveries per second (both nodes), publish to
# delivery p50/p99, Redis's CPU and the nodes' CPU (shares of one core).
# Not part of CI.
#
#   benches/bus.sh [BASE]      # BASE: a commit (default: merge-base with main)
#
# Environment: TOPICS ("1000 10000 100000"), SECONDS_EACH (5), HOT (100),
# WINDOW (2000). Needs redis-server and redis-cli.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
base="${1:-$(git -C "$root" merge-base HEAD main)}"
topics="${TOPICS:-1000 10000 100000}"
seconds="${SECONDS_EACH:-5}"
hot="${HOT:-100}"
window="${WINDOW:-2000}"
work="$(mktemp -d "${TMPDIR:-/tmp}/tether-bus.XXXXXX")"
redis_pid=""

cleanup() {
    if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    git -C "$root" worktree remove --force "$work/before" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

export CARGO_INCREMENTAL=0
build() { # build TREE OUT: the example of the tree, in release, copied to OUT
    cargo build --quiet --release --manifest-path "$1/Cargo.toml" -p tether-redis \
        --example redis_bus_bench --target-dir "$root/target"
    cp "$root/target/release/examples/redis_bus_bench" "$2"
}

echo "bus: before = $(git -C "$root" rev-parse --short "$base"), after = $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ' (with uncommitted changes)')"
git -C "$root" worktree add --quiet --detach "$work/before" "$base"
mkdir -p "$work/before/crates/redis/examples" "$work/before/benches/bus"
cp "$root/crates/redis/examples/redis_bus_bench.rs" "$work/before/crates/redis/examples/"
cp "$root/benches/bus/harness.rs" "$work/before/benches/bus/"
build "$work/before" "$work/bus_bench.before"
# Both trees' crates get the same artifact names in the one target
# directory, and the before build's are newer: clean the crate that
# differs so that the after build compiles this tree's.
cargo clean --quiet --release --manifest-path "$root/Cargo.toml" -p tether-redis --target-dir "$root/target"
build "$root" "$work/bus_bench.after"
cmp -s "$work/bus_bench.before" "$work/bus_bench.after" && { echo "bus: before and after are the same binary"; exit 1; }

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize no \
    --dir "$work" > "$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" PING > /dev/null 2>&1 && break; sleep 0.1; done

echo "bus: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(redis-server --version | cut -d' ' -f3)"
for n in $topics; do
    for version in before after; do
        redis-cli -p "$port" FLUSHALL > /dev/null
        printf 'bus: %-6s ' "$version"
        "$work/bus_bench.$version" --url "redis://127.0.0.1:$port/" --topics "$n" --hot "$hot" \
            --seconds "$seconds" --window "$window"
        # Which design ran: the announcement stream exists after the change only.
        echo "bus:        announcement streams in Redis: $(redis-cli -p "$port" --scan --pattern '*!bus' | wc -l)"
    done
done
echo "bus: load after $(cut -d' ' -f1-3 /proc/loadavg)"
