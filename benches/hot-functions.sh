#!/usr/bin/env bash
# Writes crates/cli/layout/hot-functions.txt: the functions of the `tether`
# binary that run when it starts and serves the common paths, as name
# patterns that survive a rebuild (the mangled names' hashes and crate
# disambiguators replaced by `*`). crates/cli/build.rs turns the list into
# a linker script that puts these functions together at the start of the
# code, so that the pages the kernel maps in (64 KiB at a fault, the
# neighbours of every page touched) hold code that runs and not its cold
# neighbours: see benches/README.md, "Code layout".
#
#   bash benches/hot-functions.sh          # about 3 minutes after the build
#
# The functions are the ones valgrind's callgrind saw run, in a release
# build, while the server started and served, each scenario a few seconds:
#   - the hub: WebSocket subscribers in the raw format (200, and 2000 at a
#     rate the loop falls behind at) and in the JSON envelope, event
#     streams, over HTTP/1.1 and HTTP/2 (h2c);
#   - the echo app over ws:// and wss:// (TLS 1.3);
#   - the shutdown on SIGTERM.
# Run it again after a change that moves much code (a new transport, a new
# app); a list that has gone stale costs memory, never correctness.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

command -v valgrind >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind
}
# Two builds, so that the server is built with its own features alone, as
# `cargo build --release -p tether` builds it (one build of both would unify
# the features of the crates they share).
cargo build --release -p tether --bin tether
cargo build --release -p tether-benches --bin loadgen
BIN=$PWD/target/release/tether
LOADGEN=$PWD/target/release/loadgen
OUT=crates/cli/layout/hot-functions.txt

# KEEP=1 keeps the callgrind outputs and logs (the folder is named at the end).
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT
# shellcheck source=tls-files.sh
. benches/tls-files.sh
make_tls_files "$WORK/tls"

# Starts the server under callgrind with these arguments; sets SERVER_PID
# and ADDR.
start() {
    : >"$WORK/server.log" # emptied before the child runs, or the wait below reads the last server's lines
    valgrind --tool=callgrind --demangle=no --callgrind-out-file="$WORK/callgrind.%p" \
        "$BIN" serve "$@" --port 0 --threads 1 --log-level warn >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    ADDR=""
    for _ in $(seq 300); do
        ADDR=$(sed -n 's|.*listening on https\{0,1\}://\([^/]*\)/.*|\1|p' "$WORK/server.log" | head -1)
        [ -n "$ADDR" ] && return 0
        sleep 0.2
    done
    cat "$WORK/server.log"
    echo "hot-functions: the server did not start"
    exit 1
}
# Stops it; callgrind writes what it saw as the process exits.
stop() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" || true
    [ -s "$WORK/callgrind.$SERVER_PID" ] || {
        echo "hot-functions: no callgrind output from the server ($SERVER_PID)"
        exit 1
    }
    DUMPS+=("$WORK/callgrind.$SERVER_PID")
    SERVER_PID=""
}
DUMPS=()
# Runs the load generator; a run that fails says so and stops the script.
load() {
    "$LOADGEN" "$@" >"$WORK/loadgen.log" 2>&1 || {
        tail -5 "$WORK/loadgen.log"
        echo "hot-functions: loadgen $1 failed"
        exit 1
    }
}

# One server a scenario, so that the list can be ordered by how many
# scenarios run a function: what all of them run (starting, the loop,
# HTTP/1.1, WebSocket frames) first, then what fewer do, so that a server
# that serves only some of it touches fewer pages.
FAN=(-r 50 -s 20 -d 3 --drain 2)
raw="/topics/bench.fan/ws?format=raw"
start --app hub --memory --ws-publish bench.fan
load fanout --addr "$ADDR" --raw -n 200 "${FAN[@]}" --pub-path "$raw" --sub-path "$raw"
stop
# More subscribers and events than the loop keeps up with under valgrind:
# events joined in a turn, output queues held past the loop's pool of 256.
start --app hub --memory --ws-publish bench.fan
load fanout --addr "$ADDR" --raw -n 2000 -r 400 -s 20 -d 3 --drain 5 --pub-path "$raw" --sub-path "$raw"
stop
start --app hub --memory --ws-publish bench.fan
load fanout --addr "$ADDR" -n 100 "${FAN[@]}" --pub-path /topics/bench.fan/ws --sub-path /topics/bench.fan/ws
stop
start --app hub --memory --ws-publish bench.fan
load fanout --addr "$ADDR" --transport sse -n 100 "${FAN[@]}" --pub-path /topics/bench.fan/ws --sub-path /topics/bench.fan/events
stop
start --app hub --memory --ws-publish bench.fan
load fanout --addr "$ADDR" --h2 --transport sse -n 100 "${FAN[@]}" --pub-path /topics/bench.fan/ws --sub-path /topics/bench.fan/events
stop
start --app echo
load echo --addr "$ADDR" --path /echo -c 50 -s 20 -d 3
stop
start --app echo --tls-cert "$WORK/tls/server.pem" --tls-key "$WORK/tls/server.key"
load echo --addr "wss://$ADDR" --ca "$WORK/tls/ca.pem" --path /echo -c 20 -s 20 -d 3
stop

