#!/usr/bin/env bash
# tether-quic against an independent HTTP/3 client: Python's aioquic (its
# own QUIC stack, and a QPACK encoder that uses the dynamic table) sends
# requests to the h3_serve example over a real UDP socket.
#
#   crates/quic/interop/run.sh
#
# Environment:
#   TETHER_CACHE_DIR  where the venv is cached (default: ~/.cache/tether)
#   PYTHON            the interpreter for the venv (default: python3; >= 3.10)
set -euo pipefail

# aioquic and every package it pulls in, pinned so that each run installs
# the same ones.
pins=(
    aioquic==1.7.2 attrs==26.1.0 certifi==2026.10.19.post1 cffi==2.1.1 cryptography==50.0.2
    pycparser==3.12 pylsqpack==1.0.0 pyOpenSSL==26.4.0 service-identity==26.1.0
    typing_extensions==4.16.0
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cache="${TETHER_CACHE_DIR:-$HOME/.cache/tether}"
venv="$cache/h3-venv"
python="${PYTHON:-python3}"

say() { printf 'h3-interop: %s\n' "$*"; }
die() { printf 'h3-interop: FAILED: %s\n' "$*" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-h3.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- the venv (cached; rebuilt when a pin changes or a build was cut short) --
stamp="${pins[*]} $("$python" -c 'import sys; print(sys.version.split()[0])')"
mkdir -p "$cache"
(
    flock 9
    if [[ "$(cat "$venv/.tether-stamp" 2>/dev/null)" != "$stamp" ]]; then
        say "creating $venv"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
        printf '%s\n' "$stamp" >"$venv/.tether-stamp"
    fi
) 9>"$cache/h3-venv.lock" || die "could not create the venv at $venv"

# --- the server, on a free port ----------------------------------------------
(cd "$root" && cargo build -q -p tether-quic --example h3_serve) || die "cargo build failed"
"$root/target/debug/examples/h3_serve" "$work/cert.pem" 60 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 100); do
    grep -q '^listening ' "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
port="$(awk '/^listening /{print $2}' "$work/server.out")"
[[ -n "$port" ]] || die "the server did not start: $(cat "$work/server.err")"

# --- the client ----------------------------------------------------------------
timeout 60 "$venv/bin/python" "$here/aioquic_client.py" "$port" "$work/cert.pem" \
    || die "aioquic's requests failed; the server said: $(tail -20 "$work/server.err")"
