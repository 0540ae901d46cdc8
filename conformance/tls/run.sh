#!/usr/bin/env bash
# tether's TLS record layer against hostile and unusual clients: the cases
# of record_layer.py (a TLS 1.3 and 1.2 client of its own, over the
# `cryptography` package in a cached venv) against `tether serve`, each
# checking the server's exact answer and that the server is still alive,
# serving and free of panics afterwards. See README.md beside this file.
#
#   conformance/tls/run.sh [CASE...]
#
# Environment:
#   TETHER_BIN        the tether binary (default: target/release/tether,
#                     built when missing)
#   TETHER_CACHE_DIR  where the venv is cached (default: ~/.cache/tether)
#   PYTHON            the interpreter for the venv (default: python3; >= 3.11)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"

say() { printf 'tls-records: %s\n' "$*"; }
die() { printf 'tls-records: FAILED: %s\n' "$*" >&2; exit 1; }

# --- the venv (cached) -----------------------------------------------------
# shellcheck source=venv.sh
source "$here/venv.sh"

# --- the binary ------------------------------------------------------------------
bin="${TETHER_BIN:-$root/target/release/tether}"
if [[ -z "${TETHER_BIN:-}" && ! -x "$bin" ]]; then
    (cd "$root" && cargo build --release -q -p tether) || die "cargo build failed"
fi
[[ -x "$bin" ]] || die "no tether binary at $bin"

case_args=()
for name in "$@"; do case_args+=(--case "$name"); done
timeout 600 "$venv/bin/python" "$here/record_layer.py" --tether "$bin" "${case_args[@]}"
