#!/usr/bin/env bash
# Interoperability tests: tether's server against Python's `websockets`
# client and curl. See README.md beside this file.
#
#   conformance/interop/run.sh
#
# Environment:
#   TETHER_BIN        the tether binary to test (default: build it with
#                     `cargo build --release -p tether`)
#   TETHER_CACHE_DIR  where the venv is cached (default: ~/.cache/tether)
#   PYTHON            the interpreter for the venv (default: python3; >= 3.11)
set -euo pipefail

WEBSOCKETS_VERSION=17.4

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${TETHER_CACHE_DIR:-$HOME/.cache/tether}"
venv="$cache/interop-venv"
python="${PYTHON:-python3}"

say() { printf 'interop: %s\n' "$*"; }
die() { printf 'interop: FAILED: %s\n' "$*" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-interop.XXXXXX")"
server_pid=""
tests_pid=""
cleanup() {
    local rc=$?
    if [[ -n "$tests_pid" ]]; then
        # Its own process group (setsid): curl and sse-decode children too.
        kill -TERM -- "-$tests_pid" 2>/dev/null || true
        wait "$tests_pid" 2>/dev/null || true
    fi
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say interrupted; exit 143' TERM

command -v curl >/dev/null || die "curl is not installed"

# --- the binary -------------------------------------------------------------
if [[ -n "${TETHER_BIN:-}" ]]; then
    bin="$TETHER_BIN"
else
    say "building: cargo build --release -p tether"
    (cd "$root" && cargo build --release -p tether) || die "cargo build failed"
    bin="${CARGO_TARGET_DIR:-$root/target}/release/tether"
fi
[[ -x "$bin" ]] || die "no tether binary at $bin"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$python is missing or older than 3.11 (websockets $WEBSOCKETS_VERSION needs 3.11); set PYTHON"

# --- the venv (cached; rebuilt when the pin changes or a build was cut short) --
stamp="websockets==$WEBSOCKETS_VERSION $("$python" -c 'import sys; print(sys.version.split()[0])')"
mkdir -p "$cache"
(
    flock 9
    if [[ "$(cat "$venv/.tether-stamp" 2>/dev/null)" != "$stamp" ]]; then
        say "creating $venv ($stamp)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "websockets==$WEBSOCKETS_VERSION"
        printf '%s\n' "$stamp" >"$venv/.tether-stamp"
    fi
) 9>"$cache/interop-venv.lock" || die "could not create the venv at $venv"

# --- the server -------------------------------------------------------------
# The hub's publish token goes through the environment, as it should in use.
token="interop-$RANDOM$RANDOM"
TETHER_PUBLISH_TOKEN="$token" "$bin" serve --addr 127.0.0.1 --port 0 --app demo --log-level warn \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port=""
for _ in $(seq 100); do
    port="$(sed -n 's|^tether listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$work/server.out")"
    [[ -n "$port" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$port" ]]; then
    cat "$work/server.err" >&2
    die "the server did not print its listening line within 10 s"
fi
say "server on 127.0.0.1:$port (pid $server_pid)"

# --- the tests --------------------------------------------------------------
# In the background, so that a signal reaches the traps at once.
status=0
setsid timeout 300 "$venv/bin/python" "$here/test_interop.py" \
    --url "http://127.0.0.1:$port" --tether "$bin" --token "$token" &
tests_pid=$!
wait "$tests_pid" || status=$?
tests_pid=""

if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$work/server.err" >&2
    die "the server died during the tests"
fi
if [[ -s "$work/server.err" ]]; then
    say "server log (warnings and errors):"
    sed 's/^/    /' "$work/server.err"
fi
case "$status" in
0) ;;
124) die "the tests took longer than 300 s" ;;
*) die "some tests failed (see FAIL lines above)" ;;
esac
