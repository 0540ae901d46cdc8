#!/usr/bin/env bash
# Headless Chromium tests of tether's demo page. See README.md beside this file.
#
#   conformance/browser/run.sh
#
# Installs what it needs: Debian's chromium (apt-get, only when
# /usr/bin/chromium is missing) and playwright-core (`npm ci`, only when
# node_modules is missing or older than package-lock.json). Playwright's own
# browser downloads are never used.
#
# Environment:
#   TETHER_BIN             the tether binary to test (default: build it with
#                          `cargo build --release -p tether`)
#   TETHER_SCREENSHOT_DIR  keep the screenshots there (default: a temporary
#                          directory removed at the end)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
label=browser
# shellcheck source=setup.sh
source "$here/setup.sh"
browser_setup
say "$("$chromium" --version 2>/dev/null || echo "chromium (version unknown)")"
trap 'say interrupted; exit 130' INT
trap 'say interrupted; exit 143' TERM

# --- the tests --------------------------------------------------------------
# The page over http:// and ws://, and the same page over https:// and
# wss://, run side by side: each is one Node process with its own Chromium
# and servers on ports of their own, in a scratch directory of its own, and
# most of either's time is spent waiting (tokens that expire, a server that
# restarts), so the two take little more than the longer one alone.
#
# Starts test.mjs as pass NAME with extra environment ("NAME=value"
# arguments); its spec report goes to $work/NAME/spec.txt.
start_tests() {
    local name=$1
    shift
    mkdir -p "$work/$name/tmp"
    env "$@" TMPDIR="$work/$name/tmp" TETHER_BIN="$bin" CHROMIUM="$chromium" TETHER_BROWSER_WORK="$work/$name" \
        TETHER_SCREENSHOT_DIR="${TETHER_SCREENSHOT_DIR:-$work/screenshots}/$name" \
        setsid timeout 300 node --test \
        --test-reporter=spec --test-reporter-destination="$work/$name/spec.txt" \
        --test-reporter=tap --test-reporter-destination="$work/$name/tap.txt" \
        "$here/test.mjs" >"$work/$name/out.txt" 2>&1 &
    node_pid="$node_pid $!"
    eval "pid_$name=$!"
}

# Waits for pass NAME, prints its report and summary line; returns non-zero
# on any failure.
finish_tests() {
    local name=$1 status=0 passed failed pid
    pid="pid_$name"
    wait "${!pid}" || status=$?
    cat "$work/$name/out.txt" "$work/$name/spec.txt" 2>/dev/null
    passed="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$work/$name/tap.txt" 2>/dev/null | tail -1)"
    failed="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$work/$name/tap.txt" 2>/dev/null | tail -1)"
    echo "browser: ${passed:-0} passed, ${failed:-0} failed"
    case "$status" in
    0) [[ "${passed:-0}" -gt 0 && "${failed:-0}" == 0 ]] || { say "$name: no test ran"; return 1; } ;;
    124) say "$name: the tests took longer than 300 s"; return 1 ;;
    *) say "$name: some tests failed (see above)"; return 1 ;;
    esac
}

# A certificate made here for 127.0.0.1, whose key Chromium is told to
# trust (--ignore-certificate-errors-spki-list takes the SHA-256 of its
# public key).
command -v openssl >/dev/null || give_up "openssl is not installed (it makes the test certificate)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.err" \
    || { cat "$work/openssl.err" >&2; give_up "openssl could not make a certificate"; }
spki="$(openssl x509 -in "$work/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)"

start_tests plain TETHER_BROWSER_PLAIN=1
start_tests tls TETHER_BROWSER_TLS_CERT="$work/cert.pem" TETHER_BROWSER_TLS_KEY="$work/key.pem" \
    TETHER_BROWSER_TLS_SPKI="$spki"
ok=1
say "over http:// and ws://"
finish_tests plain || ok=0
say "over https:// and wss://"
finish_tests tls || ok=0
node_pid=""
[[ "$ok" == 1 ]] || exit 1
