#!/usr/bin/env bash
# Provide Autobahn|Testsuite's `wstest` for conformance/run.py.
#
# Prints exactly one line on stdout: the path of an executable that takes
# wstest's own arguments (`-m fuzzingclient -s SPEC`, ...). Everything else,
# progress included, goes to stderr. Run it as often as you like: it is
# idempotent, and once the cache is built it only checks a stamp file.
#
# Where wstest comes from, first match wins (TETHER_WSTEST_MODE forces one of
# path|docker|private; the default is auto):
#   1. a `wstest` on PATH;
#   2. the Docker image crossbario/autobahn-testsuite, when `docker info` works;
#   3. a private Python 2.7 environment built into the cache:
#        - Python 2.7 from Debian bullseye: `apt-get download` against a
#          private source list and private apt state (the system's apt
#          configuration, lists and dpkg database are never touched), then
#          `dpkg -x` into a private prefix; nothing is installed system-wide;
#        - wheels and source archives pinned below, fetched by python3's pip;
#        - installed by pip 20.3.4 (the last pip for Python 2) run from its
#          wheel as a program.
#
# Cache: ${TETHER_CACHE_DIR:-$HOME/.cache/tether}/wstest, outside the
# repository, so a second run and a fresh clone reuse it. Delete that
# directory to rebuild from nothing.
#
# Knobs (environment):
#   TETHER_CACHE_DIR       cache root (default $HOME/.cache/tether)
#   TETHER_WSTEST_MODE     auto (default) | path | docker | private
#   TETHER_WSTEST_IMAGE    Docker image (default crossbario/autobahn-testsuite)
#   TETHER_DEBIAN_MIRROR   Debian archive URI for bullseye (default: the URI
#                          of the system's own Debian source, from /etc/apt)
#   TETHER_DEBIAN_SUITE    default bullseye

set -euo pipefail

log() { printf 'wstest-env: %s\n' "$*" >&2; }
die() {
    printf 'wstest-env: ERROR: %s\n' "$*" >&2
    exit 1
}

CACHE_ROOT="${TETHER_CACHE_DIR:-${HOME:?HOME is not set; set TETHER_CACHE_DIR}/.cache/tether}"
CACHE="$CACHE_ROOT/wstest"
MODE="${TETHER_WSTEST_MODE:-auto}"
IMAGE="${TETHER_WSTEST_IMAGE:-crossbario/autobahn-testsuite}"
SUITE="${TETHER_DEBIAN_SUITE:-bullseye}"

case "$MODE" in
auto | path | docker | private) ;;
*) die "TETHER_WSTEST_MODE must be auto, path, docker or private, not '$MODE'" ;;
esac

# --- the pins ---------------------------------------------------------------
# Bump ENV_VERSION whenever anything below changes: the stamp then no longer
# matches and the environment is rebuilt (downloads are kept and reused).
ENV_VERSION=2

# libpython2.7-dev: the headers wsaccel (below) is compiled against.
DEBS=(python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib libpython2.7-dev libssl1.1 libffi7)

