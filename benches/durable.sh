#!/usr/bin/env bash
# The durable log through the server, against --memory, in one run:
#
# 1. Publish -> deliver: `tether serve --app hub` started four times,
#    --memory, --fsync never, --fsync interval=10 and --fsync always (each
#    on a fresh data dir, removed after), each driven with the same load
#    generator fan-out: one WebSocket publisher whose every publish is
#    acknowledged (--ack: the hub's JSON envelopes; with --fsync always
#    the acknowledgement comes after the sync), SUBSCRIBERS WebSocket
#    subscribers, messages of SIZE bytes, at each rate of RATES for
#    DURATION seconds, then with at most WINDOW publishes unacknowledged
#    and no rate limit ("max"). Every event is checked at every subscriber.
# 2. Replay: REPLAY_EVENTS events published to one topic, then read by an
#    event stream resuming from before the first (Last-Event-ID 0-0), timed
#    from its connect to the last event: with --memory, with the durable
#    log, and after that server restarted and recovered the log.
# 3. Recovery: the time from starting the process to /healthz answering,
#    with --memory, an empty data dir, and a data dir of about
#    RECOVERY_MIB MiB (events of 60 000 bytes, published through the
#    server; the files are in the page cache).
#
# Prints a table with each row's ratio to --memory from the same run.
# The server runs on one event loop (--threads 1), pinned to core 0, the
# load generator to the others (taskset, with 2 cores or more). A
# benchmark, not a test: only the ratios mean much on a shared machine.
# A row whose publishes are not all acknowledged (or events not all
# delivered) within the drain is shown as "behind", not failed; a run
# fails when the load generator finds events out of order, unreadable
# or at a closed connection, or gets no report. Ends with
# "durable-bench: N passed, M failed" (runs, not figures).
#
# QUICK=1: a short run (under a minute once built) with smaller figures.
# Knobs (environment): SUBSCRIBERS, SIZE, RATES, DURATION, WINDOW, DRAIN,
# REPLAY_EVENTS, RECOVERY_MIB, RESTARTS. Uses $TETHER_BIN when set, else
# builds tether in release.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${QUICK:-0}" = 1 ]; then
    SUBSCRIBERS=${SUBSCRIBERS:-20}
    RATES=${RATES:-200}
    DURATION=${DURATION:-1}
    DRAIN=${DRAIN:-3}
    REPLAY_EVENTS=${REPLAY_EVENTS:-10000}
    RECOVERY_MIB=${RECOVERY_MIB:-32}
    RESTARTS=${RESTARTS:-1}
else
    SUBSCRIBERS=${SUBSCRIBERS:-100}
    RATES=${RATES:-"200 2000"}
    DURATION=${DURATION:-5}
    DRAIN=${DRAIN:-5}
    REPLAY_EVENTS=${REPLAY_EVENTS:-100000}
    RECOVERY_MIB=${RECOVERY_MIB:-1024}
    RESTARTS=${RESTARTS:-3}
fi
SIZE=${SIZE:-64}
WINDOW=${WINDOW:-64}
BIG=60000

export CARGO_TERM_COLOR=never
if [ -z "${TETHER_BIN:-}" ]; then
    # The code layout of the packaged binary (crates/cli/build.rs), which is what users run.
    TETHER_CODE_LAYOUT=${TETHER_CODE_LAYOUT:-on} cargo build --release -p tether
    TETHER_BIN=$PWD/target/release/tether
fi
cargo build --release -p tether-benches --bin loadgen
LOADGEN=$PWD/target/release/loadgen
command -v curl >/dev/null || {
    echo "durable.sh: curl is needed (for /healthz)"
    echo "durable-bench: 0 passed, 1 failed"
    exit 1
}

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 0)
    LOADGEN_PIN=(taskset -c "1-$(($(nproc) - 1))")
else
    SERVER_PIN=()
    LOADGEN_PIN=()
fi

WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# Room for REPLAY_EVENTS in one topic's backlog, and for the whole replay
# in one connection's output queue.
BACKLOG=(--backlog-events $((REPLAY_EVENTS + 1000)) --backlog-bytes $((512 << 20)) --max-output $((1024 << 20)))
COMMON=(--app hub --threads 1 --port 0 --log-level warn --ws-publish 'bench.*'
    --max-connections $((SUBSCRIBERS + 100)))

now_ns() { date +%s%N; }

# Starts the server with the given arguments; sets SERVER_PID, ADDR and
# STARTUP_MS (from the start of the process to /healthz answering).
start_server() {
    local t0
    t0=$(now_ns)
    # Emptied here, not by the child's redirection: until the child has
    # opened it, the loop below would read the last server's address.
    : >"$WORK/server.log"
    "${SERVER_PIN[@]}" "$TETHER_BIN" serve "${COMMON[@]}" "$@" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    ADDR=""
    for _ in $(seq 6000); do
        ADDR=$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$WORK/server.log" | head -1)
        [ -n "$ADDR" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.005
    done
    if [ -n "$ADDR" ]; then
        for _ in $(seq 1000); do
            curl -sf -o /dev/null "http://$ADDR/healthz" && break
            sleep 0.005
        done
    fi
    STARTUP_MS=$((($(now_ns) - t0) / 1000000))
    if [ -z "$ADDR" ] || ! curl -sf -o /dev/null "http://$ADDR/healthz"; then
        cat "$WORK/server.log"
        echo "durable.sh: tether serve $* did not start"
        # Stopped here: a server that started too late would outlive the run.
        stop_server
        return 1
    fi
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

passed=0
failed=0
fail() {
    failed=$((failed + 1))
    echo "FAIL $*"
}

# A JSON field of the load generator's last report.
field() { grep '^{' "$WORK/out" | tail -1 | python3 -c "import json,sys; v=json.load(sys.stdin)$1; print('' if v is None else v)"; }

MODES=("memory" "never" "interval=10" "always")
mode_args() {
    case $1 in
    memory) echo --memory ;;
    *) echo --data-dir "$WORK/data" --fsync "$1" ;;
    esac
}

LOADS=()
for r in $RATES; do LOADS+=("$r/s"); done
LOADS+=(max)

