#!/usr/bin/env bash
# Headless Chromium against the admin page (admin.mjs): tether serve --app
# hub with an admin listener and a metrics token (and one on a Redis it
# starts, when redis-server is installed); the browser signs in,
# load is applied from Node, and the page's figures and charts must move.
#
#   conformance/browser/admin.sh
#
# Installs what it needs as the other Chromium tests do (setup.sh beside
# this file: Debian's chromium, playwright-core here).
#
# Environment:
#   TETHER_BIN             the tether binary (default: cargo build --release -p tether)
#   TETHER_SCREENSHOT_DIR  keep the screenshots there (default: a scratch
#                          directory removed at the end)
#
# Prints "admin-page: N passed, M failed" last.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
label=admin-page
# shellcheck source=setup.sh
source "$here/setup.sh"
browser_setup

run_node "$here/admin.mjs" TETHER_SCREENSHOT_DIR="${TETHER_SCREENSHOT_DIR:-$work}"
