#!/usr/bin/env bash
# The browser client's tests: the build (and its size limit), the package,
# the demo page's copy of the built module, unit tests in Node, and the
# integration tests in headless Chromium against `tether serve`.
#
#   clients/js/test/run.sh
#
# Installs what it needs: Debian's chromium (apt-get, only when
# /usr/bin/chromium is missing) and the dev dependencies (`npm ci`, only
# when node_modules is missing or was installed from another lock file).
# The last line is `js-client: N passed, M failed`.
#
# Environment:
#   TETHER_BIN   the tether binary (default: cargo build --release -p tether)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pkg="$(cd "$here/.." && pwd)"
root="$(cd "$pkg/../.." && pwd)"
chromium=/usr/bin/chromium

passed=0
failed=0
say() { printf 'js-client: %s\n' "$*"; }
summary() { echo "js-client: $passed passed, $failed failed"; }
ok() { passed=$((passed + 1)); say "ok: $*"; }
bad() { failed=$((failed + 1)); say "FAILED: $*" >&2; }
die() { bad "$*"; summary; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-js.XXXXXX")"
bin=""
node_pid=""
cleanup() {
    local rc=$? pid
    # Servers the tests started and did not get to stop: only those still
    # running our binary.
    if [[ -f "$work/pids" && -n "$bin" ]]; then
        while read -r pid; do
            if [[ -n "$pid" && "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$bin")" ]]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$work/pids"
    fi
    if [[ -n "$node_pid" ]]; then
        kill -TERM -- "-$node_pid" 2>/dev/null || true
        sleep 1
        kill -KILL -- "-$node_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$rc"
}
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
    say "installing Debian's chromium (apt-get)"
    if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        "${sudo[@]}" apt-get update -q >>"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; die "apt-get update failed"; }
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Use-Pty=0 chromium >>"$work/apt.log" 2>&1 \
        || { tail -30 "$work/apt.log" >&2; die "apt-get install chromium failed"; }
    [[ -x "$chromium" ]] || die "chromium was installed but $chromium is not there"
fi

# --- the dev dependencies (npm ci when node_modules is missing or stale) -------
command -v node >/dev/null || die "node is not installed"
command -v npm >/dev/null || die "npm is not installed"
stamp="$pkg/node_modules/.tether-package-lock.json"
if ! cmp -s "$pkg/package-lock.json" "$stamp"; then
    say "npm ci"
    (cd "$pkg" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
    cp "$pkg/package-lock.json" "$stamp"
fi

# --- the build, its size, the package, the demo's copy ------------------------
if (cd "$pkg" && node build.mjs) | tee "$work/build.log"; then
    ok "build: $(grep -oE '[0-9]+ bytes gzipped' "$work/build.log"), under the limit"
else
    die "the build failed or is over the size limit"
fi
if (cd "$pkg" && npm pack --dry-run --json --loglevel=error >"$work/pack.json" 2>"$work/pack.err") \
    && grep -q '"path": "dist/index.js"' "$work/pack.json" && grep -q '"path": "dist/index.d.ts"' "$work/pack.json"; then
    ok "npm pack: $(grep -c '"path"' "$work/pack.json") files, dist/index.js and dist/index.d.ts among them"
else
    cat "$work/pack.err" >&2
    bad "npm pack"
fi
if cmp -s "$pkg/dist/tether-client.min.js" "$root/crates/hub-app/static/tether-client.js"; then
    ok "crates/hub-app/static/tether-client.js is the fresh build"
else
    bad "crates/hub-app/static/tether-client.js differs from a fresh build: run 'node build.mjs --demo' in clients/js and commit it"
fi

# --- the tests ----------------------------------------------------------------
# Runs `node --test FILE` (extra environment as NAME=value arguments) and
# adds its TAP counts to ours.
run_node_tests() {
    local file=$1 status=0 p f
    shift
    rm -f "$work/tap.txt"
    env "$@" TMPDIR="$work/tmp" setsid timeout 240 node --test \
        --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$work/tap.txt" \
        "$file" &
    node_pid=$!
    wait "$node_pid" || status=$?
    node_pid=""
    p="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$work/tap.txt" 2>/dev/null | tail -1)"
    f="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$work/tap.txt" 2>/dev/null | tail -1)"
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [[ "$status" != 0 && "${f:-0}" == 0 ]]; then
        bad "$(basename "$file") exited with status $status"
    elif [[ "${p:-0}" == 0 ]]; then
        bad "$(basename "$file"): no test ran"
    fi
}
mkdir -p "$work/tmp"

say "unit tests (node --test)"
run_node_tests "$here/unit.test.mjs"

if [[ -n "${TETHER_BIN:-}" ]]; then
    bin="$TETHER_BIN"
else
    say "building: cargo build --release -p tether"
    (cd "$root" && cargo build --release -p tether) || die "cargo build failed"
    bin="${CARGO_TARGET_DIR:-$root/target}/release/tether"
fi
[[ -x "$bin" ]] || die "no tether binary at $bin"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

say "$("$chromium" --version 2>/dev/null || echo "chromium (version unknown)")"
say "integration tests in headless Chromium against $(basename "$bin") serve"
run_node_tests "$here/browser.test.mjs" TETHER_BIN="$bin" CHROMIUM="$chromium" TETHER_JS_WORK="$work"
say "many topics on one connection, in headless Chromium"
run_node_tests "$here/multiplex.test.mjs" TETHER_BIN="$bin" CHROMIUM="$chromium" TETHER_JS_WORK="$work"
say "calls to the backend (client.rpc), in headless Chromium"
run_node_tests "$here/rpc.test.mjs" TETHER_BIN="$bin" CHROMIUM="$chromium" TETHER_JS_WORK="$work"

summary
[[ "$failed" == 0 ]]
