#!/usr/bin/env bash
# tether-auth against an independent JWT library: PyJWT (over the
# `cryptography` package) makes keys and tokens, valid and not, for HS256,
# RS256, ES256 and EdDSA; tether-auth verifies each and must give the
# expected outcome and reason. See README.md beside this file.
#
#   conformance/auth/run.sh
#
# Environment:
#   TETHER_CACHE_DIR  where the venv is cached (default: ~/.cache/tether)
#   PYTHON            the interpreter for the venv (default: python3; >= 3.11)
set -euo pipefail

PYJWT_VERSION=2.15.1
CRYPTOGRAPHY_VERSION=50.0.2
# cryptography's own dependencies, pinned too so that every run installs the
# same packages (pycparser 3.12 is why Python 3.11 is needed).
CFFI_VERSION=2.1.1
PYCPARSER_VERSION=3.12

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${TETHER_CACHE_DIR:-$HOME/.cache/tether}"
venv="$cache/auth-venv"
python="${PYTHON:-python3}"

say() { printf 'auth-interop: %s\n' "$*"; }
die() { printf 'auth-interop: FAILED: %s\n' "$*" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/tether-auth.XXXXXX")"
trap 'rm -rf "$work"' EXIT

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$python is missing or older than 3.11; set PYTHON"

# --- the venv (cached; rebuilt when a pin changes or a build was cut short) --
pins=("pyjwt==$PYJWT_VERSION" "cryptography==$CRYPTOGRAPHY_VERSION" "cffi==$CFFI_VERSION" "pycparser==$PYCPARSER_VERSION")
stamp="${pins[*]} $("$python" -c 'import sys; print(sys.version.split()[0])')"
mkdir -p "$cache"
(
    flock 9
    if [[ "$(cat "$venv/.tether-stamp" 2>/dev/null)" != "$stamp" ]]; then
        say "creating $venv ($stamp)"
        rm -rf "$venv"
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "${pins[@]}"
        printf '%s\n' "$stamp" >"$venv/.tether-stamp"
    fi
) 9>"$cache/auth-venv.lock" || die "could not create the venv at $venv"

# --- tokens from PyJWT, verified by tether-auth -------------------------------
"$venv/bin/python" "$here/make_cases.py" "$work" || die "make_cases.py failed"
(cd "$root" && cargo build -q -p tether-auth --example verify_cases) || die "cargo build failed"
(cd "$root" && cargo run -q -p tether-auth --example verify_cases -- "$work/cases.json") \
    || die "some cases failed (see FAIL lines above)"