# Binary wheels for CPython 2.7, UCS-4 build (cp27mu), as Debian's python2.7 is.
BINARY_WHEELS=(
    Twisted==20.3.0
    zope.interface==4.7.2
    cryptography==3.3.2
    cffi==1.15.1
    MarkupSafe==1.1.1
)
# Pure-Python wheels (py2.py3 or py2).
PURE_WHEELS=(
    pip==20.3.4
    six==1.16.0
    attrs==20.3.0
    Automat==20.2.0
    hyperlink==20.0.1
    idna==2.10
    incremental==17.5.0
    constantly==15.1.0
    pycparser==2.21
    enum34==1.1.10
    ipaddress==1.0.23
    pyOpenSSL==19.1.0
    Jinja2==2.11.3
    Werkzeug==1.0.1
    klein==17.10.0
    unittest2==1.1.0
    linecache2==1.0.0
    traceback2==1.4.0
    argparse==1.4.0
    service_identity==18.1.0
    pyasn1==0.4.8
    pyasn1-modules==0.2.8
    setuptools==44.1.1 # wstest imports pkg_resources at run time
    typing==3.10.0.0   # hyperlink's backport on Python 2
)
# Only for building the source archives below (pip's isolated PEP 517 build
# takes them from the download directory); not installed into the environment.
BUILD_WHEELS=(
    setuptools==44.1.1
    wheel==0.37.1
)
# Source archives (no usable wheel for Python 2.7). autobahntestsuite's
# archive carries no requirements list of its own, so every dependency is
# pinned here and installed with --no-deps.
SDISTS=(
    autobahn==0.10.9
    txaio==2.1.0
    PyHamcrest==1.10.1
    autobahntestsuite==25.10.1
    # The C masking and UTF-8 validation autobahn uses when it can import
    # them: without it wstest masks every byte it sends and checks every
    # byte it receives in pure Python, which was most of the time of the
    # compression cases. The same checks, made faster; the results are
    # compared with the same expected files.
    wsaccel==0.6.2
)
PIP_WHEEL=pip-20.3.4-py2.py3-none-any.whl

# --- 1. a wstest on PATH --------------------------------------------------
if [[ "$MODE" == auto || "$MODE" == path ]]; then
    if found="$(command -v wstest 2>/dev/null)"; then
        log "using wstest from PATH: $found"
        printf '%s\n' "$found"
        exit 0
    fi
    [[ "$MODE" == path ]] && die "TETHER_WSTEST_MODE=path but there is no wstest on PATH"
fi

mkdir -p "$CACHE/bin" || die "cannot create the cache directory $CACHE"

# --- 2. Docker ----------------------------------------------------------------
# UNTESTED: this machine has a docker client but no engine, so this branch has
# never run here. The launcher mounts the working directory at the same path
# and uses the host network, so the spec file, the reports directory (both
# given relative to the working directory by run.py) and servers on 127.0.0.1
# are the same inside and outside the container.
if [[ "$MODE" == auto || "$MODE" == docker ]]; then
    if command -v docker >/dev/null 2>&1 && timeout 30 docker info >/dev/null 2>&1; then
        log "Docker engine found; using image $IMAGE (untested path)"
        if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
            log "pulling $IMAGE"
            docker pull "$IMAGE" >&2 || die "docker pull $IMAGE failed"
        fi
        launcher="$CACHE/bin/wstest-docker"
        cat >"$launcher.tmp" <<EOF
#!/bin/sh
# Written by conformance/wstest-env.sh (Docker mode, untested). Runs wstest in
# a container with the host network and the working directory mounted at the
# same path.
exec docker run --rm --init --network host --user "\$(id -u):\$(id -g)" \\
    -v "\$PWD:\$PWD" -w "\$PWD" '$IMAGE' wstest "\$@"
EOF
        chmod +x "$launcher.tmp"
        mv -f "$launcher.tmp" "$launcher"
        printf '%s\n' "$launcher"
        exit 0
    fi
    [[ "$MODE" == docker ]] && die "TETHER_WSTEST_MODE=docker but 'docker info' does not work (no engine?)"
fi

# --- 3. private Python 2.7 environment -----------------------------------------
PREFIX="$CACHE/py27"     # dpkg -x target
DIST="$CACHE/dist"       # wheels and source archives
DEBDIR="$CACHE/debs"     # downloaded .deb files
APTDIR="$CACHE/apt"      # private apt state: source list, lists, cache
ENVDIR="$CACHE/env"      # pip --target directory
STAMP="$CACHE/env.stamp" # written last, when everything works
PY="$PREFIX/usr/bin/python2.7"
PYHOME="$PREFIX/usr"
PYLIB="$PREFIX/usr/lib/x86_64-linux-gnu"
LAUNCHER="$CACHE/bin/wstest"

