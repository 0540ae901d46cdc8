#!/usr/bin/env bash
# The chaos test (chaos.py): a Redis Cluster of three primaries, two tether
# nodes behind HAProxy in round robin, 200 SSE and 200 WebSocket
# subscribers resuming by their last id through the proxy, publishers on
# both nodes; a tether node and a Redis primary killed with SIGKILL
# mid-stream. Then one `tether serve --data-dir` restarted twice (SIGTERM,
# SIGKILL) under SSE subscribers. Every subscriber must end with every
# acknowledged event exactly once, in order.
#
#   conformance/proxy/chaos.sh
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#   PYTHON      the interpreter for the venv (default: python3; >= 3.11)
#
# Installs haproxy, redis-server and redis-tools when they are missing (as
# root, with apt-get), and Python's websockets into .venv beside this file
# (the same venv as run.sh). Prints "chaos: N passed, M failed" last.
set -uo pipefail

WEBSOCKETS_VERSION=17.4
TIME_LIMIT=150

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
missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v redis-cli >/dev/null || missing+=(redis-tools)
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null \
        || give_up "missing ${missing[*]}, and apt-get cannot install them here (not root)"
    say "installing ${missing[*]}"
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$work/apt.log" 2>&1 \
        || { tail -20 "$work/apt.log"; give_up "apt-get install ${missing[*]} failed"; }
fi

if [[ -n "${TETHER_BIN:-}" ]]; then
    bin="$TETHER_BIN"
else
    say "building: cargo build --release -p tether"
    (cd "$root" && cargo build --release -p tether) || give_up "cargo build failed"
    bin="${CARGO_TARGET_DIR:-$root/target}/release/tether"
fi
[[ -x "$bin" ]] || give_up "no tether binary at $bin"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || give_up "$python is missing or older than 3.11 (websockets $WEBSOCKETS_VERSION needs 3.11); set PYTHON"
stamp="websockets==$WEBSOCKETS_VERSION $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [[ "$(cat "$venv/.tether-stamp" 2>/dev/null)" != "$stamp" ]]; then
    say "creating $venv ($stamp)"
    rm -rf "$venv"
    "$python" -m venv "$venv" \
        && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION" \
        && printf '%s\n' "$stamp" >"$venv/.tether-stamp" \
        || give_up "could not make the venv at $venv"
fi
# 400 subscribers, each a socket to HAProxy and HAProxy's to a node.
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
    for log in "$work"/*/node*.log "$work"/*/durable*.log "$work"/*/haproxy.log; do
        [[ -s "$log" ]] || continue
        say "$(basename "$log"):"
        tail -20 "$log" | sed 's/^/    /'
    done
fi

echo "chaos: $passed passed, $failed failed"
[[ $failed == 0 ]]
