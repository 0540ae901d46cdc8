#!/usr/bin/env bash
# tlsfuzzer's TLS 1.3 and record-layer scripts against `tether serve`.
#
# For running by hand: CI cannot fetch tlsfuzzer (it is not on PyPI; get a
# checkout of https://github.com/tlsfuzzer/tlsfuzzer yourself and give its
# path). tlslite-ng and ecdsa, which its scripts import, come from PyPI
# into the venv that run.sh uses too. See README.md beside this file.
#
#   conformance/tls/tlsfuzzer.sh PATH_TO_TLSFUZZER_CHECKOUT [TETHER_BIN]
#
# It makes an RSA certificate (tlsfuzzer's TLS 1.3 scripts offer RSA-PSS
# signatures only), starts `tether serve --memory --tls-cert ... --port 0
# --threads 1` (one loop: a panic ends the process, which is then seen),
# runs each script (tlsfuzzer_run.py lists them with their arguments),
# checks after each that the server is alive, answers an HTTPS request and
# logged no panic, and compares every case with tlsfuzzer-expected.txt. The
# last line reads `tlsfuzzer: N passed, M failed`.
#
# Environment:
#   TLSFUZZER_AGAINST=reference  run against rustls-reference/ (plain
#                     rustls, built here) instead, without the expected list,
#                     and write its results to TLSFUZZER_REPORT
#   TLSFUZZER_REPORT  where to write every case's result (JSON)
#   TLSFUZZER_COMPARE a report of the reference's run: each failure is
#                     shown beside the reference's result for the same case
#   TLSFUZZER_SCRIPTS space-separated script names, to run only those
#   TLSFUZZER_LOGS    keep the scripts' output and the server's logs here
#   TLSFUZZER_EXPLAIN=1  run each failing case again alone and show the
#                     connection errors the server logged for it
#   TETHER_CACHE_DIR  where the venv is cached (default: ~/.cache/tether)
#   PYTHON            the interpreter for the venv (default: python3; >= 3.11)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"

say() { printf 'tlsfuzzer: %s\n' "$*"; }
die() { printf 'tlsfuzzer: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $# -ge 1 && $# -le 2 ]] || die "usage: $0 PATH_TO_TLSFUZZER_CHECKOUT [TETHER_BIN]"
tlsfuzzer="$(cd "$1" && pwd)" || die "no directory $1"
[[ -f "$tlsfuzzer/scripts/test-tls13-keyupdate.py" && -d "$tlsfuzzer/tlsfuzzer" ]] \
    || die "$tlsfuzzer is not a tlsfuzzer checkout (no scripts/test-tls13-keyupdate.py)"

# shellcheck source=venv.sh
source "$here/venv.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-tlsfuzzer.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" -c "
import sys
sys.path.insert(0, sys.argv[1])
import record_layer
record_layer.make_certificate(sys.argv[2], rsa=True)
" "$here" "$work" || die "could not make a certificate"

args=(--tlsfuzzer "$tlsfuzzer" --cert "$work/cert.pem" --key "$work/key.pem")
if [[ "${TLSFUZZER_AGAINST:-tether}" == reference ]]; then
    (cd "$here/rustls-reference" && cargo build --release -q) || die "cargo build of rustls-reference failed"
    target_dir="${CARGO_TARGET_DIR:-$here/rustls-reference/target}"
    args+=(--reference "$target_dir/release/rustls-reference")
else
    bin="${2:-${TETHER_BIN:-$root/target/release/tether}}"
    if [[ $# -lt 2 && -z "${TETHER_BIN:-}" && ! -x "$bin" ]]; then
        (cd "$root" && cargo build --release -q -p tether) || die "cargo build failed"
    fi
    [[ -x "$bin" ]] || die "no tether binary at $bin"
    args+=(--tether "$bin" --expected "$here/tlsfuzzer-expected.txt")
fi
[[ -n "${TLSFUZZER_REPORT:-}" ]] && args+=(--report "$TLSFUZZER_REPORT")
[[ -n "${TLSFUZZER_COMPARE:-}" ]] && args+=(--compare-with "$TLSFUZZER_COMPARE")
[[ -n "${TLSFUZZER_LOGS:-}" ]] && args+=(--logs "$TLSFUZZER_LOGS")
[[ -n "${TLSFUZZER_EXPLAIN:-}" ]] && args+=(--explain)
for script in ${TLSFUZZER_SCRIPTS:-}; do args+=(--script "$script"); done

"$venv/bin/python" "$here/tlsfuzzer_run.py" "${args[@]}"
