#!/usr/bin/env bash
# User-space instructions per echoed message of the load generators,
# counted by valgrind's callgrind while each drives the same server: the
# part of a generator's CPU per message that is its own code. The kernel's
# part is the same system calls for both (one send and one receive per
# message; `strace -c`), so this count is what can make one generator
# cheaper than the other.
#
#   bash benches/generator-instructions.sh
#   LOAD_TEST=path/to/load_test bash benches/generator-instructions.sh
#
# LOAD_TEST is uWebSockets' benchmarks/load_test built without
# instructions valgrind does not know (no -march=native on a machine with
# AVX-512; plain `-O3` works). Options: --scenario CONNSxBYTES (default
# 100x20), --duration SECONDS under callgrind (default 15). The server is
# the floor (src/bin/floor.rs) pinned to core 0, the generator on core 1.
# A message is counted per call to libc's `send` (one per message, plus one
# handshake per connection, left in: a few hundred against hundreds of
# thousands); the figure is the generator's whole instruction count over
# those, its start and connects included.
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=100x20
DURATION=15
while [ $# -gt 0 ]; do
    case "$1" in
        --scenario) SCENARIO=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "generator-instructions.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v valgrind >/dev/null || { echo "generator-instructions.sh: valgrind is needed" >&2; exit 1; }
command -v python3 >/dev/null || { echo "generator-instructions.sh: python3 is needed" >&2; exit 1; }

export CARGO_TERM_COLOR=never
cargo build --release -p tether-benches --bin loadgen --bin floor
CONNS=${SCENARIO%x*}
SIZE=${SCENARIO#*x}
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 target/release/floor "$port" >"$WORK/floor.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/floor.log" && break
    sleep 0.1
done

# "instructions sends" of a callgrind output file.
count() {
    python3 - "$1" <<'EOF'
import re, sys
names, calls, total, target = {}, {}, 0, None
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"(c?)fn=\((\d+)\)(?: (.*))?", line)
    if m:
        if m.group(3):
            names[m.group(2)] = m.group(3).strip()
        target = m.group(2) if m.group(1) else None
        continue
    m = re.match(r"calls=(\d+)", line)
    if m and target is not None:
        calls[target] = calls.get(target, 0) + int(m.group(1))
        target = None
        continue
    m = re.match(r"summary: (\d+)", line)
    if m:
        total = int(m.group(1))
sends = sum(c for f, c in calls.items() if names.get(f) in ("send", "__send", "__libc_send"))
print(total, sends)
EOF
}

report() { # name callgrind-out
    read -r instructions sends < <(count "$2")
    if [ "$sends" -gt 0 ]; then
        echo "$1: $instructions instructions, $sends sends: $((instructions / sends)) instructions per message"
    else
        echo "$1: no send counted" >&2
    fi
}

echo "== $CONNS connections x $SIZE B against the floor, ${DURATION}s under callgrind each"
taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$WORK/loadgen.out" \
    target/release/loadgen echo --addr "127.0.0.1:$port" -c "$CONNS" -s "$SIZE" -d "$DURATION" \
    --warmup 0 --connect-timeout 120 >"$WORK/loadgen.log" 2>&1 || { cat "$WORK/loadgen.log" >&2; exit 1; }
report loadgen "$WORK/loadgen.out"
if [ -n "${LOAD_TEST:-}" ]; then
    # load_test runs until stopped; valgrind writes its counts on SIGINT.
    taskset -c 1 timeout -s INT "$DURATION" valgrind --tool=callgrind \
        --callgrind-out-file="$WORK/load_test.out" "$LOAD_TEST" "$CONNS" 127.0.0.1 "$port" 0 0 "$SIZE" \
        >"$WORK/load_test.log" 2>&1 || true
    report load_test "$WORK/load_test.out"
else
    echo "load_test not measured: set LOAD_TEST to a build of uWebSockets' benchmarks/load_test"
fi
