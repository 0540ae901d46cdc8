# Sourced by run.sh and tlsfuzzer.sh: makes (once, again only when a pin or
# the interpreter changes) the venv both use, and sets $venv to it. Wants
# $say and $die defined, and $python (an interpreter, >= 3.11).
#
# cryptography and its dependencies at the versions conformance/auth/run.sh
# pins (record_layer.py's client); tlslite-ng and ecdsa (with six) for
# tlsfuzzer, which needs tlslite-ng 0.9.0b2 or later.
pins=(
    cryptography==50.0.2 cffi==2.1.1 pycparser==3.12
    tlslite-ng==0.9.0b2 ecdsa==0.19.2 six==1.17.0
)
cache="${TETHER_CACHE_DIR:-$HOME/.cache/tether}"
venv="$cache/tls-venv"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$python is missing or older than 3.11; set PYTHON"
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
) 9>"$cache/tls-venv.lock" || die "could not create the venv at $venv"
