#!/usr/bin/env bash
# The chaos test (chaos.py): a Redis Cluster of three primaries, two tether
# nodes behind HAProxy in round robin, 200 SSE and 200 WebSocket
# subscribers resuming by their last id through the proxy, publishers on
# both nodes; a tether node and a Redis primary killed with SIGKILL
# mid-stream. The same on a RabbitMQ cluster of three nodes (streams of
# three replicas) with 100 SSE and 100 WebSocket subscribers: a tether
# node killed, then the RabbitMQ node that writes the busiest topic's
# stream. Then one `tether serve --data-dir` restarted twice (SIGTERM,
# SIGKILL) under SSE subscribers. Every subscriber must end with every
# acknowledged event exactly once, in order.
#
#   conformance/proxy/chaos.sh [--phase cluster|rabbitmq|data-dir]
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#   PYTHON      the interpreter for the venv (default: python3; >= 3.11)
#
# Installs haproxy, redis-server, redis-tools and rabbitmq-server when they
# are missing (as root, with apt-get), and Python's websockets into .venv
# beside this file (the same venv as run.sh). Prints "chaos: N passed, M
# failed" last.
set -uo pipefail

WEBSOCKETS_VERSION=17.4
# About 32 s for Redis and the data-dir node, 30 s for RabbitMQ; room for
# a busy machine, where a RabbitMQ node may take a minute to boot.
TIME_LIMIT=240

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
token="chaos-$RANDOM$RANDOM"

passed=0
failed=0
say() { printf 'chaos: %s\n' "$*"; }
give_up() {
    say "$*"
    echo "chaos: $passed passed, $((failed + 1)) failed"
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-chaos.XXXXXX")"
client_pid=""
cleanup() {
    if [[ -n "$client_pid" ]]; then
        # Its own process group (setsid): the servers it started too.
        kill -TERM -- "-$client_pid" 2>/dev/null || true
        wait "$client_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say interrupted; exit 143' TERM

# --- what it needs ------------------------------------------------------------
. "$here/prepare.sh"
install_missing haproxy=haproxy redis-server=redis-server redis-cli=redis-tools \
    rabbitmq-server=rabbitmq-server
find_tether
websockets_venv
# 400 subscribers at most, each a socket to HAProxy and HAProxy's to a node.
ulimit -n 4096 2>/dev/null || true

# --- the run --------------------------------------------------------------------
# In the background, in a process group of its own, so that a signal
# reaches the traps at once and cleanup ends the servers it started.
setsid timeout "$TIME_LIMIT" "$venv/bin/python" "$here/chaos.py" \
    --tether "$bin" --token "$token" --work "$work" "$@" >"$work/client.out" 2>&1 &
client_pid=$!
wait "$client_pid"
status=$?
client_pid=""

while IFS= read -r line; do
    case "$line" in
        ok\ *) passed=$((passed + 1)); printf 'ok   %s\n' "${line#ok }" ;;
        FAIL\ *) failed=$((failed + 1)); printf 'FAIL %s\n' "${line#FAIL }" ;;
        *) printf '    %s\n' "$line" ;;
    esac
done <"$work/client.out"
if [[ $status != 0 && $failed == 0 ]]; then
    [[ $status == 124 ]] && say "the run took longer than $TIME_LIMIT s" || say "chaos.py exited with status $status"
    failed=$((failed + 1))
fi
if ((failed)); then
    for log in "$work"/*/node*.log "$work"/*/durable*.log "$work"/*/haproxy.log "$work"/*/rabbitmq/node*/log/*@localhost.log; do
        [[ -s "$log" ]] || continue
        say "$(basename "$log"):"
        tail -20 "$log" | sed 's/^/    /'
    done
fi

echo "chaos: $passed passed, $failed failed"
[[ $failed == 0 ]]
