#!/usr/bin/env bash
# Headless Chromium behind HAProxy (failover.mjs): two `tether serve --app
# hub` nodes sharing their topics through Redis, round robin with no
# stickiness (conformance/proxy/haproxy.cfg.in), a page following 12
# topics on one native EventSource, then on the browser client's one
# WebSocket; the node serving it is killed, and every topic's events must
# arrive once, in order.
#
#   conformance/browser/failover.sh
#
# Installs what it needs as the other Chromium tests do (setup.sh beside
# this file), and haproxy and redis-server with apt-get when they are
# missing (as root).
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#
# Prints "browser-failover: N passed, M failed" last.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
label=browser-failover
# shellcheck source=setup.sh
source "$here/setup.sh"
browser_setup
# Redis and HAProxy go with the rest, however the run ends.
helpers=()
failover_cleanup() {
    [[ ${#helpers[@]} -gt 0 ]] && kill "${helpers[@]}" 2>/dev/null
    browser_cleanup
}
trap failover_cleanup EXIT

for tool in haproxy redis-server; do
    if ! command -v "$tool" >/dev/null; then
        [[ $(id -u) == 0 ]] || give_up "$tool is missing (apt-get install ${tool/haproxy/haproxy} as root)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >"$work/apt.log" 2>&1 \
            || { cat "$work/apt.log"; give_up "apt-get install $tool failed"; }
    fi
done

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
node1=$(free_port)
node2=$(free_port)
proxy_port=$(free_port)

redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
    --daemonize no >"$work/redis.log" 2>&1 &
helpers+=($!)
for _ in $(seq 50); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done

# conformance/proxy's HAProxy, with this run's ports and a 30 s timeout
# (longer than every silence tether allows: heartbeats every second here).
sed -e "s|@PORT@|$proxy_port|g" -e "s|@NODE1@|$node1|g" -e "s|@NODE2@|$node2|g" -e "s|@TIMEOUT@|30s|g" \
    "$here/../proxy/haproxy.cfg.in" >"$work/haproxy.cfg"
haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
helpers+=($!)

run_node "$here/failover.mjs" REDIS_URL="redis://127.0.0.1:$redis_port" NODE_PORTS="$node1 $node2" \
    PROXY_URL="http://127.0.0.1:$proxy_port"
exit $?
