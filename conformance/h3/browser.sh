#!/usr/bin/env bash
# Headless Chromium over HTTP/3 against tether serve --app demo --http3 on
# (browser.mjs): EventSources and publishes over h3 (QUIC forced for the
# server's origin), another origin's cookie refused over h3, RFC 9220
# WebSockets with Chromium's EnableWebsocketsOverHttp3, and the move from
# HTTP/2 to h3 by Alt-Svc.
#
#   conformance/h3/browser.sh
#
# Installs what it needs as the other Chromium tests do
# (conformance/browser/setup.sh); openssl makes the certificate.
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#
# Prints "h3-browser: N passed, M failed" last.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
label=h3-browser
# shellcheck source=../browser/setup.sh
source "$here/../browser/setup.sh"
browser_setup

# A certificate made here for 127.0.0.1 (ECDSA P-256, two days), whose
# key Chromium is told to trust: --ignore-certificate-errors-spki-list
# takes the SHA-256 of its public key.
command -v openssl >/dev/null || give_up "openssl is not installed (it makes the test certificate)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>"$work/openssl.err" \
    || { cat "$work/openssl.err"; give_up "openssl could not make a certificate"; }
spki="$(openssl x509 -in "$work/cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)"

run_node "$here/browser.mjs" TLS_CERT="$work/cert.pem" TLS_KEY="$work/key.pem" TLS_SPKI="$spki"
