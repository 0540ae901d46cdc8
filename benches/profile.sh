#!/usr/bin/env bash
# Where an echo server's CPU goes, kernel against user space, sampled by
# `perf record -e cpu-clock` (a software clock: it works in a VM without
# hardware counters) on the server and on the load generator at once. The
# split bounds what any server-side work can gain: a server that makes the
# same system calls per message as another cannot spend less CPU per
# message than the other's kernel share, so if uWebSockets spends a
# fraction K of its CPU in the kernel, a server with no user-space work at
# all would reach at most 1 / K of uWebSockets' messages per CPU-second.
#
#   bash benches/profile.sh                      # tether and the floor
#   UWS_ECHO=… UWS_LOAD_TEST=… bash benches/profile.sh
#
# Options: --scenario CONNSxBYTES (default 100x20), --duration SECONDS of
# sampling (default 5, after 2 s of load), --servers "tether floor"
# (uwebsockets is added when UWS_ECHO is set), --generators "loadgen"
# (load_test is added when UWS_LOAD_TEST is set). Server on core 0, the
# generator on core 1. For each pair it prints the kernel and user shares
# of the server's and the generator's samples, the user-space symbols
# above 0.3 %, and how busy each was (its CPU time over the sampled
# window, from /proc/PID/stat). Needs perf (Debian's linux-perf) and, for kernel
# symbols, kernel.perf_event_paranoid <= 2 and kernel.kptr_restrict = 0.
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=100x20
DURATION=5
SERVERS="tether floor"
GENERATORS="loadgen"
while [ $# -gt 0 ]; do
    case "$1" in
        --scenario) SCENARIO=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --servers) SERVERS=$2; shift ;;
        --generators) GENERATORS=$2; shift ;;
        -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "profile.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ -n "${UWS_ECHO:-}" ] && SERVERS="$SERVERS uwebsockets"
[ -n "${UWS_LOAD_TEST:-}" ] && GENERATORS="$GENERATORS load_test"
command -v perf >/dev/null || { echo "profile.sh: perf is needed (Debian: apt-get install linux-perf)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "profile.sh: needs 2 cores (server and generator pinned apart)" >&2; exit 1; }

export CARGO_TERM_COLOR=never
cargo build --release -p tether-benches --bin loadgen --bin floor
cargo build --release -p tether --bin tether
CONNS=${SCENARIO%x*}
SIZE=${SCENARIO#*x}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

server_cmd() { # name port
    case "$1" in
        tether) echo "target/release/tether serve --app echo --threads 1 --port $2 --log-level warn" ;;
        floor) echo "target/release/floor $2" ;;
        uwebsockets) echo "$UWS_ECHO $2" ;;
        *) echo "profile.sh: unknown server $1" >&2; return 1 ;;
    esac
}

# CPU ticks (user + system) of a process so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# "kernel% user%" of a perf data file, then the user symbols above 0.3 %.
split() { # data label
    perf report -q -i "$1" --no-children --sort dso --stdio -g none 2>/dev/null |
        awk -v label="$2" '$1 ~ /%$/ { pct = $1; sub(/%/, "", pct); if ($2 ~ /kernel/) k += pct; else u += pct }
            END { printf "%s: kernel %.1f %%, user space %.1f %%\n", label, k, u }'
    perf report -q -i "$1" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
        awk '$1 ~ /%$/ && $2 !~ /kernel/ { pct = $1; sub(/%/, "", pct); if (pct + 0 >= 0.3) print "    " $0 }'
}

run_pair() { # server generator
    local port log gen_pid server_pid s0 s1 g0 g1 hz
    port=$(free_port)
    log=$WORK/$1.log
    # shellcheck disable=SC2046 # the command is words on purpose
    taskset -c 0 $(server_cmd "$1" "$port") >"$log" 2>&1 &
    server_pid=$!
    PIDS+=("$server_pid")
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && break
        sleep 0.1
    done
    grep -q "listening on" "$log" || { cat "$log" >&2; return 1; }
    case "$2" in
        loadgen)
            taskset -c 1 target/release/loadgen echo --addr "127.0.0.1:$port" -c "$CONNS" -s "$SIZE" \
                -d $((DURATION + 4)) --warmup 0 >"$WORK/gen.out" 2>&1 &
            ;;
        load_test)
            taskset -c 1 stdbuf -oL "$UWS_LOAD_TEST" "$CONNS" 127.0.0.1 "$port" 0 0 "$SIZE" >"$WORK/gen.out" 2>&1 &
            ;;
    esac
    gen_pid=$!
    PIDS+=("$gen_pid")
    sleep 2
    hz=$(getconf CLK_TCK)
    s0=$(ticks "$server_pid")
    g0=$(ticks "$gen_pid")
    perf record -q -e cpu-clock -F 2000 -p "$server_pid" -o "$WORK/server.data" -- sleep "$DURATION" 2>/dev/null &
    local perf_server=$!
    perf record -q -e cpu-clock -F 2000 -p "$gen_pid" -o "$WORK/gen.data" -- sleep "$DURATION" 2>/dev/null
    wait "$perf_server"
    s1=$(ticks "$server_pid")
    g1=$(ticks "$gen_pid")
    kill "$gen_pid" "$server_pid" 2>/dev/null || true
    wait "$gen_pid" "$server_pid" 2>/dev/null || true
    echo "== $1 driven by $2 ($CONNS x $SIZE B, $DURATION s sampled)"
    awk -v s=$((s1 - s0)) -v g=$((g1 - g0)) -v hz="$hz" -v d="$DURATION" 'BEGIN {
        printf "busy: server %.0f %% of its core, generator %.0f %%\n", s / hz / d * 100, g / hz / d * 100 }'
    split "$WORK/server.data" "server $1"
    split "$WORK/gen.data" "generator $2"
}

for server in $SERVERS; do
    for gen in $GENERATORS; do
        run_pair "$server" "$gen"
    done
done
