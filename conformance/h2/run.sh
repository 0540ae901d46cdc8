#!/usr/bin/env bash
# HTTP/2 against `tether serve --app demo` with real clients: curl over h2c
# (prior knowledge) and over TLS (ALPN h2), Python's `h2` (an event stream
# and an RFC 8441 WebSocket echo), Node's `node:http2` over both (event
# streams on one session, a resume, RFC 8441 WebSockets, a refused
# publish; see node-client.mjs), nghttp when it can be installed, and a
# server with `--http2 off` that serves HTTP/1.1 only.
#
#   conformance/h2/run.sh
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#   PYTHON      the interpreter for the venv (default: python3)
#
# Prints "h2: N passed, M failed" last.
set -uo pipefail

H2_VERSION=4.3.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
token="h2-conformance-token"

passed=0
failed=0
say() { printf 'h2: %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf 'ok   %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check NAME COMMAND...: passes when the command succeeds
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-h2.XXXXXX")"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

command -v curl >/dev/null || { say "curl is not installed"; echo "h2: 0 passed, 1 failed"; exit 1; }
curl --version | grep -q nghttp2 || { say "this curl has no HTTP/2"; echo "h2: 0 passed, 1 failed"; exit 1; }

if [[ -n "${TETHER_BIN:-}" ]]; then
    bin="$TETHER_BIN"
else
    say "building: cargo build --release -p tether"
    (cd "$root" && cargo build --release -p tether) || { echo "h2: 0 passed, 1 failed"; exit 1; }
    bin="${CARGO_TARGET_DIR:-$root/target}/release/tether"
fi

free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts the server with "$@" and waits until PORT answers /healthz over
# HTTP/1.1.
start() {
    local port=$1
    shift
    "$bin" serve --app demo --memory --threads 1 --port "$port" --publish-token "$token" --log-level warn "$@" \
        >"$work/server-$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
        sleep 0.1
    done
    say "the server on $port did not start:"
    cat "$work/server-$port.log"
    return 1
}

plain=$(free_port)
tls=$(free_port)
off=$(free_port)
start "$plain" --tls-self-signed --tls-listen "127.0.0.1:$tls" || { echo "h2: $passed passed, $((failed + 1)) failed"; exit 1; }
start "$off" --http2 off || { echo "h2: $passed passed, $((failed + 1)) failed"; exit 1; }

# --- curl over h2c ----------------------------------------------------------
healthz() {
    local out
    out=$(curl -s --max-time 5 "$@" -w ' %{http_version} %{http_code}')
    [[ "$out" == $'ok\n 2 200' ]] || { echo "    got: $out"; return 1; }
}
check "curl --http2-prior-knowledge GET /healthz" healthz --http2-prior-knowledge "http://127.0.0.1:$plain/healthz"

publish() {
    local out
    out=$(curl -s --max-time 5 --http2-prior-knowledge -H "Authorization: Bearer $token" \
        --data-binary "$2" "http://127.0.0.1:$plain/topics/$1" -o /dev/null -w '%{http_version} %{http_code}')
    [[ "$out" == "2 200" ]] || { echo "    got: $out"; return 1; }
}
check "curl --http2-prior-knowledge POST /topics/curl (publish)" publish curl "from curl"

sse() {
    local scheme=$1 port=$2
    shift 2
    local file="$work/sse-$port"
    timeout 10 curl -sN "$@" "$scheme://127.0.0.1:$port/topics/curl-sse-$port/events" >"$file" 2>/dev/null &
    local reader=$!
    for _ in $(seq 50); do grep -q '^retry:' "$file" 2>/dev/null && break; sleep 0.1; done
    curl -s --max-time 5 -H "Authorization: Bearer $token" --data-binary "over h2 $port" \
        "http://127.0.0.1:$plain/topics/curl-sse-$port" -o /dev/null
    local got=1
    for _ in $(seq 50); do
        if grep -q "^data: over h2 $port\$" "$file"; then got=0; break; fi
        sleep 0.1
    done
    kill "$reader" 2>/dev/null
    wait "$reader" 2>/dev/null
    [[ $got == 0 ]] || { echo "    stream: $(head -c 300 "$file")"; return 1; }
}
check "curl -N --http2-prior-knowledge event stream gets a publish" sse http "$plain" --http2-prior-knowledge

# --- curl over TLS with ALPN h2 ---------------------------------------------
tls_healthz() {
    local out
    out=$(curl -sk --max-time 5 --http2 "https://localhost:$tls/healthz" -w ' %{http_version} %{http_code}' \
        --resolve "localhost:$tls:127.0.0.1")
    [[ "$out" == $'ok\n 2 200' ]] || { echo "    got: $out"; return 1; }
}
check "curl --http2 -k over TLS (ALPN h2) GET /healthz" tls_healthz
check "curl -N --http2 -k event stream over TLS gets a publish" sse https "$tls" --http2 -k

# A publish refused on its head (no token) while curl still sends a body
# larger than a stream's window: curl must get the 401, not a stream error
# (the server reads and drops the rest of the body instead of resetting).
refused() {
    local out
    head -c 200000 /dev/zero | tr '\0' x >"$work/body"
    out=$(curl -s --max-time 5 "$@" --data-binary @"$work/body" -o /dev/null -w '%{http_version} %{http_code}') ||
        { echo "    curl exited $? ($out)"; return 1; }
    [[ "$out" == "2 401" ]] || { echo "    got: $out"; return 1; }
}
check "curl --http2-prior-knowledge publish without a token, 200 KB body: 401" \
    refused --http2-prior-knowledge "http://127.0.0.1:$plain/topics/curl"
check "curl --http2 -k publish without a token over TLS, 200 KB body: 401" \
    refused --http2 -k --resolve "localhost:$tls:127.0.0.1" "https://localhost:$tls/topics/curl"

# --- --http2 off --------------------------------------------------------------
h1_only() {
    local out
    out=$(curl -s --max-time 5 "http://127.0.0.1:$off/healthz" -w ' %{http_version} %{http_code}')
    [[ "$out" == $'ok\n 1.1 200' ]] || { echo "    got: $out"; return 1; }
    # Prior knowledge is refused: the preface is not an HTTP/1.1 request.
    ! curl -s --max-time 5 --http2-prior-knowledge "http://127.0.0.1:$off/healthz" -o /dev/null
}
check "--http2 off: HTTP/1.1 served, h2c refused" h1_only

# --- Python h2 ----------------------------------------------------------------
stamp="h2==$H2_VERSION $("$python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)"
if [[ "$(cat "$venv/.tether-stamp" 2>/dev/null)" != "$stamp" ]]; then
    say "creating $venv ($stamp)"
    rm -rf "$venv"
    if "$python" -m venv "$venv" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "h2==$H2_VERSION"; then
        printf '%s\n' "$stamp" >"$venv/.tether-stamp"
    fi