# The names callgrind saw run in the binary itself (its `fn=` records under
# the binary's `ob=`), each made a pattern: a legacy mangled name's hash
# (`17h` and 16 hex digits, `E`) and a v0 name's crate disambiguators
# (`Cs...._`) become `*`, and so do the numbers that tell a module's impl
# blocks apart (`Ms0_`, `Xs7_`: they shift when an impl is added above) and
# the back references into the name (`B5_`: they shift with what precedes
# them); callgrind's recursion marks ('2) go. A generic
# instance's name ends with the crate that instantiated it; several crates
# may each hold a copy of the same instance, and which copy a call reaches
# depends on inlining, so that crate becomes `*` too (a server under load
# ran copies the callgrind runs had not). Ordered by the number of
# scenarios that ran it (most first), then by the first scenario that did,
# then by name.
python3 - "$BIN" "${DUMPS[@]}" >"$WORK/hot.txt" <<'EOF'
import re
import sys

binary, outputs = sys.argv[1], sys.argv[2:]


def without_instantiating_crate(name):
    """`..._9drop_slowCs*_10tether_hub` -> `..._9drop_slow*`: a v0 path ends
    with an identifier, so a crate root after it (its length matching) is
    the instantiating crate; so is a back reference at the end (`...EB2u_`:
    a crate named earlier in the name). Every name ends with `*`: what may
    follow it is an instantiating crate or the number the optimiser gives
    a local copy (`.3819`), and the identifier's length prefix keeps it
    from matching a longer name."""
    m = re.search(r"Cs\*_(\d+)([A-Za-z_][0-9A-Za-z_]*)$", name)
    if m and int(m.group(1)) == len(m.group(2)) and m.start() > 2:
        return name[: m.start()] + "*"
    name = re.sub(r"B[0-9A-Za-z]*_$", "", name)
    return name if name.endswith("*") else name + "*"


# Functions that run on a processor with the SHA extensions but not under
# valgrind, which does not emulate them: the SHA-1 of every WebSocket
# handshake takes this path there, and the portable one here.
ALSO = ["_RNvNtNtCs*_4sha18compress7x86_sha8compress*"]
record = re.compile(r"^(ob|cob|fn|cfn)=\((\d+)\)(?: (.*))?$")
runs = {}
for run, path in enumerate(outputs):
    objects, functions, current = {}, {}, None
    with open(path, errors="replace") as f:
        for line in f:
            m = record.match(line.rstrip("\n"))
            if not m:
                continue
            kind, number, name = m.groups()
            table = objects if kind in ("ob", "cob") else functions
            if name:
                table[number] = name
            if kind == "ob":
                current = objects.get(number)
            elif kind == "fn" and current == binary:
                name = re.sub(r"'\d+$", "", functions[number])
                if name.startswith("0x") or name.startswith("("):
                    continue
                name = re.sub(r"17h[0-9a-f]{16}E$", "17h*", name)
                if name.startswith("_R"):
                    name = re.sub(r"Cs[0-9A-Za-z]*_", "Cs*_", name)
                    name = re.sub(r"([MXY])s[0-9A-Za-z]*_", r"\1*", name)
                    name = re.sub(r"B[0-9A-Za-z]*_(?!$)", "B*_", name)
                    name = re.sub(r"(\.llvm)?\.\d+$", "", name)
                    name = without_instantiating_crate(name)
                runs.setdefault(name, set()).add(run)
for name in sorted(runs, key=lambda n: (-len(runs[n]), min(runs[n]), n)):
    print(name)
for name in ALSO:
    if name not in runs:
        print(name)
EOF

count=$(wc -l <"$WORK/hot.txt")
if [ "$count" -lt 100 ]; then
    echo "hot-functions: only $count functions seen; not written"
    exit 1
fi
mkdir -p "$(dirname "$OUT")"
{
    echo "# Written by benches/hot-functions.sh (commit $(git rev-parse --short HEAD), $(date -u +%F)): the"
    echo "# functions of the tether binary that ran while it started and served, as"
    echo "# patterns of their mangled names; crates/cli/build.rs lays them out first."
    cat "$WORK/hot.txt"
} >"$OUT"
echo "hot-functions: $count patterns written to $OUT"
