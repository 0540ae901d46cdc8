#!/usr/bin/env bash
# Headless Chromium over https:// and HTTP/2 against tether serve --app
# demo --tls-self-signed: ten EventSources and a WebSocket live at once on
# one connection, and with --http2 off the seventh EventSource stalled
# behind Chromium's six connections per host (browser.mjs).
#
#   conformance/h2/browser.sh
#
# Installs what it needs: Debian's chromium (apt-get, when /usr/bin/chromium
# is missing) and playwright-core into conformance/browser/node_modules
# (npm ci there, when missing or older than its package-lock.json; the
# same copy the browser tests use).
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#
# Prints "h2-browser: N passed, M failed" last.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
browser_dir="$root/conformance/browser"
chromium=/usr/bin/chromium

say() { printf 'h2-browser: %s\n' "$*"; }
give_up() {
    say "$*"
    echo "h2-browser: 0 passed, 1 failed"
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-h2-browser.XXXXXX")"
node_pid=""
cleanup() {
    local pid
    if [[ -n "$node_pid" ]]; then
        kill -TERM -- "-$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    # Servers browser.mjs started and did not get to stop: only those still
    # running our binary.
    if [[ -f "$work/pids" ]]; then
        while read -r pid; do
            if [[ -n "$pid" && "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$bin")" ]]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$work/pids"
    fi
    rm -rf "$work"
}
bin=""
trap cleanup EXIT

# --- Chromium (Debian's) -----------------------------------------------------
if [[ ! -x "$chromium" ]]; then
    [[ $(id -u) == 0 ]] || give_up "$chromium is missing and installing it needs root"
    say "installing Debian's chromium (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >"$work/apt.log" 2>&1 \
        || { apt-get update -qq >>"$work/apt.log" 2>&1 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >>"$work/apt.log" 2>&1; } \
        || { tail -20 "$work/apt.log"; give_up "apt-get install chromium failed"; }
fi
command -v ss >/dev/null || give_up "ss (iproute2) is not installed"

# --- playwright-core: conformance/browser's copy -------------------------------
command -v node >/dev/null || give_up "node is not installed"
command -v npm >/dev/null || give_up "npm is not installed"
stamp="$browser_dir/node_modules/.tether-package-lock.json"
if ! cmp -s "$browser_dir/package-lock.json" "$stamp"; then
    say "npm ci in conformance/browser"
    (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
        || give_up "npm ci failed"
    cp "$browser_dir/package-lock.json" "$stamp"
fi

# --- the binary ----------------------------------------------------------------
if [[ -n "${TETHER_BIN:-}" ]]; then
    bin="$TETHER_BIN"
else
    say "building: cargo build --release -p tether"
    (cd "$root" && cargo build --release -p tether) || give_up "the build failed"
    bin="${CARGO_TARGET_DIR:-$root/target}/release/tether"
fi
[[ -x "$bin" ]] || give_up "no tether binary at $bin"

# --- the run -----------------------------------------------------------------
# Its own process group, so that the cleanup ends Chromium with it.
TETHER_BIN="$bin" CHROMIUM="$chromium" WORK="$work" TMPDIR="$work" \
    setsid timeout 180 node "$here/browser.mjs" >"$work/out.log" 2>&1 &
node_pid=$!
status=0
wait "$node_pid" || status=$?
node_pid=""
cat "$work/out.log"
if ! grep -qE '^h2-browser: [0-9]+ passed' "$work/out.log"; then
    give_up "browser.mjs ended (status $status) without its summary"
fi
[[ $status == 0 ]]
