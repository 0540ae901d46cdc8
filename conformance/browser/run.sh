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
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chromium=/usr/bin/chromium

say() { printf 'browser: %s\n' "$*"; }
die() { printf 'browser: FAILED: %s\n' "$*" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-browser.XXXXXX")"
cleanup() {
    local rc=$? pid
    # Servers the tests started (test.mjs writes their pids here) and did not
    # get to stop: only those still running our binary.
    if [[ -f "$work/pids" ]]; then
        while read -r pid; do
            if [[ -n "$pid" && "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$bin")" ]]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$work/pids"
    fi
    if [[ -n "${node_pid:-}" ]]; then
        # Its own process group (setsid): node, its test process and servers.
        # (Playwright ends Chromium when node goes; Chromium's own group.)
        kill -TERM -- "-$node_pid" 2>/dev/null || true
        sleep 1
        kill -KILL -- "-$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
bin=""
node_pid=""
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say interrupted; exit 143' TERM

# --- Chromium (Debian's) ----------------------------------------------------
if [[ ! -x "$chromium" ]]; then
    sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "$chromium is missing and installing it needs root"
        sudo=(sudo)
    fi
    apt_install() {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q -o Dpkg::Use-Pty=0 chromium >>"$work/apt.log" 2>&1
    }
    say "installing Debian's chromium (apt-get)"
    if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        "${sudo[@]}" apt-get update -q >>"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; die "apt-get update failed"; }
    fi
    if ! apt_install; then
        # The package lists may be stale (a version the mirror no longer has).
        "${sudo[@]}" apt-get update -q >>"$work/apt.log" 2>&1 || true
        apt_install || { tail -30 "$work/apt.log" >&2; die "apt-get install chromium failed"; }
    fi
    [[ -x "$chromium" ]] || die "chromium was installed but $chromium is not there"
fi
say "$("$chromium" --version 2>/dev/null || echo "chromium (version unknown)")"

# --- playwright-core (npm ci when node_modules is missing or stale) -----------
command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"
stamp="$here/node_modules/.tether-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp"; then
    say "npm ci"
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
        || die "npm ci failed"
    cp "$here/package-lock.json" "$stamp"
fi

# --- the binary -------------------------------------------------------------
if [[ -n "${TETHER_BIN:-}" ]]; then
    bin="$TETHER_BIN"
else
    say "building: cargo build --release -p tether"
    (cd "$root" && cargo build --release -p tether) || die "cargo build failed"
    bin="${CARGO_TARGET_DIR:-$root/target}/release/tether"
fi
[[ -x "$bin" ]] || die "no tether binary at $bin"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

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
    0) [[ "${passed:-0}" -gt 0 && "${failed:-0}" == 0 ]] || die "no test ran" ;;
    124) die "the tests took longer than 300 s" ;;
    *) die "some tests failed (see above)" ;;
    esac
}

say "over http:// and ws://"
run_tests TETHER_BROWSER_PLAIN=1

# The same page over https:// and wss://: a certificate made here for
# 127.0.0.1, whose key Chromium is told to trust
# (--ignore-certificate-errors-spki-list takes the SHA-256 of its public key).
command -v openssl >/dev/null || die "openssl is not installed (it makes the test certificate)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.err" \
    || { cat "$work/openssl.err" >&2; die "openssl could not make a certificate"; }
spki="$(openssl x509 -in "$work/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)"
say "over https:// and wss://"
run_tests TETHER_BROWSER_TLS_CERT="$work/cert.pem" TETHER_BROWSER_TLS_KEY="$work/key.pem" \
    TETHER_BROWSER_TLS_SPKI="$spki"
