#!/usr/bin/env bash
# tether-quic against an independent HTTP/3 client: Python's aioquic (its
# own QUIC stack, and a QPACK encoder that uses the dynamic table) sends
# requests to the h3_serve example over a real UDP socket, then to the
# `tether serve --http3 on` binary (the hub: a page, an event stream, a
# long poll and an RFC 9220 WebSocket fed by publishes over HTTP/3,
# presence, 20 requests at once, a 404, Alt-Svc on the TCP side, a move
# to a new local port with the event stream open (connection migration),
# and WebTransport sessions on /topics/NAME/wt: events as JSON lines, a resume
# from lastEventId, a publish over a unidirectional stream).
#
#   crates/quic/interop/run.sh
#
# Environment:
#   TETHER_CACHE_DIR  where the venv is cached (default: ~/.cache/tether)
#   PYTHON            the interpreter for the venv (default: python3; >= 3.10)
set -euo pipefail

# aioquic and every package it pulls in, pinned so that each run installs
# the same ones.
pins=(
    aioquic==1.7.2 attrs==26.1.0 certifi==2026.10.19.post1 cffi==2.1.1 cryptography==50.0.2
    pycparser==3.12 pylsqpack==1.0.0 pyOpenSSL==26.4.0 service-identity==26.1.0
    typing_extensions==4.16.0
)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cache="${TETHER_CACHE_DIR:-$HOME/.cache/tether}"
venv="$cache/h3-venv"
python="${PYTHON:-python3}"

say() { printf 'h3-interop: %s\n' "$*"; }
die() { printf 'h3-interop: FAILED: %s\n' "$*" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-h3.XXXXXX")"
server_pid=""
tether_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; fi
    if [[ -n "$tether_pid" ]]; then kill "$tether_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- the venv (cached; rebuilt when a pin changes or a build was cut short) --
stamp="${pins[*]} $("$python" -c 'import sys; print(sys.version.split()[0])')"
mkdir -p "$cache"
(
    flock 9
    if [[ "$(cat "$venv/.tether-stamp" 2>/dev/null)" != "$stamp" ]]; then
        say "creating $venv"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
        printf '%s\n' "$stamp" >"$venv/.tether-stamp"
    fi
) 9>"$cache/h3-venv.lock" || die "could not create the venv at $venv"

# --- the server, on a free port ----------------------------------------------
(cd "$root" && cargo build -q -p tether-quic --example h3_serve) || die "cargo build failed"
"$root/target/debug/examples/h3_serve" "$work/cert.pem" 60 >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 100); do
    grep -q '^listening ' "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
port="$(awk '/^listening /{print $2}' "$work/server.out")"
[[ -n "$port" ]] || die "the server did not start: $(cat "$work/server.err")"

# --- the client ----------------------------------------------------------------
timeout 60 "$venv/bin/python" "$here/aioquic_client.py" "$port" "$work/cert.pem" \
    || die "aioquic's requests failed; the server said: $(tail -20 "$work/server.err")"

kill "$server_pid" 2>/dev/null || true
server_pid=""

# --- tether serve --http3 on, with a certificate for localhost ----------------
"$venv/bin/python" - "$work" <<'PY' || die "could not make a certificate"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (
    x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
    .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    .sign(key, hashes.SHA256())
)
with open(f"{sys.argv[1]}/tether-cert.pem", "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
with open(f"{sys.argv[1]}/tether-key.pem", "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PY
(cd "$root" && cargo build -q -p tether) || die "cargo build -p tether failed"
token="h3-interop-$$"
"$root/target/debug/tether" serve --app hub --port 0 --threads 2 --http3 on \
    --tls-cert "$work/tether-cert.pem" --tls-key "$work/tether-key.pem" \
    --publish-token "$token" --data-dir "$work/data" \
    >"$work/tether.out" 2>"$work/tether.err" &
tether_pid=$!
for _ in $(seq 1 100); do
    grep -q '^HTTP/3 on ' "$work/tether.out" 2>/dev/null && break
    sleep 0.1
done
port="$(sed -nE 's|^HTTP/3 on udp://[^ ]*:([0-9]+)/.*|\1|p' "$work/tether.out")"
[[ -n "$port" ]] || die "tether serve did not start: $(cat "$work/tether.out" "$work/tether.err")"
timeout 60 "$venv/bin/python" "$here/serve_client.py" "$port" "$work/tether-cert.pem" "$token" \
    || die "aioquic's requests to tether serve failed; it said: $(tail -20 "$work/tether.err")"
