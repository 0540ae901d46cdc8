# What run.sh and chaos.sh both need before they start, sourced by each.
# They define say, give_up, work, root, venv, python and
# WEBSOCKETS_VERSION first.

# Installs the Debian packages named (as root, with apt-get) when the
# command beside each is missing: install_missing CMD=PACKAGE ...
install_missing() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null \
        || give_up "missing ${missing[*]}, and apt-get cannot install them here (not root)"
    say "installing ${missing[*]}"
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$work/apt.log" 2>&1 \
        || { tail -20 "$work/apt.log"; give_up "apt-get install ${missing[*]} failed"; }
}

# Sets bin to TETHER_BIN, or to a release build made now.
find_tether() {
    if [[ -n "${TETHER_BIN:-}" ]]; then
        bin="$TETHER_BIN"
    else
        say "building: cargo build --release -p tether"
        (cd "$root" && cargo build --release -p tether) || give_up "cargo build failed"
        bin="${CARGO_TARGET_DIR:-$root/target}/release/tether"
    fi
    [[ -x "$bin" ]] || give_up "no tether binary at $bin"
}

# Makes the venv with Python's websockets, unless the one there is of the
# same versions.
websockets_venv() {
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
        || give_up "$python is missing or older than 3.11 (websockets $WEBSOCKETS_VERSION needs 3.11); set PYTHON"
    local stamp
    stamp="websockets==$WEBSOCKETS_VERSION $("$python" -c 'import sys; print(sys.version.split()[0])')"
    if [[ "$(cat "$venv/.tether-stamp" 2>/dev/null)" != "$stamp" ]]; then
        say "creating $venv ($stamp)"
        rm -rf "$venv"
        "$python" -m venv "$venv" \
            && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "websockets==$WEBSOCKETS_VERSION" \
            && printf '%s\n' "$stamp" >"$venv/.tether-stamp" \
            || give_up "could not make the venv at $venv"
    fi
}
