#!/usr/bin/env bash
# A short run of every load generator mode against `tether serve --app demo`
# (about 40 seconds): echo (with every byte checked; plain and with
# permessage-deflate, one message and several in flight on each
# connection), latency, fan-out
# through a hub chat topic to WebSocket (JSON events, and raw ones with
# ?format=raw) and to SSE subscribers (every event checked, in order), and idle
# connections that must answer the server's pings to stay open, echo and
# SSE fan-out as streams of HTTP/2 connections (--h2), echo and
# fan-out with the load generator in two processes (--procs 2); then echo
# over TLS (wss://) against `tether serve --app echo` with a certificate
# from a CA made here with openssl, which the load generator trusts through
# --ca (and must refuse without it), and SSE fan-out as event streams of
# HTTP/3 (QUIC) connections (--h3) with the same certificate; then echo against the floor server
# (src/bin/floor.rs), in one process and in two, and benches/chart.py drawing
# those runs; the same against the floor on io_uring (src/bin/floor_uring.rs;
# said and skipped where the kernel has no io_uring); last, benches/durable.sh with QUICK=1 (the durable log in
# each --fsync mode beside --memory, replay and recovery), every row there;
# and benches/scale.sh --smoke (3 000 subscribers over two servers on one
# port joined by Redis). A check fails when the load generator exits non-zero: a
# connection failed, an echo differed, a subscriber missed an event or got
# one out of order. Nothing here judges speed. Ends with
# "loadgen: N passed, M failed".
#
# Uses $TETHER_BIN when set (CI builds it), else builds tether in release.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
if [ -z "${TETHER_BIN:-}" ]; then
    cargo build --release -p tether
    TETHER_BIN=$PWD/target/release/tether
fi
cargo build --release -p tether-benches --bin loadgen --bin floor --bin floor_uring --bin floor_tokio
LOADGEN=$PWD/target/release/loadgen
FLOOR=$PWD/target/release/floor
FLOOR_URING=$PWD/target/release/floor_uring
FLOOR_TOKIO=$PWD/target/release/floor_tokio

LOGS=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$LOGS"
}
trap cleanup EXIT

