#!/usr/bin/env bash
# Bytes on the wire of an event stream, compressed and not, in the same
# run: one `tether serve` (the hub), curl subscribers taking the stream
# plain, gzip and deflate (HTTP/1.1 and h2c), while EVENTS realistic JSON
# events of about SIZE bytes are published; each subscriber's body bytes
# as received (curl's size_download, before inflating) and their ratio to
# the plain stream's. Run by hand; results in benches/results/.
#
#   benches/sse-compress-wire.sh [--bin PATH] [--events N] [--sizes "300 2000"]
set -euo pipefail

bin="${CARGO_TARGET_DIR:-target}/release/tether"
events=200
sizes="300 2000"
while [[ $# -gt 0 ]]; do
    case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --events) events="$2"; shift 2 ;;
    --sizes) sizes="$2"; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[[ -x "$bin" ]] || { echo "no tether binary at $bin (--bin)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-sse-wire.XXXXXX")"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

token="wire-$RANDOM$RANDOM"
TETHER_PUBLISH_TOKEN="$token" "$bin" serve --addr 127.0.0.1 --port 0 --app hub --memory \
    --log-level warn --backlog-events 10000 >"$work/out" 2>"$work/err" &
server_pid=$!
port=""
for _ in $(seq 100); do
    port="$(sed -n 's|^tether listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$work/out")"
    [[ -n "$port" ]] && break
    sleep 0.1
done
[[ -n "$port" ]] || { cat "$work/err" >&2; exit 1; }
url="http://127.0.0.1:$port"

# A quote feed's event of about $1 bytes, its figures varying with $2.
event() {
    python3 - "$1" "$2" <<'PY'
import json, random, sys
size, n = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(n)
quotes, i = [], 0
while len(json.dumps(quotes, separators=(",", ":"))) < size - 90:
    bid = rng.randrange(100, 9000) + rng.randrange(100) / 100
    quotes.append({"symbol": f"SYM{i}", "bid": bid, "ask": round(bid + 0.5, 2),
                   "size": rng.randrange(5000), "venue": "XNAS", "ts": 1764000000000 + n * 7})
    i += 1
print(json.dumps(quotes, separators=(",", ":")))
PY
}

echo "| event | subscriber | body bytes | bytes / event | × plain |"
echo "| --- | --- | ---: | ---: | ---: |"
for size in $sizes; do
    topic="wire$size"
    for n in $(seq "$events"); do event "$size" "$n"; done >"$work/events"
    # Every subscriber resumes from the start of the backlog, so all get
    # the same events; each stops when --max-time ends it.
    first="$(curl -s -H "Authorization: Bearer $token" --data-binary @<(head -1 "$work/events") "$url/topics/$topic" \
        | sed -n 's|.*"id":"\([^"]*\)".*|\1|p')"
    tail -n +2 "$work/events" | while IFS= read -r line; do
        curl -s -o /dev/null -H "Authorization: Bearer $token" --data-binary "$line" "$url/topics/$topic"
    done
    declare -A got=()
    for sub in "plain --http1.1" "gzip --http1.1" "deflate --http1.1" "gzip --http2-prior-knowledge"; do
        read -r coding proto <<<"$sub"
        enc=()
        [[ "$coding" != plain ]] && enc=(-H "Accept-Encoding: $coding")
        bytes="$(curl -s "$proto" -N --max-time 2 "${enc[@]}" -H "Last-Event-ID: ${first%-*}-0" \
            -o /dev/null -w '%{size_download}' "$url/topics/$topic/events" || true)"
        got["$sub"]="$bytes"
        plain="${got["plain --http1.1"]}"
        printf '| ~%s B JSON | %s | %s | %.0f | %.3f |\n' "$size" "$sub" "$bytes" \
            "$(echo "$bytes / $events" | bc -l)" "$(echo "$bytes / $plain" | bc -l)"
    done
    unset got
done