fi
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import h2' 2>/dev/null; then
    while IFS= read -r line; do
        case "$line" in
            ok\ *) ok "${line#ok }" ;;
            FAIL\ *) bad "${line#FAIL }" ;;
            *) echo "$line" ;;
        esac
    done < <(timeout 60 "$venv/bin/python" "$here/h2_client.py" 127.0.0.1 "$plain" "$token" 2>&1)
else
    bad "python-h2: the venv could not be made"
fi

# --- Node's http2 module, over h2c and over TLS (ALPN h2) ----------------------
if ! command -v node >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing nodejs"
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq nodejs >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq nodejs >/dev/null 2>&1; } \
        || true
fi
if command -v node >/dev/null; then
    for transport in "h2c $plain" "tls $tls"; do
        read -r mode port <<<"$transport"
        log="$work/node-$mode.log"
        timeout 150 node "$here/node-client.mjs" "$mode" 127.0.0.1 "$port" "$token" >"$log" 2>&1
        status=$?
        before=$failed
        while IFS= read -r line; do
            case "$line" in
                ok\ *) ok "${line#ok }" ;;
                FAIL\ *) bad "${line#FAIL }" ;;
                *) echo "    $line" ;;
            esac
        done <"$log"
        # A crash or a kill that left no FAIL line still counts as one.
        [[ $status == 0 || $failed -gt $before ]] || bad "node-http2 $mode: the client exited with $status"
    done
else
    bad "node-http2: node is not installed"
fi

# --- nghttp (Debian's nghttp2-client), when it installs ------------------------
if ! command -v nghttp >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing nghttp2-client"
    DEBIAN_FRONTEND=noninteractive timeout 120 apt-get install -y -qq nghttp2-client >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive timeout 120 apt-get install -y -qq nghttp2-client >/dev/null 2>&1; } \
        || true
fi
if command -v nghttp >/dev/null; then
    nghttp_get() {
        local out
        out=$(timeout 10 nghttp -n -s "http://127.0.0.1:$plain/healthz" 2>&1) || { echo "    $out"; return 1; }
        # -s prints a table with the stream's status.
        grep -qE '^ *\+?[0-9.]+(us|ms|s)? .* 200 ' <<<"$out" || { echo "    $out"; return 1; }
    }
    check "nghttp GET /healthz over h2c" nghttp_get
else
    say "nghttp not available here (not counted)"
fi

echo "h2: $passed passed, $failed failed"
[[ $failed == 0 ]]
