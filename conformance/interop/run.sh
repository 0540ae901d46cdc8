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

# --- the server and the tests ----------------------------------------------
# The hub's publish token goes through the environment, as it should in use.
token="interop-$RANDOM$RANDOM"

# Starts the server (extra options in "$@") and waits for its listening
# line; sets server_pid and port.
start_server() {
    TETHER_PUBLISH_TOKEN="$token" "$bin" serve --addr 127.0.0.1 --port 0 --app demo --memory --log-level warn "$@" \
        >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    port=""
    for _ in $(seq 100); do
        port="$(sed -n 's|^tether listening on https\{0,1\}://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$work/server.out")"
        [[ -n "$port" ]] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$port" ]]; then
        cat "$work/server.err" >&2
        die "the server did not print its listening line within 10 s"
    fi
    say "server on 127.0.0.1:$port (pid $server_pid) $*"
}

# Runs the suite against URL, then stops the server.
run_suite() {
    local url="$1" status=0
    # In the background, so that a signal reaches the traps at once.
    # curl speaks HTTP/1.1 here, over TLS too (where ALPN would pick h2):
    # this suite is the HTTP/1.1 path; HTTP/2 has conformance/h2.
    printf '#!/bin/sh\nexec curl --http1.1 "$@"\n' > "$work/curl-http1.1"
    chmod +x "$work/curl-http1.1"
    setsid timeout 300 "$venv/bin/python" "$here/test_interop.py" \
        --url "$url" --tether "$bin" --token "$token" --curl "$work/curl-http1.1" &
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
    kill -TERM "$server_pid"
    wait "$server_pid" || die "the server exited with status $? on SIGTERM"
    server_pid=""
}

start_server
run_suite "http://127.0.0.1:$port"

# Compressed event streams with curl --compressed -N, over HTTP/1.1 and
# HTTP/2 (h2c): the head names the coding, curl inflates each event as it
# comes, a resume replays exactly the rest; then a stream the server ends
# (SIGTERM) ends with a trailer curl checks (it exits 0, not 61).
publish_id() {
    curl -s --max-time 10 -H "Authorization: Bearer $token" --data-binary "$2" "$1" \
        | sed -n 's|.*"id":"\([^"]*\)".*|\1|p'
}
compressed_case() {
    local url="$1" coding="$2" topic="zip$RANDOM" rc=0 first second
    shift 2
    local data='{"symbol":"ACME","bid":101.25,"ask":101.5,"venue":"XNAS","note":"a quote, a quote, a quote"}'
    first="$(publish_id "$url/topics/$topic" "$data")"
    second="$(publish_id "$url/topics/$topic" "$data")"
    [[ -n "$first" && -n "$second" ]] || die "compressed: could not publish to $topic"
    curl "$@" --compressed -sN --max-time 2 -D "$work/zip.head" -H "Accept-Encoding: $coding" \
        -H "Last-Event-ID: $first" "$url/topics/$topic/events" >"$work/zip.body" || rc=$?
    [[ "$rc" == 28 ]] || die "compressed ($coding $*): curl exited $rc, expected 28 (--max-time)"
    grep -qi "^content-encoding: $coding" "$work/zip.head" \
        || die "compressed ($coding $*): no Content-Encoding: $coding in $(cat "$work/zip.head")"
    grep -qi '^vary: accept-encoding' "$work/zip.head" || die "compressed ($coding $*): no Vary"
    grep -qx "id: $second" "$work/zip.body" && ! grep -q "id: $first" "$work/zip.body" \
        || die "compressed ($coding $*): not exactly the rest: $(cat "$work/zip.body")"
    "$bin" sse-decode <"$work/zip.body" | grep -q "$second" \
        || die "compressed ($coding $*): sse-decode did not read the event"
    say "compressed event stream: $coding $* (resumed after $first: $second)"
}
start_server
for coding in gzip deflate; do
    compressed_case "http://127.0.0.1:$port" "$coding" --http1.1
    compressed_case "http://127.0.0.1:$port" "$coding" --http2-prior-knowledge
done
curl --compressed -sN --max-time 20 "http://127.0.0.1:$port/topics/zipend/events" >"$work/zipend.body" &
curl_pid=$!
for _ in $(seq 50); do
    grep -q '^retry:' "$work/zipend.body" && break
    sleep 0.1
done
publish_id "http://127.0.0.1:$port/topics/zipend" '"the last word"' >/dev/null
sleep 0.5
kill -TERM "$server_pid"
wait "$server_pid" || die "the server exited with status $? on SIGTERM"
server_pid=""
rc=0
wait "$curl_pid" || rc=$?
[[ "$rc" == 0 ]] || die "compressed: curl exited $rc on a stream the server ended (its trailer)"
grep -q 'data: "the last word"' "$work/zipend.body" || die "compressed: the last event: $(cat "$work/zipend.body")"
say "compressed event stream ended by the server: curl checked its trailer"

