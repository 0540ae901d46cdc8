#!/usr/bin/env bash
# The OCI image of packaging/oci-image.sh, made twice from one release
# archive and compared, read back with skopeo, unpacked with umoci, and
# its entrypoint run in the unpacked root file system (chroot, as the
# image's user) until its own health check passes; then stopped with its
# stop signal. Run by .ci/run as root; prints "oci: N passed, M failed".
#
#   sudo bash packaging/test-oci.sh ARCHIVE
#
# No container engine runs here (buildah cannot pull a base image without
# a registry, nor run a container in this sandbox), so the chroot stands
# in for one: same files, user, environment, entrypoint and command; no
# namespaces or cgroups of its own.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
archive=$1
# shellcheck source=tally.sh
source "$root/packaging/tally.sh"

if ! command -v skopeo >/dev/null || ! command -v umoci >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo umoci >/dev/null
fi
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill -9 "$server" 2>/dev/null; rm -rf "$work"' EXIT

bash packaging/oci-image.sh --archive "$archive" --out "$work/one"
(umask 077 && TZ=Pacific/Auckland bash packaging/oci-image.sh --archive "$archive" --out "$work/two") >/dev/null
check "the image made twice is the same, byte for byte" diff -r "$work/one" "$work/two"
version=$(basename "$archive" | sed -E 's#^tether-([^-]+)-.*#\1#')
image="oci:$work/one:$version"
skopeo inspect "$image" >"$work/inspect.json"
skopeo inspect --raw --config "$image" >"$work/config.json"
python3 - "$work/inspect.json" "$work/config.json" "$version" >"$work/checks" <<'PY'
import json, sys
inspect, config = (json.load(open(p)) for p in sys.argv[1:3])
c = config["config"]
checks = [
    ("skopeo reads it: amd64, linux, one layer", inspect["Architecture"] == "amd64" and inspect["Os"] == "linux" and len(inspect["Layers"]) == 1),
    ("its version label is the binary's", c["Labels"]["org.opencontainers.image.version"] == sys.argv[3]),
    ("a non-root user (10001)", c["User"] == "10001:10001"),
    ("/var/lib/tether is a volume", "/var/lib/tether" in c["Volumes"]),
    ("port 8080 exposed", "8080/tcp" in c["ExposedPorts"]),
    ("STOPSIGNAL SIGTERM", c["StopSignal"] == "SIGTERM"),
    ("a HEALTHCHECK on /healthz", "/healthz" in " ".join(c["Healthcheck"]["Test"])),
]
for what, good in checks:
    print(("ok   " if good else "FAIL ") + what)
print("ENTRY " + json.dumps(c["Entrypoint"] + c["Cmd"]))
print("ENV " + " ".join(c["Env"]))
print("HEALTH " + json.dumps(c["Healthcheck"]["Test"][1:]))
PY
while read -r mark what; do
    case $mark in
        ok) ok "$what" ;;
        FAIL) bad "$what" ;;
    esac
done < <(grep -E '^(ok|FAIL) ' "$work/checks")

umoci unpack --image "$work/one:$version" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs
check "umoci unpacks it; /var/lib/tether belongs to 10001" test "$(stat -c %u "$rootfs/var/lib/tether")" = 10001
check "the binary runs on the image's own C library" chroot "$rootfs" /usr/bin/tether --version

# The entrypoint and command with the image's environment, as its user;
# a free port in place of 8080, since the chroot shares this machine's
# network.
chroot=$(command -v chroot)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
read -r -a env <<<"$(sed -n 's/^ENV //p' "$work/checks")"
mapfile -t argv < <(sed -n 's/^ENTRY //p' "$work/checks" | python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))')
mapfile -t health < <(sed -n 's/^HEALTH //p' "$work/checks" | python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))')
env -i "${env[@]}" TETHER_PORT="$port" "$chroot" --userspec=10001:10001 "$rootfs" \
    /bin/busybox sh -c 'cd /var/lib/tether && exec "$@"' sh "${argv[@]}" >"$work/server.log" 2>&1 &
server=$!
healthy=
for _ in $(seq 100); do
    if env -i "${env[@]}" TETHER_PORT="$port" "$chroot" --userspec=10001:10001 "$rootfs" "${health[@]}" 2>/dev/null; then
        healthy=1
        break
    fi
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
check "the entrypoint serves, and the image's health check passes" test -n "$healthy"
check "its event log is in the volume, the user's" \
    sh -c "test -n \"\$(find '$rootfs/var/lib/tether' -mindepth 1 -user 10001 | head -1)\""
kill -TERM "$server" 2>/dev/null || true
code=0
wait "$server" || code=$?
server=
check "its stop signal stops it cleanly (status $code)" test "$code" -eq 0
[ "$failed" -eq 0 ] || cat "$work/server.log"
finish oci
