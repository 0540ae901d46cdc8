#!/usr/bin/env bash
# Headless Chromium against the admin page (admin.mjs): tether serve --app
# hub with an admin listener and a metrics token; the browser signs in,
# load is applied from Node, and the page's figures and charts must move.
#
#   conformance/browser/admin.sh
#
# Installs what it needs: Debian's chromium (apt-get, when /usr/bin/chromium
# is missing) and playwright-core (npm ci here, when node_modules is missing
# or older than package-lock.json; the copy the browser tests use).
#
# Environment:
#   TETHER_BIN             the tether binary (default: cargo build --release -p tether)
#   TETHER_SCREENSHOT_DIR  keep the screenshots there (default: a scratch
#                          directory removed at the end)
#
# Prints "admin-page: N passed, M failed" last.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chromium=/usr/bin/chromium

say() { printf 'admin-page: %s\n' "$*"; }
give_up() {
    say "$*"
    echo "admin-page: 0 passed, 1 failed"
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-admin-page.XXXXXX")"
node_pid=""
cleanup() {
    local pid
    if [[ -n "$node_pid" ]]; then
        kill -TERM -- "-$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    # Servers admin.mjs started and did not get to stop: only those still
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

# --- playwright-core -----------------------------------------------------------
command -v node >/dev/null || give_up "node is not installed"
command -v npm >/dev/null || give_up "npm is not installed"
stamp="$here/node_modules/.tether-package-lock.json"
if ! cmp -s "$here/package-lock.json" "$stamp"; then
    say "npm ci"
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
        || give_up "npm ci failed"
    cp "$here/package-lock.json" "$stamp"
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
    TETHER_SCREENSHOT_DIR="${TETHER_SCREENSHOT_DIR:-$work}" \
    setsid timeout 180 node "$here/admin.mjs" >"$work/out.log" 2>&1 &
node_pid=$!
status=0
wait "$node_pid" || status=$?
node_pid=""
cat "$work/out.log"
if ! grep -qE '^admin-page: [0-9]+ passed' "$work/out.log"; then
    give_up "admin.mjs ended (status $status) without its summary"
fi
[[ $status == 0 ]]
