#!/usr/bin/env bash
# SSE fan-out over HTTP/1.1, HTTP/2 and HTTP/3 against one `tether serve`
# in one run: the server listens plain (HTTP/1.1 and h2c) and, beside it,
# with TLS (HTTP/1.1 over TLS) and HTTP/3 on the TLS port's number (UDP),
# with a certificate from a CA made for the run that the load generator
# trusts (--ca). For each subscriber count, the same fan-out (every event
# checked, in order) with S subscribers as:
#
# - h1:     S HTTP/1.1 connections (plain);
# - h1tls:  S HTTP/1.1 connections over TLS (what encryption costs TCP);
# - h2:     streams of S/K HTTP/2 connections (h2c, --h2);
# - h3:     streams of S/K QUIC connections (--h3), TLS 1.3 inside.
#
# The publisher is one WebSocket (over TLS for h1tls and h3). Before
# them, IDLE idle connections each over TCP and TLS (WebSockets) and QUIC
# (HTTP/3 connections with no request stream), each on a server started
# for it: server RSS per connection and connections opened per second
# (--connect-concurrency's 100 handshakes at a time). Prints each
# run, then server CPU per delivery, p99 latency and the ratios h3/h2,
# h2/h1 and h3/h1tls. A benchmark, not a test: the figures mean something
# only on a quiet machine (see benches/README.md). Ends with
# "h3-bench: N passed, M failed" (a run that failed, not a figure that
# disappointed).
#
# Knobs (environment): THREADS (server loops, 1), DURATION (seconds a run,
# 5), SIZES (subscriber counts, "1000 10000"), PER_CONN (streams per
# h2/h3 connection, 100: the server's QUIC stream limit), DELIVERIES
# (events per second offered, 100000: the publish rate is DELIVERIES / S),
# PROTOCOLS ("h1 h1tls h2 h3"), IDLE (idle connections over TCP, TLS and
# QUIC, 2000; 0: none).
# Uses $TETHER_BIN when set, else builds tether in release.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS=${THREADS:-1}
DURATION=${DURATION:-5}
SIZES=${SIZES:-1000 10000}
PER_CONN=${PER_CONN:-100}
DELIVERIES=${DELIVERIES:-100000}
PROTOCOLS=${PROTOCOLS:-h1 h1tls h2 h3}
IDLE=${IDLE:-2000}

BENCH=h3-bench
# shellcheck source=fanout-common.sh
. benches/fanout-common.sh
# shellcheck source=tls-files.sh
. benches/tls-files.sh

if ! make_tls_files "$LOGS/tls"; then
    echo "$BENCH: 0 passed, 1 failed"
    exit 1
fi
largest=$(printf '%s\n' $SIZES "$IDLE" | sort -n | tail -1)
# Starts the server: plain on ADDR, TLS and HTTP/3 on TLS_ADDR's number.
serve() {
    start_tether --app demo --memory --threads "$THREADS" --max-connections $((largest + 1000)) \
        --tls-listen 127.0.0.1:0 --tls-cert "$LOGS/tls/server.pem" --tls-key "$LOGS/tls/server.key" --http3 on
    TLS_ADDR=$(server_log_value 's|^TLS beside it on https://\([^/]*\)/.*|\1|p')
    H3_ADDR=$(server_log_value 's|^HTTP/3 on udp://\([^/]*\)/.*|\1|p')
    echo "tether serve --app demo --threads $THREADS on http://$ADDR, https://$TLS_ADDR, HTTP/3 udp://$H3_ADDR (pid $SERVER_PID)"
}

# Idle connections: server RSS per connection and connections opened per
# second (all at once, handshakes included), over TCP, TLS and QUIC.
declare -A IDLE_BYTES IDLE_CPS
idle_run() { # name, then the load generator's idle arguments
    local name=$1
    shift
    if timeout 300 "$LOADGEN" idle --pid "$SERVER_PID" -c "$IDLE" --settle 2 --hold 1 "$@" >"$LOGS/idle" 2>&1; then
        local json
        json=$(grep '^{' "$LOGS/idle")
        IDLE_BYTES[$name]=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["rss_per_conn"])' <<<"$json")
        IDLE_CPS[$name]=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["connects_per_s"])' <<<"$json")
        passed=$((passed + 1))
        echo "ok   idle $name: $(head -1 "$LOGS/idle")"
    else
        failed=$((failed + 1))
        echo "FAIL idle $name"
        cat "$LOGS/idle"
    fi
}
# Each on a server of its own, started for it: the RSS of a server that
# has held more connections before does not grow again for new ones.
if [ "$IDLE" -gt 0 ]; then
    for kind in tcp tls quic; do
        serve
        case $kind in
        tcp) idle_run tcp --addr "ws://$ADDR" --path /echo ;;
        tls) idle_run tls --addr "wss://$TLS_ADDR" --ca "$LOGS/tls/ca.pem" --path /echo ;;
        quic) idle_run quic --addr "https://$TLS_ADDR" --ca "$LOGS/tls/ca.pem" --h3 ;;
        esac
        stop_tether
    done