# One fan-out run; stores its figures under KEY ("mode|load").
declare -A ACKED DELIV P50 P99 AP50 AP99 STATE
fanout_run() { # key, topic, then extra loadgen arguments
    local key=$1 topic=$2
    shift 2
    local rc=0
    timeout $((DURATION * 4 + DRAIN + 120)) "${LOADGEN_PIN[@]}" "$LOADGEN" fanout --addr "$ADDR" --pid "$SERVER_PID" \
        --transport ws -n "$SUBSCRIBERS" -s "$SIZE" -d "$DURATION" --drain "$DRAIN" --ack \
        --pub-path "/topics/$topic/ws" "$@" >"$WORK/out" 2>"$WORK/err" || rc=$?
    if ! grep -q '^{' "$WORK/out"; then
        fail "fanout $key: no report (exit $rc)"
        cat "$WORK/out" "$WORK/err"
        return
    fi
    local broken
    broken=$(grep '^{' "$WORK/out" | tail -1 | python3 -c 'import json, sys
v = json.load(sys.stdin)
print(v["out_of_order"] + v["unreadable"] + v["bad_ids"] + v["closed_subscribers"] + v["ack_bad"])')
    if [ "$broken" != 0 ]; then
        fail "fanout $key: events out of order, unreadable or cut off"
        cat "$WORK/out" "$WORK/err"
        return
    fi
    if [ "$rc" != 0 ] && [ "${key#*|}" = max ]; then
        # With a window every publish is acknowledged, unless the server stalled.
        fail "fanout $key: not every publish acknowledged and delivered"
        cat "$WORK/out" "$WORK/err"
        return
    fi
    ACKED[$key]=$(field '["acked_per_s"]')
    DELIV[$key]=$(field '["delivered_per_s_while_busy"]')
    P50[$key]=$(field '["latency_us"]["p50"]')
    P99[$key]=$(field '["latency_us"]["p99"]')
    AP50[$key]=$(field '["ack_latency_us"]["p50"]')
    AP99[$key]=$(field '["ack_latency_us"]["p99"]')
    STATE[$key]=""
    if [ "$rc" != 0 ]; then
        STATE[$key]=" (behind: $(field '["acked"]') of $(field '["published"]') acknowledged, $(field '["missing"]') deliveries missing, in the drain)"
    fi
    passed=$((passed + 1))
    echo "ok   fanout $key: $(head -1 "$WORK/out")"
}

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# 1. Publish -> deliver.
for mode in "${MODES[@]}"; do
    rm -rf "$WORK/data"
    # shellcheck disable=SC2046
    if ! start_server $(mode_args "$mode") "${BACKLOG[@]}"; then
        fail "tether serve ($mode)"
        continue
    fi
    echo "tether serve --app hub $(mode_args "$mode" | sed "s|$WORK|TMP|") on $ADDR (pid $SERVER_PID)"
    n=0
    for r in $RATES; do
        n=$((n + 1))
        fanout_run "$mode|$r/s" "bench.rate$n" -r "$r"
    done
    fanout_run "$mode|max" bench.max -r 1000000 --window "$WINDOW"
    stop_server
done
rm -rf "$WORK/data"

# 2. Replay.
declare -A REPLAY_MS
replay_run() { # name, then extra loadgen arguments
    local name=$1
    shift
    if timeout 600 "${LOADGEN_PIN[@]}" "$LOADGEN" replay --addr "$ADDR" -n "$REPLAY_EVENTS" -s "$SIZE" \
        --topic /topics/bench.replay "$@" >"$WORK/out" 2>"$WORK/err"; then
        passed=$((passed + 1))
        REPLAY_MS[$name]=$(field '["replay_ms"]')
        echo "ok   replay $name: $(head -1 "$WORK/out")"
    else
        fail "replay $name"
        cat "$WORK/out" "$WORK/err"
    fi
}
if start_server --memory "${BACKLOG[@]}"; then
    replay_run memory --publish
    stop_server
else
    fail "tether serve --memory (replay)"
fi
if start_server --data-dir "$WORK/data" "${BACKLOG[@]}"; then
    replay_run durable --publish
    stop_server
    if start_server --data-dir "$WORK/data" "${BACKLOG[@]}"; then
        REPLAY_RECOVERY_MS=$STARTUP_MS
        replay_run restarted
        stop_server
    else
        fail "tether serve (replay, restarted)"
    fi
else
    fail "tether serve --data-dir (replay)"
fi
rm -rf "$WORK/data"

# 3. Recovery.
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
startup() { # name, then the server arguments: RESTARTS starts, the median
    local name=$1
    shift
    local times=()
    for _ in $(seq "$RESTARTS"); do
        if ! start_server "$@"; then
            fail "start $name"
            return
        fi
        times+=("$STARTUP_MS")
        RSS[$name]=$(($(awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status") >> 10))
        stop_server
    done
    STARTUP[$name]=$(printf '%s\n' "${times[@]}" | median)
    STARTED+=("$name")
    passed=$((passed + 1))
    echo "ok   start $name: ${times[*]} ms"
}
declare -A STARTUP RSS
STARTED=()
# The log keeps a segment while a topic's backlog holds one of its events:
# backlog bounds above RECOVERY_MIB keep every event (in memory too, both
# encodings of each), so that the whole directory is recovered.
BIG_EVENTS=$(((RECOVERY_MIB << 20) / BIG + 1))
KEEP=(--backlog-events $((BIG_EVENTS + 1000)) --backlog-bytes $(((RECOVERY_MIB * 4 + 64) << 20))
    --max-output $(((RECOVERY_MIB * 4 + 128) << 20)))
startup memory --memory "${KEEP[@]}"
mkdir -p "$WORK/data"
startup "empty dir" --data-dir "$WORK/data" "${KEEP[@]}"
rm -rf "$WORK/data"
DATA_BYTES=""
if start_server --data-dir "$WORK/data" --fsync never "${KEEP[@]}"; then
    if timeout 600 "${LOADGEN_PIN[@]}" "$LOADGEN" replay --addr "$ADDR" -n "$BIG_EVENTS" -s "$BIG" \
        --topic /topics/bench.big --publish --no-replay --window 16 >"$WORK/out" 2>"$WORK/err"; then
        echo "ok   filled: $(head -1 "$WORK/out")"
        stop_server
        DATA_BYTES=$(du -sb "$WORK/data" | cut -f1)
        startup "$((DATA_BYTES >> 20)) MiB dir" --data-dir "$WORK/data" "${KEEP[@]}"
    else
        fail "filling the data dir"
        cat "$WORK/out" "$WORK/err"
        stop_server
    fi
else
    fail "tether serve (recovery fill)"
fi
rm -rf "$WORK/data"

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== load average after: $LOAD_AFTER"

# The table.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
ms() { awk -v u="$1" 'BEGIN { if (u == "") print "n/a"; else printf "%.2f", u / 1000 }'; }
int() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
    "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load average $LOAD_BEFORE before, $LOAD_AFTER after"
echo "fan-out: 1 publisher (every publish acknowledged), $SUBSCRIBERS WebSocket subscribers, $SIZE B, ${DURATION} s a run, server on 1 loop; max = at most $WINDOW unacknowledged"
echo
echo "| --fsync | load | acked publishes/s | x mem | deliveries/s | x mem | deliver p50 / p99 ms | p99 x mem | ack p50 / p99 ms | p99 x mem |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for load in "${LOADS[@]}"; do
    base="memory|$load"
    for mode in "${MODES[@]}"; do
        k="$mode|$load"
        [ -n "${ACKED[$k]+x}" ] || {
            echo "| $mode | $load | failed | | | | | | | |"
            continue
        }
        name=$mode
        [ "$mode" = memory ] && name="(--memory)"
        echo "| $name | $load${STATE[$k]} | $(int "${ACKED[$k]}") | $(ratio "${ACKED[$k]}" "${ACKED[$base]:-}") |" \
            "$(int "${DELIV[$k]}") | $(ratio "${DELIV[$k]}" "${DELIV[$base]:-}") |" \
            "$(ms "${P50[$k]}") / $(ms "${P99[$k]}") | $(ratio "${P99[$k]}" "${P99[$base]:-}") |" \
            "$(ms "${AP50[$k]}") / $(ms "${AP99[$k]}") | $(ratio "${AP99[$k]}" "${AP99[memory|$load]:-}") |"
    done
done
echo
echo "| replay of $REPLAY_EVENTS events (SSE from Last-Event-ID 0-0, connect to last event) | ms | x mem |"
echo "| --- | ---: | ---: |"
for name in memory durable restarted; do
    label=$name
    [ "$name" = durable ] && label="durable log (interval=10)"
    [ "$name" = restarted ] && label="durable log, after a restart (recovered in ${REPLAY_RECOVERY_MS:-?} ms)"
    echo "| $label | ${REPLAY_MS[$name]:-failed} | $(ratio "${REPLAY_MS[$name]:-}" "${REPLAY_MS[memory]:-}") |"
done
echo
echo "| start to /healthz (median of $RESTARTS) | ms | x mem | server RSS then, MiB |"
echo "| --- | ---: | ---: | ---: |"
for name in "${STARTED[@]}"; do
    echo "| $name | ${STARTUP[$name]} | $(ratio "${STARTUP[$name]}" "${STARTUP[memory]:-}") | ${RSS[$name]} |"
done
echo
echo "durable-bench: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