SCHEME=http
start_server() { # the tether serve arguments; sets SERVER_PID and ADDR
    : >"$LOGS/server.log" # emptied before the child runs: see start_floor
    "$TETHER_BIN" serve "$@" --port 0 --log-level warn >>"$LOGS/server.log" 2>&1 &
    SERVER_PID=$!
    ADDR=""
    for _ in $(seq 100); do
        ADDR=$(sed -n "s|.*listening on $SCHEME://\([^/]*\)/.*|\1|p" "$LOGS/server.log" | head -1)
        [ -n "$ADDR" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$ADDR" ]; then
        cat "$LOGS/server.log"
        echo "smoke: tether serve $* did not start"
        return 1
    fi
    echo "tether serve $1 $2 on $SCHEME://$ADDR (pid $SERVER_PID)"
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

passed=0
failed=0
PREFIX=""
EXTRA=()
check() { # name, then the loadgen arguments
    local name=$1
    shift
    if timeout 60 "$LOADGEN" "$@" --addr "$PREFIX$ADDR" --pid "$SERVER_PID" "${EXTRA[@]}" \
        >"$LOGS/out" 2>"$LOGS/err"; then
        passed=$((passed + 1))
        echo "ok   $name: $(head -1 "$LOGS/out")"
    else
        failed=$((failed + 1))
        echo "FAIL $name: loadgen $*"
        cat "$LOGS/out" "$LOGS/err"
    fi
}

# Pings every half second and a 1.5 s idle timeout: a connection that does
# not answer pings is closed within the idle check below.
if start_server --app demo --memory --ping-interval 0.5 --idle-timeout 1.5; then
    check "echo 4 x 20 B" echo --path /echo -c 4 -s 20 -d 2 --warmup 0.3 --verify
    check "echo 4 x 64 KiB binary" echo --path /echo -c 4 -s 65536 -d 1 --warmup 0.2 --verify --binary
    check "echo 4 x 4 KiB with permessage-deflate" echo --path /echo -c 4 -s 4096 -d 1 --warmup 0.2 --verify --deflate
    check "echo 4 x 20 B, 16 in flight on each" echo --path /echo -c 4 -s 20 -d 1 --warmup 0.2 --verify --pipeline 16
    check "echo 4 x 4 KiB with permessage-deflate, 4 in flight" echo --path /echo -c 4 -s 4096 -d 1 --warmup 0.2 \
        --verify --deflate --pipeline 4
    check "latency 4 conns at 2000/s" latency --path /echo -c 4 -s 20 -r 2000 -d 2 --warmup 0.3 --drain 3
    check "fanout 20 ws subscribers" fanout --transport ws -n 20 -r 200 -s 64 -d 2 --drain 3 \
        --pub-path /topics/chat.smoke-ws/ws
    check "fanout 20 raw ws subscribers (?format=raw)" fanout --raw -n 20 -r 200 -s 20 -d 2 --drain 3 \
        --pub-path '/topics/chat.smoke-raw/ws?format=raw'
    check "fanout 20 sse subscribers" fanout --transport sse -n 20 -r 200 -s 64 -d 2 --drain 3 \
        --pub-path /topics/chat.smoke-sse/ws --sub-path /topics/chat.smoke-sse/events
    check "fanout 20 raw ws subscribers with permessage-deflate" fanout --raw --deflate --json-payload -n 20 \
        -r 200 -s 1024 -d 2 --drain 3 --pub-path '/topics/chat.smoke-deflate/ws?format=raw'
    check "fanout with every publish acknowledged" fanout --transport ws --ack --window 16 -n 10 -r 200 -s 64 \
        -d 2 --drain 3 --pub-path /topics/chat.smoke-ack/ws
    check "idle 100 conns through pings" idle --path /echo -c 100 --settle 0.5 --hold 2.5
    # HTTP/2 (h2c): WebSockets and event streams as streams of a few
    # connections; the pings above reach the streams too.
    check "h2 echo 20 streams on 3 conns" echo --h2 --streams-per-conn 8 --path /echo -c 20 -s 20 -d 1 \
        --warmup 0.2 --verify
    check "h2 echo 4 x 64 KiB binary on 2 conns" echo --h2 --streams-per-conn 2 --path /echo -c 4 -s 65536 \
        -d 1 --warmup 0.2 --verify --binary
    check "h2 fanout 100 sse streams on 2 conns" fanout --h2 --streams-per-conn 50 --transport sse -n 100 \
        -r 200 -s 64 -d 2 --drain 3 --pub-path /topics/chat.smoke-h2/ws --sub-path /topics/chat.smoke-h2/events
    check "echo 6 x 20 B in 2 processes" echo --path /echo -c 6 -s 20 -d 1 --warmup 0.2 --verify --procs 2
    check "fanout 20 ws subscribers in 2 processes" fanout --transport ws -n 20 -r 200 -s 64 -d 1 --drain 3 \
        --pub-path /topics/chat.smoke-procs/ws --procs 2
    stop_server
else
    failed=$((failed + 1))
fi

# The hub's multiplexed sockets (`/ws`, which the demo does not serve),
# with the same pings and idle timeout.
if start_server --app hub --memory --ws-publish 'bench.mux.*' --ping-interval 0.5 --idle-timeout 1.5; then
    check "topics 20 /ws sockets x 5 topics, 3 published" topics -n 20 -k 5 --published 3 \
        -r 200 -s 64 -d 2 --drain 3
    check "idle 50 /ws sockets x 10 subscriptions through pings" idle --path /ws -c 50 --subscribe 10 \
        --settle 0.5 --hold 2.5
    stop_server
else
    failed=$((failed + 1))
fi

# TLS: a throwaway CA, and a certificate it signs for localhost and
# 127.0.0.1.
# shellcheck source=tls-files.sh
. benches/tls-files.sh
tls_files() { make_tls_files "$LOGS/tls"; }
SCHEME=https
if tls_files && start_server --app echo --tls-cert "$LOGS/tls/server.pem" --tls-key "$LOGS/tls/server.key"; then
    PREFIX=wss://
    EXTRA=(--ca "$LOGS/tls/ca.pem")
    check "tls echo 4 x 20 B" echo --path /echo -c 4 -s 20 -d 1 --warmup 0.2 --verify
    check "tls echo 4 x 64 KiB binary" echo --path /echo -c 4 -s 65536 -d 1 --warmup 0.2 --verify --binary
    # Without --ca the server's certificate must not be trusted.
    EXTRA=()
    if timeout 20 "$LOADGEN" echo --addr "wss://$ADDR" --path /echo -c 1 -d 0.2 --warmup 0 \
        >"$LOGS/out" 2>"$LOGS/err"; then
        failed=$((failed + 1))
        echo "FAIL tls without --ca: the certificate was accepted"
    elif grep -q UnknownIssuer "$LOGS/err"; then
        passed=$((passed + 1))
        echo "ok   tls without --ca: $(head -1 "$LOGS/err")"
    else
        failed=$((failed + 1))
        echo "FAIL tls without --ca: not refused for its issuer"
        cat "$LOGS/out" "$LOGS/err"
    fi
    stop_server
else
    failed=$((failed + 1))
    echo "FAIL tls: no TLS server to run against"
fi
# HTTP/3: event streams of QUIC connections on the TLS port's number (UDP),
# the same certificate trusted through --ca; the publisher a wss:// one.
if [ -f "$LOGS/tls/server.pem" ] &&
    start_server --app demo --memory --tls-cert "$LOGS/tls/server.pem" --tls-key "$LOGS/tls/server.key" \
        --http3 on; then
    PREFIX=https://
    EXTRA=(--ca "$LOGS/tls/ca.pem")
    check "h3 fanout 100 sse streams on 2 quic conns" fanout --h3 --streams-per-conn 50 --transport sse -n 100 \
        -r 200 -s 64 -d 2 --drain 3 --pub-path /topics/chat.smoke-h3/ws --sub-path /topics/chat.smoke-h3/events
    EXTRA=()
    PREFIX=""
    stop_server
else
    failed=$((failed + 1))
    echo "FAIL h3: no HTTP/3 server to run against"
fi

# The floor: frames echoed with nothing but an unmask in between.
start_floor() { # the command line; sets SERVER_PID and ADDR (empty if it did not start)
    # Emptied here, not by the child's redirection: until the child has
    # opened it, the loop below would read the last server's address.
    : >"$LOGS/server.log"
    "$@" >>"$LOGS/server.log" 2>&1 &
    SERVER_PID=$!
    ADDR=""
    for _ in $(seq 50); do
        ADDR=$(sed -n 's|^listening on \(.*\)$|\1|p' "$LOGS/server.log")
        [ -n "$ADDR" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
}
start_floor "$FLOOR" 0
if [ -n "$ADDR" ]; then
    echo "floor on $ADDR (pid $SERVER_PID)"
    PREFIX=""
    EXTRA=(--tag server=floor)
    : >"$LOGS/floor.jsonl"
    check "floor echo 4 x 20 B" echo -c 4 -s 20 -d 1 --warmup 0.2 --verify
    grep '^{' "$LOGS/out" >>"$LOGS/floor.jsonl" || true
    check "floor echo 4 x 64 KiB binary" echo -c 4 -s 65536 -d 1 --warmup 0.2 --verify --binary
    check "floor echo 6 x 16 KiB in 2 processes" echo -c 6 -s 16384 -d 1 --warmup 0.2 --verify --procs 2
    grep '^{' "$LOGS/out" >>"$LOGS/floor.jsonl" || true
    stop_server
    if python3 benches/chart.py "$LOGS/floor.jsonl" --baseline floor --out "$LOGS/chart.svg" &&
        python3 -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); sys.exit(len(d.getElementsByTagName("rect")) != 3)' \
            "$LOGS/chart.svg"; then
        passed=$((passed + 1))
        echo "ok   chart.py: an SVG with a bar per run"
    else
        failed=$((failed + 1))
        echo "FAIL chart.py"
    fi
else
    failed=$((failed + 1))
    echo "FAIL floor did not start"
    cat "$LOGS/server.log"
fi

# The echo checks of the other floors, every byte checked.
floor_checks() { # the floor's name
    check "$1 echo 4 x 20 B" echo -c 4 -s 20 -d 1 --warmup 0.2 --verify
    check "$1 echo 4 x 64 KiB binary" echo -c 4 -s 65536 -d 1 --warmup 0.2 --verify --binary
    check "$1 echo 6 x 16 KiB in 2 processes" echo -c 6 -s 16384 -d 1 --warmup 0.2 --verify --procs 2
}

# The same floor on io_uring (src/bin/floor_uring.rs). A kernel without
# io_uring, or one that forbids it (kernel.io_uring_disabled), cannot run
# it: that is said and not counted.
start_floor "$FLOOR_URING" 0
if [ -n "$ADDR" ]; then
    echo "floor_uring on $ADDR (pid $SERVER_PID)"
    EXTRA=(--tag server=floor-uring)
    floor_checks floor_uring
    stop_server
elif grep -qiE 'not permitted|not implemented|not supported' "$LOGS/server.log"; then
    echo "skip floor_uring: io_uring is not available here ($(head -1 "$LOGS/server.log"))"
    SERVER_PID=""
else
    failed=$((failed + 1))
    echo "FAIL floor_uring did not start"
    cat "$LOGS/server.log"
fi

# The floor on tokio (src/bin/floor_tokio.rs, tokio.sh's bound), on a
# current-thread runtime.
start_floor "$FLOOR_TOKIO" --port 0 --threads 0
if [ -n "$ADDR" ]; then
    echo "floor_tokio on $ADDR (pid $SERVER_PID)"
    EXTRA=(--tag server=floor-tokio)
    floor_checks floor_tokio
    check "floor_tokio echo 4 x 20 B, 8 in flight" echo -c 4 -s 20 -d 1 --warmup 0.2 --verify --pipeline 8
    stop_server
else
    failed=$((failed + 1))
    echo "FAIL floor_tokio did not start"
    cat "$LOGS/server.log"
fi
EXTRA=()

# The durable log through the server (benches/durable.sh, QUICK=1, about
# 20 s): every run clean and every row of its tables there; the figures
# are not judged.
if TETHER_BIN=$TETHER_BIN QUICK=1 timeout 300 bash benches/durable.sh >"$LOGS/durable" 2>&1; then
    # Data rows: every table line but the headers and their separators.
    rows=$(awk '/^\| ---/ { sep++ } /^\| / { n++ } END { print n - 2 * sep }' "$LOGS/durable")
    if [ "$rows" = 14 ] && ! grep -q '^|.*| failed |' "$LOGS/durable"; then
        passed=$((passed + 1))
        echo "ok   durable.sh QUICK=1: $rows rows, $(grep '^durable-bench: ' "$LOGS/durable")"
    else
        failed=$((failed + 1))
        echo "FAIL durable.sh QUICK=1: $rows table rows, 14 expected"
        cat "$LOGS/durable"
    fi
else
    failed=$((failed + 1))
    echo "FAIL durable.sh QUICK=1"
    tail -40 "$LOGS/durable"
fi

# Idle memory per connection (benches/idle-memory.sh, one round of 100
# then 300 WebSockets, echo, hub and a multiplexed socket with 10
# subscriptions; a few seconds): a line per application with both
# readings; the figures are not judged.
if BINS=$TETHER_BIN timeout 120 bash benches/idle-memory.sh --rounds 1 --from 100 --to 300 \
    --apps "echo hub mux10" --out "$LOGS/idle-memory.jsonl" >"$LOGS/idle-memory" 2>&1 &&
    python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if "idle-memory" == json.loads(l).get("mode")]
assert [l["app"] for l in lines] == ["echo", "hub", "mux10"], lines
for l in lines:
    assert l["anon_kib_at_from"] > 0 and l["anon_kib_at_to"] > 0 and l["to"] == 300, l
' "$LOGS/idle-memory.jsonl"; then
    passed=$((passed + 1))
    echo "ok   idle-memory.sh: $(grep -c '"mode":"idle-memory"' "$LOGS/idle-memory.jsonl") lines"
else
    failed=$((failed + 1))
    echo "FAIL idle-memory.sh"
    tail -20 "$LOGS/idle-memory"
fi

# Several servers on one port joined by Redis (benches/scale.sh --smoke:
# 3 000 subscribers, half WebSockets and half event streams, over two
# processes of each and two source addresses; about 10 s): the run clean
# (every subscriber got every event, in order) and its memory, connect and
# latency figures in the JSON line, the servers' CPU to close the
# connections counted apart from the deliveries'; the figures are not
# judged. As root, in a network namespace of its own (--netns) with an
# established-connection table of 8192 buckets (two sockets for each of
# the 3001 connections, rounded up to a power of two).
SCALE_NETNS=()
EXPECT_BUCKETS=""
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && [ -w /proc/sys/net/ipv4/tcp_child_ehash_entries ]; then
    SCALE_NETNS=(--netns)
    EXPECT_BUCKETS=8192
fi
if ! command -v redis-server >/dev/null; then
    echo "skip scale.sh --smoke: no redis-server"
elif TETHER_BIN=$TETHER_BIN timeout 300 bash benches/scale.sh --smoke "${SCALE_NETNS[@]}" --out "$LOGS/scale.jsonl" >"$LOGS/scale" 2>&1 &&
    python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).readline())
assert r["missing"] == 0 and r["subscribers"] == 3000 and r["transport"] == "ws+sse", r
for k in ("connect_s", "server_rss_per_connection_b", "tcp_mem_per_connection_b", "servers_cpu_us_per_delivery",
          "servers_close_cpu_us_per_connection"):
    assert k in r, k
assert r["last_delivery_us"]["count"] == r["published"], r["last_delivery_us"]
assert sys.argv[2] == "" or r["ehash_buckets"] == sys.argv[2], r["ehash_buckets"]
' "$LOGS/scale.jsonl" "$EXPECT_BUCKETS"; then
    passed=$((passed + 1))
    echo "ok   scale.sh --smoke: $(grep '^scale-bench: ' "$LOGS/scale")"
else
    failed=$((failed + 1))
    echo "FAIL scale.sh --smoke"
    tail -40 "$LOGS/scale"
fi

echo "loadgen: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