fi

serve

# UDP datagrams the kernel dropped for a full receive buffer (on this
# machine, all sockets): a QUIC run that lost some paid for them in
# retransmissions and a smaller congestion window.
udp_rcvbuf_errors() { awk '/^Udp:/ { if (seen) print $6; seen = 1 }' /proc/net/snmp; }
declare -A UDP_DROPS
for n in $SIZES; do
    rate=$(awk -v d="$DELIVERIES" -v n="$n" 'BEGIN { printf "%g", d / n }')
    for p in $PROTOCOLS; do
        case $p in
        h1) fanout_run "h1-$n" --addr "$ADDR" -n "$n" -r "$rate" ;;
        h1tls) fanout_run "h1tls-$n" --addr "https://$TLS_ADDR" --ca "$LOGS/tls/ca.pem" -n "$n" -r "$rate" ;;
        h2) fanout_run "h2-$n" --addr "$ADDR" -n "$n" -r "$rate" --h2 --streams-per-conn "$PER_CONN" ;;
        h3)
            drops=$(udp_rcvbuf_errors)
            fanout_run "h3-$n" --addr "https://$TLS_ADDR" --ca "$LOGS/tls/ca.pem" -n "$n" -r "$rate" \
                --h3 --streams-per-conn "$PER_CONN"
            UDP_DROPS[h3-$n]=$(($(udp_rcvbuf_errors) - drops))
            echo "     UDP datagrams dropped for a full receive buffer during h3-$n: ${UDP_DROPS[h3-$n]}"
            ;;
        *)
            echo "h3.sh: unknown protocol $p (h1, h1tls, h2, h3)"
            failed=$((failed + 1))
            ;;
        esac
    done
done


echo
echo "SSE fan-out, 64 B events, $DELIVERIES deliveries/s offered, h2 and h3: $PER_CONN streams a connection"
echo
echo "| subscribers | figure | h1 | h1 + TLS | h2 | h3 | h2/h1 | h3/h2 | h3/(h1 + TLS) |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in $SIZES; do
    row() { # label, then the array's name
        local -n values=$2
        local h1=${values[h1-$n]:-} tls=${values[h1tls-$n]:-} h2=${values[h2-$n]:-} h3=${values[h3-$n]:-}
        echo "| $n | $1 | $h1 | $tls | $h2 | $h3 | $(ratio "${h2:-0}" "${h1:-0}") | $(ratio "${h3:-0}" "${h2:-0}") | $(ratio "${h3:-0}" "${tls:-0}") |"
    }
    row "server CPU ns per delivery" NS_PER
    row "events per server CPU-s" CPU_EPS
    row "events/s" EPS
    row "p99 latency (µs)" P99
done
if [ "$IDLE" -gt 0 ]; then
    echo
    echo "| $IDLE idle connections | TCP (WebSocket) | TLS (WebSocket) | QUIC (no stream) | QUIC/TLS |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    echo "| server RSS per connection (B) | ${IDLE_BYTES[tcp]:-} | ${IDLE_BYTES[tls]:-} | ${IDLE_BYTES[quic]:-} | $(ratio "${IDLE_BYTES[quic]:-0}" "${IDLE_BYTES[tls]:-0}") |"
    echo "| connections opened per second (handshakes included) | ${IDLE_CPS[tcp]:-} | ${IDLE_CPS[tls]:-} | ${IDLE_CPS[quic]:-} | $(ratio "${IDLE_CPS[quic]:-0}" "${IDLE_CPS[tls]:-0}") |"
fi
echo
echo "$BENCH: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
