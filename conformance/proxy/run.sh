#!/usr/bin/env bash
# tether behind real load balancers: Debian's HAProxy and nginx (nginx-light)
# in round robin, no sticky sessions, in front of two `tether serve --app
# hub` nodes that share a redis-server. Event streams, WebSockets and long
# polls through each, idle connections that outlive the proxy's timeout,
# and a subscriber whose node is killed resuming on the other node with
# nothing lost: an event stream, a WebSocket, and an event stream of
# three topics resumed by its cursor (proxy_client.py has the checks).
#
#   conformance/proxy/run.sh
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#   PYTHON      the interpreter for the venv (default: python3; >= 3.11)
#
# Installs haproxy, nginx-light and redis-server when they are missing (as
# root, with apt-get), and Python's websockets into .venv beside this file.
# Prints "proxy: N passed, M failed" last.
set -uo pipefail

WEBSOCKETS_VERSION=17.4
# The nodes' --sse-heartbeat and --ping-interval, their --poll-timeout, and
# the proxies' timeouts: the proxies end a connection silent for longer
# than PROXY_TIMEOUT, which tether's heartbeats and pings keep from
# happening, and a long poll is answered before it.
HEARTBEAT=1
POLL_TIMEOUT=1.5
PROXY_TIMEOUT=2.5

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"
token="proxy-$RANDOM$RANDOM"

passed=0
failed=0
say() { printf 'proxy: %s\n' "$*"; }
give_up() {
    say "$*"
    echo "proxy: $passed passed, $((failed + 1)) failed"
    exit 1
}

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-proxy.XXXXXX")"
pids=()
client_pid=""
cleanup() {
    if [[ -n "$client_pid" ]]; then
        # Its own process group (setsid): the tether nodes it started too.
        kill -TERM -- "-$client_pid" 2>/dev/null || true
        wait "$client_pid" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'say interrupted; exit 130' INT
trap 'say interrupted; exit 143' TERM

# --- what it needs ------------------------------------------------------------
. "$here/prepare.sh"
install_missing haproxy=haproxy nginx=nginx-light redis-server=redis-server redis-cli=redis-tools
command -v redis-server >/dev/null || give_up "redis-server is unavailable: the two nodes share their topics through it"
command -v curl >/dev/null || give_up "curl is not installed"
find_tether
websockets_venv

# --- Redis and the proxies ------------------------------------------------------
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
node1=$(free_port)
node2=$(free_port)
haproxy_port=$(free_port)
nginx_port=$(free_port)
nginx_buffered_port=$(free_port)

redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
    --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    [[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" == PONG ]] && break
    sleep 0.1
done
[[ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" == PONG ]] \
    || { cat "$work/redis.log"; give_up "redis-server did not answer PING on $redis_port"; }

# The templates with this run's ports, timeouts and directory.
render() {
    sed -e "s|@PORT@|$2|g" -e "s|@PORT_BUFFERED@|${3:-}|g" \
        -e "s|@NODE1@|$node1|g" -e "s|@NODE2@|$node2|g" \
        -e "s|@TIMEOUT@|$4|g" -e "s|@WORK@|$work/nginx|g" "$here/$1.in"
}
# HAProxy takes 2500ms, nginx 2500ms too ("2.5s" is not a time to nginx).
timeout_ms="$("$python" -c "print(round($PROXY_TIMEOUT * 1000))")ms"
render haproxy.cfg "$haproxy_port" "" "$timeout_ms" >"$work/haproxy.cfg"
mkdir -p "$work/nginx"
render nginx.conf "$nginx_port" "$nginx_buffered_port" "$timeout_ms" >"$work/nginx/nginx.conf"

haproxy -c -q -f "$work/haproxy.cfg" >"$work/haproxy-check.log" 2>&1 \
    || { cat "$work/haproxy-check.log"; give_up "haproxy -c refused the configuration"; }
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
pids+=($!)

# As root, nginx would hand its workers to "nobody", who cannot use the
# temporary directory; workers stay root here (a test, on loopback).
nginx_global="daemon off;"
[[ $(id -u) == 0 ]] && nginx_global="$nginx_global user root;"
nginx_cmd=(nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/nginx-error.log" -g "$nginx_global")
"${nginx_cmd[@]}" -t >"$work/nginx-check.log" 2>&1 \
    || { cat "$work/nginx-check.log"; give_up "nginx -t refused the configuration"; }
"${nginx_cmd[@]}" >"$work/nginx.log" 2>&1 &
pids+=($!)

for port in "$haproxy_port" "$nginx_port" "$nginx_buffered_port"; do
    for _ in $(seq 50); do
        # Any answer will do (the nodes are not up yet): the port is open.
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/healthz" && break
        sleep 0.1
    done
done
say "redis on $redis_port, nodes on $node1 and $node2, haproxy on $haproxy_port, nginx on $nginx_port and $nginx_buffered_port (buffering left on)"

# --- the checks ---------------------------------------------------------------
# In the background, in a process group of its own, so that a signal
# reaches the traps at once and cleanup ends the nodes it started.
setsid timeout 120 "$venv/bin/python" "$here/proxy_client.py" \
    --tether "$bin" --redis "redis://127.0.0.1:$redis_port/" --token "$token" \
    --node-port "$node1" --node-port "$node2" \
    --heartbeat "$HEARTBEAT" --poll-timeout "$POLL_TIMEOUT" --proxy-timeout "$PROXY_TIMEOUT" \
    --proxy "haproxy=http://127.0.0.1:$haproxy_port" \
    --proxy "nginx=http://127.0.0.1:$nginx_port" \
    --proxy "nginx-buffered=http://127.0.0.1:$nginx_buffered_port" \
    --work "$work" >"$work/client.out" 2>&1 &
client_pid=$!
wait "$client_pid"
status=$?
client_pid=""

while IFS= read -r line; do
    case "$line" in
        ok\ *) passed=$((passed + 1)); printf 'ok   %s\n' "${line#ok }" ;;
        FAIL\ *) failed=$((failed + 1)); printf 'FAIL %s\n' "${line#FAIL }" ;;
        *) printf '    %s\n' "$line" ;;
    esac
done <"$work/client.out"
if [[ $status != 0 && $failed == 0 ]]; then
    [[ $status == 124 ]] && say "the checks took longer than 120 s" || say "the checks exited with status $status"
    failed=$((failed + 1))
fi
if ((failed)); then
    for log in "$work"/node*.log "$work/haproxy.log" "$work/nginx/nginx-error.log"; do
        [[ -s "$log" ]] || continue
        say "$(basename "$log"):"
        tail -20 "$log" | sed 's/^/    /'
    done
fi

echo "proxy: $passed passed, $failed failed"
[[ $failed == 0 ]]
