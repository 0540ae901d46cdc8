#!/usr/bin/env bash
# Instructions per echoed message of tether-tokio's echo and the tokio
# peers', counted by valgrind's callgrind: a figure that the noise of a
# shared machine does not move, where tokio.sh's throughput runs cannot
# resolve a 10 % difference.
#
#   bash benches/tokio-instructions.sh
#   options: --servers "tether-tokio fastwebsockets", --scenarios "100x20
#   100x1024-deflate 100x20-p8" (as tokio.sh's; "-deflate": loadgen echo
#   --deflate, "-pN": --pipeline N),
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
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "tokio-instructions.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "tokio-instructions.sh: valgrind is needed" >&2; exit 1; }
cd "$(dirname "$0")/.."
# First: its traps stop whatever the run starts from here on, however the
# run ends.
# shellcheck source=benches/callgrind-run.sh
. benches/callgrind-run.sh
# shellcheck source=benches/tokio-servers.sh
. benches/tokio-servers.sh

TARGET=${CARGO_TARGET_DIR:-target}
export CARGO_TERM_COLOR=never
if [ "$BUILD" = 1 ]; then
    cargo build --release -p tether-tokio --features hyper --example hyper_echo
    cargo build --release -p tether-benches --bin loadgen --bin floor_tokio
    cargo build --release --manifest-path benches/peers/Cargo.toml --target-dir "$TARGET/peers"
fi
LOADGEN=$TARGET/release/loadgen
WORK=$(mktemp -d)

# One run under callgrind; sets TOTAL (the instructions) and MESSAGES. In
# this shell, never a subshell, so that the exit trap sees the server's
# pid (see callgrind_cleanup).
measure() { # server port scenario|idle
    local command
    MESSAGES=0
    command=$(tokio_server_cmd "$1" "$2" 0)
    # shellcheck disable=SC2086 # the command is words on purpose
    callgrind_start $command
    if [ "$3" != idle ]; then
        local load
        read -ra load <<<"$(scenario_options "$3")"
        echo_load "$2" "$DURATION" --path / "${load[@]}"
    fi
    callgrind_stop >"$WORK/total"
    read -r TOTAL <"$WORK/total"
}

echo "== commit $(git rev-parse --short HEAD), $(date -u +%Y-%m-%dT%H:%MZ)"
printf '| scenario | server | instructions per message | messages |\n|---|---|--:|--:|\n'
port=19700
for server in $SERVERS; do
    port=$((port + 1))
    measure "$server" "$port" idle
    idle=$TOTAL
    for scenario in $SCENARIOS; do
        port=$((port + 1))
        measure "$server" "$port" "$scenario"
        printf '| %s | %s | %s | %s |\n' "$scenario" "$server" "$(per_message "$TOTAL" "$idle" "$MESSAGES")" "$MESSAGES"
    done
done
