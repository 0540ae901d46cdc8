#!/usr/bin/env bash
# The anonymous memory an idle connection costs, for tether builds side
# by side: an echo WebSocket (`serve --app echo`) and an idle hub
# subscriber (`serve --app hub --memory`, a WebSocket on
# /topics/idle/ws).
#
#   BINS="old/target/release/tether target/release/tether" bash benches/idle-memory.sh
#
# Options: --rounds N (default 3), --apps "echo hub", --from N (default
# 2000), --to N (default 10000), --out FILE (the JSON lines; default under
# target/). For each round and application, each build in turn runs with
# one loop on core 0; `loadgen idle` (on core 1) opens FROM WebSockets and
# holds them, then TO - FROM more. RssAnon is read from /proc/PID/status
# once each set is open and has settled a second. The figure per
# connection is the growth between the two, so that what a process
# allocates once (at start, or on its first connections, and what it
# freed before them and reuses) is not spread over the connections; the
# RssAnon at TO is given too. Apps `mux1`, `mux10` and `mux100` are
# multiplexed hub sockets (`/ws`) each subscribed to that many topics
# (the same topics for every socket; `loadgen idle --subscribe`), read
# once every subscribe is answered: the growth per connection from `mux1`
# to `mux100`, over 99, is what one more subscription on an open
# connection costs. Nothing is built but the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=3
APPS="echo hub"
FROM=2000
TO=10000
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift ;;
        --apps) APPS=$2; shift ;;
        --from) FROM=$2; shift ;;
        --to) TO=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "idle-memory.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
read -r -a BUILDS <<<"${BINS:-}"
[ "${#BUILDS[@]}" -gt 0 ] || { echo "idle-memory.sh: set BINS to one or more tether binaries" >&2; exit 2; }
for bin in "${BUILDS[@]}"; do
    [ -x "$bin" ] || { echo "idle-memory.sh: $bin is not an executable" >&2; exit 2; }
done
[ "$FROM" -gt 0 ] && [ "$TO" -gt "$FROM" ] || { echo "idle-memory.sh: need 0 < --from < --to" >&2; exit 2; }
export CARGO_TERM_COLOR=never
cargo build --release -p tether-benches --bin loadgen
LOADGEN=$PWD/target/release/loadgen
mkdir -p target/idle-memory
OUT=${OUT:-target/idle-memory/results-$(date +%Y%m%d-%H%M%S).jsonl}
# shellcheck source=run-line.sh
source "$(dirname "$0")/run-line.sh"
names=()
for bin in "${BUILDS[@]}"; do names+=("$(basename "$bin")"); done
run_line idle-memory "bash benches/idle-memory.sh --rounds $ROUNDS --apps '$APPS' --from $FROM --to $TO" \
    "builds=${names[*]}" >"$OUT"
LOGS=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$LOGS"
}
trap cleanup EXIT

anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"; }

# Waits until the server on `port` has at least `count` established
# connections and the load generator writing `log` holds them (its
# subscribes answered), then a second more.
settled() { # port count log
    for _ in $(seq 1200); do
        [ "$(ss -Htn state established "( sport = :$1 )" | wc -l)" -ge "$2" ] &&
            grep -q ': holding$' "$3" && { sleep 1; return 0; }
        sleep 0.1
    done
    echo "idle-memory.sh: $2 connections never opened" >&2
    exit 1
}

measure() { # bin app round
    local bin=$1 app=$2 round=$3 addr="" port server first second at_from at_to args path subscribe=()
    case "$app" in
        echo) args=(--app echo); path=/echo ;;
        hub) args=(--app hub --memory); path=/topics/idle/ws ;;
        mux[0-9]*) args=(--app hub --memory); path=/ws; subscribe=(--subscribe "${app#mux}") ;;
        *) echo "idle-memory.sh: no application $app" >&2; exit 2 ;;
    esac
    # Made here, not only by the redirection below, which the new process
    # makes in its own time: a `sed` of a file not there yet fails the run.
    : >"$LOGS/server.log"
    : >"$LOGS/server.log" # emptied before the child runs, or the wait below reads the last server's lines
    taskset -c 0 "$bin" serve "${args[@]}" --threads 1 --port 0 --log-level warn >>"$LOGS/server.log" 2>&1 &
    server=$!
    PIDS=("$server")
    for _ in $(seq 200); do
        addr=$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$LOGS/server.log" | head -1)
        [ -n "$addr" ] && break
        sleep 0.05
    done
    [ -n "$addr" ] || { cat "$LOGS/server.log"; echo "idle-memory.sh: $bin did not start" >&2; exit 1; }
    port=${addr##*:}
    taskset -c 1 "$LOADGEN" idle --addr "$addr" --path "$path" "${subscribe[@]}" -c "$FROM" --settle 0 --hold 600 \
        >"$LOGS/first.out" 2>&1 &
    first=$!
    PIDS+=("$first")
    settled "$port" "$FROM" "$LOGS/first.out"
    at_from=$(anon "$server")
    taskset -c 1 "$LOADGEN" idle --addr "$addr" --path "$path" "${subscribe[@]}" -c $((TO - FROM)) --settle 0 --hold 600 \
        >"$LOGS/second.out" 2>&1 &
    second=$!
    PIDS+=("$second")
    settled "$port" "$TO" "$LOGS/second.out"
    at_to=$(anon "$server")
    cleanup
    LOGS=$(mktemp -d)
    PIDS=()
    printf '{"mode":"idle-memory","binary":"%s","app":"%s","round":%d,"from":%d,"to":%d,"anon_kib_at_from":%d,"anon_kib_at_to":%d,"anon_bytes_per_connection":%d}\n' \
        "$(basename "$bin")" "$app" "$round" "$FROM" "$TO" "$at_from" "$at_to" $(((at_to - at_from) * 1024 / (TO - FROM))) | tee -a "$OUT"
}

for round in $(seq "$ROUNDS"); do
    for app in $APPS; do
        for bin in "${BUILDS[@]}"; do
            measure "$bin" "$app" "$round"
        done
    done
done
echo "idle-memory.sh: JSON lines in $OUT"
