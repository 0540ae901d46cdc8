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
# Runs test.mjs with extra environment ("NAME=value" arguments); prints the
# summary line and fails on any failure.
run_tests() {
    local status=0 passed failed
    mkdir -p "$work/tmp"
    rm -f "$work/tap.txt"
    env "$@" TMPDIR="$work/tmp" TETHER_BIN="$bin" CHROMIUM="$chromium" TETHER_BROWSER_WORK="$work" \
        TETHER_SCREENSHOT_DIR="${TETHER_SCREENSHOT_DIR:-$work/screenshots}" \
        setsid timeout 300 node --test \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$work/tap.txt" \
        "$here/test.mjs" &
    node_pid=$!
    wait "$node_pid" || status=$?
    node_pid=""
    passed="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$work/tap.txt" 2>/dev/null | tail -1)"
    failed="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$work/tap.txt" 2>/dev/null | tail -1)"
    echo "browser: ${passed:-0} passed, ${failed:-0} failed"
    case "$status" in
    0) [[ "${passed:-0}" -gt 0 && "${failed:-0}" == 0 ]] || give_up "no test ran" ;;
    124) give_up "the tests took longer than 300 s" ;;
    *) give_up "some tests failed (see above)" ;;
    esac
}

say "over http:// and ws://"
run_tests TETHER_BROWSER_PLAIN=1

# The same page over https:// and wss://: a certificate made here for
# 127.0.0.1, whose key Chromium is told to trust
# (--ignore-certificate-errors-spki-list takes the SHA-256 of its public key).
command -v openssl >/dev/null || give_up "openssl is not installed (it makes the test certificate)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.err" \
    || { cat "$work/openssl.err" >&2; give_up "openssl could not make a certificate"; }
spki="$(openssl x509 -in "$work/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)"
say "over https:// and wss://"
run_tests TETHER_BROWSER_TLS_CERT="$work/cert.pem" TETHER_BROWSER_TLS_KEY="$work/key.pem" \
    TETHER_BROWSER_TLS_SPKI="$spki"
