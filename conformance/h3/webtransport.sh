#!/usr/bin/env bash
# Headless Chromium opens a WebTransport session to a hub topic
# (webtransport.mjs): `new WebTransport(URL, {serverCertificateHashes})`,
# the events on the first unidirectional stream the server opens.
#
#   conformance/h3/webtransport.sh           against tether serve --http3 on
#   conformance/h3/webtransport.sh --probe [PROBE OPTIONS]
#                                            against webtransport_probe.py,
#                                            a stand-in that records what
#                                            Chromium sends (aioquic); the
#                                            options make its answers lack
#                                            a part (see its --help)
#
# Against tether: five events are published to the topic first, the
# session resumes after the second (?lastEventId=), so the third to the
# fifth must come, then two more published while it is open. The
# certificate is made here: ECDSA P-256 valid for 10 days (what Chromium
# requires of a certificate trusted by its hash: ECDSA, at most 14 days).
# Not yet part of .ci/run: tether does not serve WebTransport yet.
#
# Installs what it needs as the other Chromium tests do
# (conformance/browser/setup.sh); --probe needs the aioquic venv that
# crates/quic/interop/run.sh makes (~/.cache/tether/h3-venv).
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#   WT_NETLOG   keep Chromium's net log (everything) in this file
#   WT_CERT_DAYS, WT_CERT_KEY  the certificate's validity (default 10 days)
#               and key (ec, the default, or rsa): to see Chromium refuse
#               a hash for a certificate it may not take one for
#
# Prints "webtransport: N passed, M failed" last.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
label=webtransport
probe=0
probe_args=()
if [[ "${1:-}" == --probe ]]; then
    probe=1
    probe_args=("${@:2}")
fi
venv="${XDG_CACHE_HOME:-$HOME/.cache}/tether/h3-venv"
if [[ $probe == 1 ]]; then
    # The stand-in needs no tether binary; setup.sh wants one all the same.
    TETHER_BIN="${TETHER_BIN:-/bin/true}"
    [[ -x "$venv/bin/python" ]] || { echo "$label: no venv at $venv (crates/quic/interop/run.sh makes it)"; echo "$label: 0 passed, 1 failed"; exit 1; }
fi
# shellcheck source=../browser/setup.sh
source "$here/../browser/setup.sh"
browser_setup

command -v openssl >/dev/null || give_up "openssl is not installed (it makes the test certificate)"
# WT_CERT_DAYS and WT_CERT_KEY=rsa make one Chromium should refuse.
if [[ "${WT_CERT_KEY:-ec}" == rsa ]]; then
    key_options=(-newkey rsa:2048)
else
    key_options=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
fi
openssl req -x509 "${key_options[@]}" -nodes -days "${WT_CERT_DAYS:-10}" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.err" \
    || { cat "$work/openssl.err"; give_up "openssl could not make a certificate"; }

server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap 'stop_server; browser_cleanup' EXIT

# Waits for the server's output ($1) to match $2 (an ERE); prints the match.
wait_for() {
    local i
    for i in $(seq 100); do
        if grep -qoE "$2" "$1"; then
            grep -oE "$2" "$1" | head -1
            return 0
        fi
        sleep 0.1
    done
    return 1
}

topic=wt.browser
token=webtransport-token
if [[ $probe == 1 ]]; then
    "$venv/bin/python" -u "$here/webtransport_probe.py" --cert "$work/cert.pem" --key "$work/key.pem" \
        --events 5 "${probe_args[@]}" >"$work/server.out" 2>"$work/server.err" &
    server_pid=$!
    port="$(wait_for "$work/server.out" '"listening": [0-9]+' | grep -oE '[0-9]+$')" \
        || { cat "$work/server.err"; give_up "the probe did not start"; }
    expect='[{"id":"1-3","data":"event 3"},{"id":"1-4","data":"event 4"},{"id":"1-5","data":"event 5"}]'
    run_node "$here/webtransport.mjs" WT_URL="https://127.0.0.1:$port" WT_CERT="$work/cert.pem" \
        WT_TOPIC="$topic" WT_LAST_EVENT_ID=1-2 WT_EXPECT="$expect" WT_NETLOG="${WT_NETLOG:-}"
    status=$?
    echo "# what the probe saw:"
    sed 's/^/# /' "$work/server.out"
    exit "$status"
fi

"$bin" serve --app hub --memory --addr 127.0.0.1 --port 0 --threads 1 --tls-cert "$work/cert.pem" \
    --tls-key "$work/key.pem" --http3 on --publish-token "$token" --log-level warn \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
echo "$server_pid" >>"$work/pids"
url="$(wait_for "$work/server.out" 'https://127\.0\.0\.1:[0-9]+')" \
    || { cat "$work/server.err"; give_up "tether did not start"; }
ids=()
for n in 1 2 3 4 5; do
    answer="$(curl -sS --cacert "$work/cert.pem" -H "Authorization: Bearer $token" \
        --data-binary "event $n" "$url/topics/$topic")" || give_up "publish $n failed"
    ids+=("$(printf '%s' "$answer" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')")
done
expect="[{\"id\":\"${ids[2]}\",\"data\":\"event 3\"},{\"id\":\"${ids[3]}\",\"data\":\"event 4\"},{\"id\":\"${ids[4]}\",\"data\":\"event 5\"}]"
run_node "$here/webtransport.mjs" WT_URL="$url" WT_CERT="$work/cert.pem" WT_TOPIC="$topic" \
    WT_LAST_EVENT_ID="${ids[1]}" WT_EXPECT="$expect" WT_LIVE=2 WT_PUBLISH_TOKEN="$token" \
    WT_NETLOG="${WT_NETLOG:-}"
