# What the single-script Chromium tests' shell scripts share (sourced by
# conformance/h2/browser.sh, conformance/h3/browser.sh, webtransport.sh,
# admin.sh and run.sh):
# Debian's chromium (apt-get, when /usr/bin/chromium is missing),
# playwright-core in conformance/browser/node_modules (npm ci there, when
# missing or older than its package-lock.json), the tether binary, and
# running one Node script in its own process group with its summary line
# checked.
#
# The sourcing script sets `label` (the summary's name, "h3-browser")
# first, then calls, in order:
#
#   browser_setup            scratch directory "$work", cleanup on exit,
#                            Chromium, playwright-core, "$bin"
#   run_node SCRIPT [NAME=value ...]
#                            runs SCRIPT with TETHER_BIN, CHROMIUM, WORK and
#                            the given variables, prints its output, and
#                            returns its status (the summary line missing
#                            counts as a failure: "LABEL: 0 passed, 1 failed")
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)

browser_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$browser_dir/../.." && pwd)"
chromium=/usr/bin/chromium
work=""
bin=""
node_pid=""

say() { printf '%s: %s\n' "$label" "$*"; }
give_up() {
    say "$*"
    echo "$label: 0 passed, 1 failed"
    exit 1
}

browser_cleanup() {
    local pid pids
    # node_pid: the Node processes still running, each the leader of its
    # own process group (setsid), which holds its Chromium.
    for pid in $node_pid; do
        kill -TERM -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # Servers the scripts started and did not get to stop: only those still
    # running our binary. A script writes their pids to pids in its scratch
    # directory ($work, or a directory of its own under it).
    for pids in "$work/pids" "$work"/*/pids; do
        [[ -f "$pids" ]] || continue
        while read -r pid; do
            if [[ -n "$pid" && "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$(readlink -f "$bin")" ]]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done <"$pids"
    done
    rm -rf "$work"
}

browser_setup() {
    work="$(mktemp -d "${TMPDIR:-/tmp}/tether-$label.XXXXXX")"
    trap browser_cleanup EXIT

    # --- Chromium (Debian's) ---------------------------------------------
    if [[ ! -x "$chromium" ]]; then
        [[ $(id -u) == 0 ]] || give_up "$chromium is missing and installing it needs root"
        say "installing Debian's chromium (apt-get)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >"$work/apt.log" 2>&1 \
            || { apt-get update -qq >>"$work/apt.log" 2>&1 \
                && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >>"$work/apt.log" 2>&1; } \
            || { tail -20 "$work/apt.log"; give_up "apt-get install chromium failed"; }
    fi

    # --- playwright-core: conformance/browser's copy ---------------------
    command -v node >/dev/null || give_up "node is not installed"
    command -v npm >/dev/null || give_up "npm is not installed"
    local stamp="$browser_dir/node_modules/.tether-package-lock.json"
    if ! cmp -s "$browser_dir/package-lock.json" "$stamp"; then
        say "npm ci in conformance/browser"
        (cd "$browser_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) \
            || give_up "npm ci failed"
        cp "$browser_dir/package-lock.json" "$stamp"
    fi

    # --- the binary --------------------------------------------------------
    if [[ -n "${TETHER_BIN:-}" ]]; then
        bin="$TETHER_BIN"
    else
        say "building: cargo build --release -p tether"
        (cd "$repo_root" && cargo build --release -p tether) || give_up "the build failed"
        bin="${CARGO_TARGET_DIR:-$repo_root/target}/release/tether"
    fi
    [[ -x "$bin" ]] || give_up "no tether binary at $bin"
}

run_node() {
    local script="$1" status=0
    shift
    # Its own process group, so that the cleanup ends Chromium with it.
    env "$@" TETHER_BIN="$bin" CHROMIUM="$chromium" WORK="$work" TMPDIR="$work" \
        setsid timeout 180 node "$script" >"$work/out.log" 2>&1 &
    node_pid=$!
    wait "$node_pid" || status=$?
    node_pid=""
    cat "$work/out.log"
    if ! grep -qE "^$label: [0-9]+ passed" "$work/out.log"; then
        give_up "$(basename "$script") ended (status $status) without its summary"
    fi
    return "$status"
}