# The same suite over TLS (https://, wss://), with a certificate made here
# for localhost that the clients are told to trust: curl through
# CURL_CA_BUNDLE, Python's default context through SSL_CERT_FILE.
command -v openssl >/dev/null || die "openssl is not installed (it makes the test certificate)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.err" \
    || { cat "$work/openssl.err" >&2; die "openssl could not make a certificate"; }
# The TLS listener beside the plain one (--tls-listen): the suite runs
# over TLS, and the plain port still answers http:// in the same process.
start_server --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" --tls-listen 127.0.0.1:0
tls_port=""
for _ in $(seq 50); do
    tls_port="$(sed -n 's|^TLS beside it on https://127\.0\.0\.1:\([0-9]*\)/$|\1|p' "$work/server.out")"
    [[ -n "$tls_port" ]] && break
    sleep 0.1
done
[[ -n "$tls_port" ]] || die "--tls-listen: the server did not print its TLS listener"
[[ "$(curl -s --max-time 10 "http://127.0.0.1:$port/healthz")" == "ok" ]] \
    || die "--tls-listen: the plain port did not answer http://"
[[ "$(CURL_CA_BUNDLE="$work/cert.pem" curl -s --max-time 10 "https://localhost:$tls_port/healthz")" == "ok" ]] \
    || die "--tls-listen: the TLS port did not answer https://"
say "--tls-listen: http:// on $port and https:// on $tls_port side by side"
CURL_CA_BUNDLE="$work/cert.pem" SSL_CERT_FILE="$work/cert.pem" run_suite "https://localhost:$tls_port"

# SIGHUP reads the certificate files again: a connection made before goes
# on, new handshakes get the new certificate.
fingerprint() {
    openssl s_client -connect "127.0.0.1:$port" -servername localhost </dev/null 2>/dev/null \
        | openssl x509 -noout -fingerprint -sha256 | sed 's|.*=||'
}
start_server --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
old_fingerprint="$(fingerprint)"
( printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n'; sleep 2
  printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' ) \
    | openssl s_client -quiet -connect "127.0.0.1:$port" -servername localhost 2>/dev/null >"$work/kept.out" &
kept_pid=$!
sleep 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.err" \
    || { cat "$work/openssl.err" >&2; die "openssl could not make a second certificate"; }
kill -HUP "$server_pid"
for _ in $(seq 40); do
    new_fingerprint="$(fingerprint)"
    [[ -n "$new_fingerprint" && "$new_fingerprint" != "$old_fingerprint" ]] && break
    sleep 0.25
done
wait "$kept_pid" || true
[[ -n "$old_fingerprint" && -n "$new_fingerprint" && "$old_fingerprint" != "$new_fingerprint" ]] \
    || die "after SIGHUP the server presents '$new_fingerprint' (before: '$old_fingerprint')"
[[ "$(grep -c '^ok$' "$work/kept.out")" == 2 ]] \
    || die "the connection made before SIGHUP did not get both answers: $(cat "$work/kept.out")"
kill -TERM "$server_pid"
wait "$server_pid" || die "the server exited with status $? on SIGTERM"
server_pid=""
say "SIGHUP: the new certificate is presented; a connection made before it was answered twice"
echo "interop: 1 passed, 0 failed"

# --tls-self-signed: the certificate it makes is the one it serves, with
# the fingerprint it printed (curl trusts it with -k only).
start_server --tls-self-signed
printed="$(sed -n 's|^TLS: a self-signed certificate .*SHA-256 \([0-9A-F:]*\)$|\1|p' "$work/server.out")"
served="$(openssl s_client -connect "127.0.0.1:$port" -servername localhost </dev/null 2>/dev/null \
    | openssl x509 -noout -fingerprint -sha256 | sed 's|.*=||')"
[[ -n "$printed" && "$printed" == "$served" ]] \
    || die "--tls-self-signed printed fingerprint '$printed', the server presents '$served'"
[[ "$(curl -sk --max-time 10 "https://localhost:$port/healthz")" == "ok" ]] \
    || die "curl -k https://localhost:$port/healthz did not answer ok"
kill -TERM "$server_pid"
wait "$server_pid" || die "the server exited with status $? on SIGTERM"
server_pid=""
say "--tls-self-signed: fingerprint $printed matches; curl -k answered"
echo "interop: 1 passed, 0 failed"
