#!/usr/bin/env bash
# httpwg-cli (the RFC 9113 cases of the httpwg test suite) against
# `tether serve --app hub` over h2c, compared with httpwg-expected.txt: a
# case passes when its result is the expected one (every case passes,
# except those listed there with the RFC's reason for our behaviour).
#
#   conformance/h2/httpwg.sh
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#   HTTPWG      the httpwg binary (default: installed with cargo install
#               --locked httpwg-cli when missing, about a minute once)
#
# Prints "h2-conformance: N passed, M failed" last.
set -uo pipefail

HTTPWG_VERSION=0.2.5

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
expected="$here/httpwg-expected.txt"

say() { printf 'h2-conformance: %s\n' "$*"; }
give_up() {
    say "$*"
    echo "h2-conformance: 0 passed, 1 failed"
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-httpwg.XXXXXX")"
server=""
cleanup() {
    if [[ -n "$server" ]]; then
        kill -TERM "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- httpwg ------------------------------------------------------------------
httpwg="${HTTPWG:-}"
if [[ -z "$httpwg" ]]; then
    cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    if command -v httpwg >/dev/null; then
        httpwg=$(command -v httpwg)
    elif [[ -x "$cargo_bin/httpwg" ]]; then
        httpwg="$cargo_bin/httpwg"
    else
        say "installing httpwg-cli $HTTPWG_VERSION (cargo install --locked)"
        cargo install --locked --quiet httpwg-cli --version "$HTTPWG_VERSION" \
            || give_up "cargo install httpwg-cli failed"
        httpwg="$cargo_bin/httpwg"
    fi
fi
[[ -x "$httpwg" ]] || give_up "no httpwg at $httpwg"

# --- the server --------------------------------------------------------------
if [[ -n "${TETHER_BIN:-}" ]]; then
    bin="$TETHER_BIN"
else
    say "building: cargo build --release -p tether"
    (cd "$root" && cargo build --release -p tether) || give_up "the build failed"
    bin="${CARGO_TARGET_DIR:-$root/target}/release/tether"
fi

# Port 0 and the address the server prints: no race for a free port.
"$bin" serve --app hub --memory --threads 1 --port 0 --log-level info >"$work/server.log" 2>&1 &
server=$!
port=""
for _ in $(seq 100); do
    port=$(grep -oE 'listening on (http://)?127\.0\.0\.1:[0-9]+' "$work/server.log" | head -1 | grep -oE '[0-9]+$')
    [[ -n "$port" ]] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
[[ -n "$port" ]] || { cat "$work/server.log"; give_up "the server did not start"; }

# --- the run -------------------------------------------------------------------
# -v names each case as it starts ("Running test"), so that a case whose
# check panics inside the tester (it prints neither "passed" nor "failed")
# is still known. A frame timeout of 1 s instead of 100 ms: a loaded
# machine is not a failure.
timeout 300 "$httpwg" -a "127.0.0.1:$port" -v --frame-timeout 1000 --connect-timeout 5000 \
    >"$work/httpwg.log" 2>&1
sed 's/\x1b\[[0-9;]*m//g' "$work/httpwg.log" >"$work/plain.log"
grep -oE 'Running test: .*' "$work/plain.log" | sed 's/^Running test: //' | sort -u >"$work/ran"
grep -oE 'Test passed: .*' "$work/plain.log" | sed 's/^Test passed: //' | sort -u >"$work/passed"
grep -vE '^[[:space:]]*(#|$)' "$expected" | sed 's/[[:space:]]*#.*$//' | sort -u >"$work/expected"

total=$(wc -l <"$work/ran")
if [[ $total -eq 0 ]]; then
    tail -40 "$work/plain.log"
    give_up "httpwg ran no case"
fi
grep -E 'Passed [0-9]+/[0-9]+ tests' "$work/plain.log" || true

passed=0
failed=0
while IFS= read -r case; do
    if grep -qxF "$case" "$work/passed"; then
        if grep -qxF "$case" "$work/expected"; then
            failed=$((failed + 1))
            printf 'FAIL %s (passes now: take it out of httpwg-expected.txt)\n' "$case"
        else
            passed=$((passed + 1))
        fi
    elif grep -qxF "$case" "$work/expected"; then
        passed=$((passed + 1))
        printf 'ok   %s (expected to fail: %s)\n' "$case" \
            "$(grep -F "$case" "$expected" | sed 's/^[^#]*#[[:space:]]*//' | head -1)"
    else
        failed=$((failed + 1))
        printf 'FAIL %s\n' "$case"
        # What httpwg said about it, without the backtrace.
        awk -v c="$case" 'index($0, c) { p = 1 } p && /BACKTRACE/ { exit } p' "$work/plain.log" \
            | grep -vE 'DEBUG|^Holding' | head -8 | sed 's/^/    /'
    fi
done <"$work/ran"
# An expected failure that no longer runs: the file is stale.
while IFS= read -r case; do
    if ! grep -qxF "$case" "$work/ran"; then
        failed=$((failed + 1))
        printf 'FAIL %s (in httpwg-expected.txt, but httpwg has no such case)\n' "$case"
    fi
done <"$work/expected"

if ! kill -0 "$server" 2>/dev/null; then
    failed=$((failed + 1))
    printf 'FAIL the server ended during the run\n'
    tail -20 "$work/server.log"
fi

echo "h2-conformance: $passed passed, $failed failed"
[[ $failed == 0 ]]
