#!/usr/bin/env bash
# Instructions per echoed message, counted by valgrind's callgrind: a
# figure that the noise of a shared machine does not move, for comparing
# tether builds (or one build's changes) where throughput runs disagree.
#
#   BINS="old/target/release/tether target/release/tether" bash benches/instructions.sh
#
# Options: --scenarios "100x20 200x16384" (connections x bytes), --duration
# SECONDS of echo per run (default 10; under callgrind the server runs some
# 50 times slower, so a run still handles tens of thousands of messages),
# --sse-fanout "200@50" (event-stream subscribers @ events a second of
# 20 B, published for 8 s over a WebSocket to one topic of `serve --app
# hub --memory`; "" for none: a figure per delivery, against the hub's own
# idle run), --mux-fanout "200@50" (multiplexed WebSockets on `/ws` @
# events a second of 20 B, published for 8 s over another `/ws` socket,
# against the same hub: the sockets follow one topic, then ten topics of
# which one is published to, then ten all published to at a tenth of the
# rate each, so that every case delivers as many events; "" for none).
# A multiplexed figure leaves out what opening and subscribing cost: it is
# (instructions of the run - those of the same sockets subscribed and
# closed with nothing published) / deliveries, and each ten-topic case is
# given as a ratio to the one-topic case of the same binary.
# Each binary runs `serve --app echo --threads 1` under callgrind, once idle
# (start, then stop: the cost of starting, accepting nothing and stopping)
# and once per scenario with the load generator (text messages, no
# warm-up). A figure is (instructions of the loaded run - those of the idle
# run) / messages echoed in the measured window; the handshakes of the
# connections are in it too, spread over the messages. Needs valgrind.
set -euo pipefail

SCENARIOS="100x20 200x16384"
DURATION=10
SSE_FANOUT="200@50"
MUX_FANOUT="200@50"
while [ $# -gt 0 ]; do
    case "$1" in
        --scenarios) SCENARIOS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --sse-fanout) SSE_FANOUT=$2; shift ;;
        --mux-fanout) MUX_FANOUT=$2; shift ;;
        -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "instructions.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
: "${BINS:?set BINS to the tether binaries to measure, separated by spaces}"
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is needed" >&2; exit 1; }
cd "$(dirname "$0")/.."
# First: its traps stop whatever the run starts from here on, however the
# run ends.
# shellcheck source=benches/callgrind-run.sh
. benches/callgrind-run.sh

export CARGO_TERM_COLOR=never
cargo build --release -p tether-benches --bin loadgen
LOADGEN=target/release/loadgen
WORK=$(mktemp -d)

# Runs one binary under callgrind, optionally under load; sets TOTAL (the
# instructions) and MESSAGES. It runs in this shell, never in a subshell
# (`< <(measure ...)`): the exit trap has to see the server's SERVER_PID
# to stop it when anything fails or the run is interrupted, and a server
# started in a subshell outlived the script.
measure() { # bin port scenario|idle|hub-idle|fanout|mux:TOPICS:PUBLISHED:SECONDS
    local app=(--app echo)
    MESSAGES=0
    [[ "$3" == hub-idle || "$3" == fanout || "$3" == mux:* ]] &&
        app=(--app hub --memory --ws-publish bench.fan --ws-publish 'bench.mux.*')
    callgrind_start "$1" serve "${app[@]}" --threads 1 --port "$2" --log-level warn
    if [[ "$3" == mux:* ]]; then
        local topics published seconds
        IFS=: read -r _ topics published seconds <<<"$3"
        run_load "$LOADGEN" topics --addr "127.0.0.1:$2" -n "${MUX_FANOUT%@*}" -k "$topics" \
            --published "$published" -r "${MUX_FANOUT#*@}" -s 20 -d "$seconds" --drain 5 --connect-timeout 120
        MESSAGES=$(grep -oE '([0-9]+) delivered' "$WORK/load.out" | head -1 | grep -oE '[0-9]+')
    elif [ "$3" = fanout ]; then
        run_load "$LOADGEN" fanout --addr "127.0.0.1:$2" --transport sse --pub-path /topics/bench.fan/ws \
            --sub-path /topics/bench.fan/events -n "${SSE_FANOUT%@*}" -r "${SSE_FANOUT#*@}" -s 20 -d 8 \
            --drain 5 --connect-timeout 120
        MESSAGES=$(grep -oE '([0-9]+) delivered' "$WORK/load.out" | head -1 | grep -oE '[0-9]+')
    elif [[ "$3" != idle && "$3" != hub-idle ]]; then
        echo_load "$2" "$DURATION" -c "${3%x*}" -s "${3#*x}"
    fi
    # Into a file, not `$(...)`: callgrind_stop waits for the server and
    # clears SERVER_PID, which only this shell can do.
    callgrind_stop >"$WORK/total"
    read -r TOTAL <"$WORK/total"
}

printf '| scenario | binary | instructions per message | messages |\n|---|---|--:|--:|\n'
port=9700
for bin in $BINS; do
    port=$((port + 1))
    measure "$bin" "$port" idle
    idle=$TOTAL
    for scenario in $SCENARIOS; do
        port=$((port + 1))
        measure "$bin" "$port" "$scenario"
        printf '| %s | %s | %s | %s |\n' "${scenario/x/ × } B" "$bin" "$(per_message "$TOTAL" "$idle" "$MESSAGES")" "$MESSAGES"
    done
    if [ -n "$SSE_FANOUT" ]; then
        port=$((port + 1))
        measure "$bin" "$port" hub-idle
        idle=$TOTAL
        port=$((port + 1))
        measure "$bin" "$port" fanout
        printf '| SSE fan-out %s/s × 20 B to %s (per delivery) | %s | %s | %s |\n' \
            "${SSE_FANOUT#*@}" "${SSE_FANOUT%@*}" "$bin" "$(per_message "$TOTAL" "$idle" "$MESSAGES")" "$MESSAGES"
    fi
    if [ -n "$MUX_FANOUT" ]; then
        one=""
        for case in "1:1:1 topic" "10:1:10 topics, 1 published" "10:10:10 topics, all published"; do
            IFS=: read -r topics published label <<<"$case"
            # The same sockets subscribed and closed, nothing published.
            port=$((port + 1))
            measure "$bin" "$port" "mux:$topics:$published:0"
            setup=$TOTAL
            port=$((port + 1))
            measure "$bin" "$port" "mux:$topics:$published:8"
            per=$(per_message "$TOTAL" "$setup" "$MESSAGES")
            one=${one:-$per}
            printf '| /ws fan-out %s/s × 20 B to %s sockets × %s (per delivery; %s × one topic) | %s | %s | %s |\n' \
                "${MUX_FANOUT#*@}" "${MUX_FANOUT%@*}" "$label" \
                "$(awk -v a="$per" -v b="$one" 'BEGIN { printf "%.3f", a / (b > 0 ? b : 1) }')" \
                "$bin" "$per" "$MESSAGES"
        done
    fi
done