stamp_text() {
    printf 'env-version=%s\nsuite=%s\ndebs=%s\nwheels=%s %s\nsdists=%s\nprefix=%s\n' \
        "$ENV_VERSION" "$SUITE" "${DEBS[*]}" "${BINARY_WHEELS[*]}" "${PURE_WHEELS[*]} ${BUILD_WHEELS[*]}" \
        "${SDISTS[*]}" "$CACHE"
}

# Run the private interpreter with nothing from the caller's Python leaking in
# (PY27_PATH, when set, becomes its PYTHONPATH).
py27() {
    env -u PYTHONPATH -u PYTHONSTARTUP -u VIRTUAL_ENV PYTHONNOUSERSITE=1 \
        ${PY27_PATH:+PYTHONPATH="$PY27_PATH"} \
        PYTHONHOME="$PYHOME" LD_LIBRARY_PATH="$PYLIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        "$PY" "$@"
}

write_launcher() {
    cat >"$LAUNCHER.tmp" <<EOF
#!/bin/sh
# Written by conformance/wstest-env.sh: wstest from the private Python 2.7
# environment in $CACHE. zope.interface is a namespace package whose .pth file
# is only honoured in a site directory, hence addsitedir rather than PYTHONPATH.
unset PYTHONPATH PYTHONSTARTUP VIRTUAL_ENV
PYTHONHOME='$PYHOME'
PYTHONNOUSERSITE=1
LD_LIBRARY_PATH='$PYLIB'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PYTHONHOME PYTHONNOUSERSITE LD_LIBRARY_PATH
exec '$PY' -c "import site; site.addsitedir('$ENVDIR'); from autobahntestsuite.wstest import run; run()" "\$@"
EOF
    chmod +x "$LAUNCHER.tmp"
    mv -f "$LAUNCHER.tmp" "$LAUNCHER"
}

if [[ "$MODE" == auto ]]; then
    log "no wstest on PATH and no working Docker engine: using the private Python 2.7 environment"
fi

# Fast path: already built for exactly these pins.
if [[ -f "$STAMP" && -x "$LAUNCHER" ]] && [[ "$(cat "$STAMP")" == "$(stamp_text)" ]]; then
    log "cached environment is up to date ($CACHE)"
    printf '%s\n' "$LAUNCHER"
    exit 0
fi

# One builder at a time; a second caller waits and then takes the fast path.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
    log "another build holds $CACHE/.lock; waiting for it"
    flock 9
fi
if [[ -f "$STAMP" && -x "$LAUNCHER" ]] && [[ "$(cat "$STAMP")" == "$(stamp_text)" ]]; then
    log "environment was built meanwhile ($CACHE)"
    printf '%s\n' "$LAUNCHER"
    exit 0
fi

log "building the private wstest environment in $CACHE"
rm -f "$STAMP"
for tool in apt-get dpkg python3; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' is needed to build the wstest environment and is not on PATH"
done
[[ "$(uname -m)" == x86_64 ]] || die "the private environment is only set up for x86_64 (this is $(uname -m)); install wstest or use Docker"
python3 -m pip --version >/dev/null 2>&1 || die "python3 has no pip (python3 -m pip); it is needed to download the Python 2.7 packages"

# Which Debian archive to fetch bullseye from: the same one the system uses
# (its first source that is not a security archive), unless overridden.
debian_mirror() {
    python3 - <<'PYEOF'
import glob, re
uris = []
def add(uri, suites):
    if "security" in uri or any(s.endswith("-security") for s in suites):
        return
    uris.append(uri.rstrip("/"))
# one-line format
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb":
            add(line[1], [line[2]])
# deb822 format
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    try:
        text = open(path).read()
    except OSError:
        continue
    for stanza in re.split(r"\n\s*\n", text):
        fields = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.split()
        if "deb" not in fields.get("types", []) or fields.get("enabled", ["yes"])[0] == "no":
            continue
        for uri in fields.get("uris", []):
            add(uri, fields.get("suites", []))
debian = [u for u in uris if re.search(r"/debian$", u)]
print((debian or uris or [""])[0])
PYEOF
}

