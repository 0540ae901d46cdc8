#!/usr/bin/env bash
# Headless Chromium over https:// and HTTP/2 against tether serve --app
# demo --tls-self-signed: ten EventSources and a WebSocket live at once on
# one connection, and with --http2 off the seventh EventSource stalled
# behind Chromium's six connections per host (browser.mjs).
#
#   conformance/h2/browser.sh
#
# Installs what it needs as the other Chromium tests do
# (conformance/browser/setup.sh: Debian's chromium, playwright-core in
# conformance/browser/node_modules).
#
# Environment:
#   TETHER_BIN  the tether binary (default: cargo build --release -p tether)
#
# Prints "h2-browser: N passed, M failed" last.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
label=h2-browser
# shellcheck source=../browser/setup.sh
source "$here/../browser/setup.sh"
browser_setup
command -v ss >/dev/null || give_up "ss (iproute2) is not installed"

run_node "$here/browser.mjs"