# 3a. Python 2.7 from Debian bullseye ------------------------------------------
if [[ -x "$PY" && -f "$PREFIX/usr/include/python2.7/Python.h" ]] &&
    py27 -c 'import ssl, ctypes, zlib, hashlib, json' >/dev/null 2>&1; then
    log "Python 2.7 already unpacked in $PREFIX"
else
    mirror="${TETHER_DEBIAN_MIRROR:-$(debian_mirror)}"
    [[ -n "$mirror" ]] || die "cannot find a Debian archive in /etc/apt; set TETHER_DEBIAN_MIRROR to a Debian mirror URI"
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [[ -r "$keyring" ]] || die "$keyring is missing (package debian-archive-keyring); it is needed to verify the $SUITE archive"
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$DEBDIR"
    printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$SUITE" >"$APTDIR/sources.list"
    apt_opts=(
        -o "Dir::Etc::sourcelist=$APTDIR/sources.list"
        -o "Dir::Etc::sourceparts=-"
        -o "Dir::State::Lists=$APTDIR/lists"
        -o "Dir::Cache=$APTDIR/cache"
        -o "Acquire::Languages=none"
        -o "APT::Get::List-Cleanup=false"
        -o "Debug::NoLocking=true"
    )
    # As root, apt hands downloads to the _apt user, who cannot write into a
    # cache under root's home; keep them as the calling user instead.
    if [[ "$(id -u)" == 0 ]]; then
        apt_opts+=(-o "APT::Sandbox::User=root")
    fi
    log "apt-get update: $SUITE main from $mirror (private lists in $APTDIR)"
    apt-get -q "${apt_opts[@]}" update >&2 ||
        die "apt-get update of the private $SUITE source list failed (network? mirror $mirror)"
    log "apt-get download: ${DEBS[*]}"
    rm -f "$DEBDIR"/*.deb
    (cd "$DEBDIR" && apt-get -q "${apt_opts[@]}" download "${DEBS[@]}" >&2) ||
        die "apt-get download of ${DEBS[*]} from $SUITE failed"
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    for deb in "$DEBDIR"/*.deb; do
        log "dpkg -x $(basename "$deb")"
        dpkg -x "$deb" "$PREFIX" || die "dpkg -x $deb failed"
    done
    [[ -x "$PY" ]] || die "no $PY after unpacking the .deb files"
    if ! err="$(py27 -c 'import ssl, ctypes, zlib, hashlib, json' 2>&1)"; then
        die "the unpacked Python 2.7 does not work: $err"
    fi
fi
log "$(py27 -c 'import sys, ssl; print("Python %s, %s" % (sys.version.split()[0], ssl.OPENSSL_VERSION))')"

# 3b. the Python packages ----------------------------------------------------
have_dist() {
    # True when every pinned distribution NAME==VERSION has a file in $DIST
    # (names compared as pip normalises them: case, '.' and '-' ignored).
    local listing spec name ver
    listing="$(ls "$DIST" 2>/dev/null | tr 'A-Z.-' 'a-z__')"
    for spec in "$@"; do
        name="$(printf '%s' "${spec%%==*}" | tr 'A-Z.-' 'a-z__')"
        ver="$(printf '%s' "${spec#*==}" | tr '.-' '__')"
        grep -q "^${name}_${ver}_" <<<"$listing" || return 1
    done
}
mkdir -p "$DIST"
pip_dl=(python3 -m pip download --disable-pip-version-check --progress-bar off --no-deps --dest "$DIST")
if have_dist "${BINARY_WHEELS[@]}" "${PURE_WHEELS[@]}" "${BUILD_WHEELS[@]}" "${SDISTS[@]}"; then
    log "all pinned packages already downloaded in $DIST"
else
    log "pip download (python3's pip): wheels for CPython 2.7 (cp27mu, manylinux1_x86_64)"
    "${pip_dl[@]}" --only-binary :all: --platform manylinux1_x86_64 --python-version 27 \
        --implementation cp --abi cp27mu "${BINARY_WHEELS[@]}" "${PURE_WHEELS[@]}" "${BUILD_WHEELS[@]}" >&2 ||
        die "pip download of the Python 2.7 wheels failed"
    log "pip download (python3's pip): source archives ${SDISTS[*]}"
    "${pip_dl[@]}" --no-binary :all: "${SDISTS[@]}" >&2 ||
        die "pip download of the source archives failed"
    have_dist "${BINARY_WHEELS[@]}" "${PURE_WHEELS[@]}" "${BUILD_WHEELS[@]}" "${SDISTS[@]}" ||
        die "pip download finished but some pinned package is missing from $DIST"
fi

# 3c. install with pip 20.3.4 run from its wheel ------------------------------
log "installing into $ENVDIR with pip 20.3.4 under Python 2.7"
rm -rf "$ENVDIR"
mkdir -p "$ENVDIR"
pins=("${BINARY_WHEELS[@]}" "${PURE_WHEELS[@]:1}" "${SDISTS[@]}")
# The caller's PIP_* settings (extra find-links, an index) are not wanted here.
pip27() {
    (
        unset $(compgen -e | grep '^PIP_') || true
        export PIP_CONFIG_FILE=/dev/null
        py27 "$DIST/$PIP_WHEEL/pip" "$@" --disable-pip-version-check --no-cache-dir --no-index \
            --find-links "$DIST" --no-deps --no-warn-script-location >&2
    )
}
# The source archives are built by their setup.py, which needs setuptools (and
# wheel) importable; the bare interpreter has neither. pip's isolated PEP 517
# build cannot be used, as it runs a helper script by path from inside pip,
# here a zip file. So install those two into a separate directory first and
# put it on PYTHONPATH for the real install only.
rm -rf "$CACHE/buildtools"
pip27 install --target "$CACHE/buildtools" "${BUILD_WHEELS[@]}" ||
    die "pip install of ${BUILD_WHEELS[*]} (build tools) failed"
# --no-deps: the set above is complete and pinned; pip's resolver is not asked.
# Debian's pyconfig.h includes <x86_64-linux-gnu/python2.7/pyconfig.h>,
# which is in the unpacked prefix, not the system's include path.
command -v gcc >/dev/null 2>&1 || die "gcc is needed to build wsaccel for wstest (apt-get install gcc)"
CFLAGS="-I$PREFIX/usr/include/python2.7 -I$PREFIX/usr/include/x86_64-linux-gnu/python2.7 -I$PREFIX/usr/include" CC=gcc LDSHARED="gcc -pthread -shared" \
    PY27_PATH="$CACHE/buildtools" pip27 install --target "$ENVDIR" "${pins[@]}" ||
    die "pip install into $ENVDIR failed (see pip's output above)"

write_launcher
log "checking: wsaccel loads"
out="$(env -u PYTHONPATH PYTHONHOME="$PYHOME" PYTHONNOUSERSITE=1 LD_LIBRARY_PATH="$PYLIB" "$PY" -c \
    "import site; site.addsitedir('$ENVDIR'); import wsaccel.xormask, wsaccel.utf8validator; \
from autobahn.websocket import xormasker, utf8validator; print('%s %s' % (xormasker.createXorMasker.__module__, utf8validator.Utf8Validator.__module__))" 2>&1)" ||
    die "wsaccel does not load under Python 2.7: $out"
[[ "$out" == "wsaccel.xormask wsaccel.utf8validator" ]] || die "autobahn does not use wsaccel: $out"
log "checking: wstest --help"
if ! out="$("$LAUNCHER" --help 2>&1)"; then
    die "the installed wstest does not start: $out"
fi
stamp_text >"$STAMP"
log "done: $LAUNCHER"
printf '%s\n' "$LAUNCHER"
