#!/usr/bin/env bash
# Makes the container image of tether as an OCI image layout (a directory
# that skopeo, podman, umoci and registries read), from the release
# archive, without a container engine and without pulling a base image:
#
#   bash packaging/oci-image.sh --archive dist/tether-VERSION-x86_64-unknown-linux-gnu.tar.gz --out DIR
#   skopeo copy oci:DIR:VERSION docker-daemon:tether:VERSION    (or podman load, or a registry)
#
# One layer: the binary and the configuration from the archive, and the
# C library it links (glibc and libgcc from Debian's libc6 and libgcc-s1)
# and busybox (busybox-static, for the health check's HTTP request), the
# packages as `apt-get download` gives them on this machine (their versions
# are in the image's labels). It is the image packaging/Containerfile
# describes: user 10001 (tether), /var/lib/tether a volume owned by it,
# port 8080, a HEALTHCHECK on /healthz, STOPSIGNAL SIGTERM.
#
# Reproducible: from the same archive and the same packages the bytes are
# the same (entries sorted, owners, modes and mtimes set here, mtimes and
# `created` from SOURCE_DATE_EPOCH, the last commit's time unless set,
# gzip without name or time, JSON with sorted keys).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
archive=
out=
while [ $# -gt 0 ]; do
    case $1 in
        --archive) archive=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "oci-image.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$archive" ] && [ -n "$out" ] || { echo "usage: oci-image.sh --archive FILE --out DIR" >&2; exit 2; }
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}
export SOURCE_DATE_EPOCH

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The Debian packages, downloaded once per version into a cache.
cache="${TETHER_CACHE_DIR:-$HOME/.cache/tether}/oci-debs"
mkdir -p "$cache"
packages="libc6 libgcc-s1 busybox-static"
debs=()
for package in $packages; do
    version=$(apt-cache policy "$package" | sed -n 's/^ *Candidate: //p')
    if [ -z "$version" ] || [ "$version" = "(none)" ]; then
        apt-get update -qq
        version=$(apt-cache policy "$package" | sed -n 's/^ *Candidate: //p')
    fi
    deb=$(ls "$cache/${package}_${version//:/%3a}_"*.deb 2>/dev/null | head -1 || true)
    if [ -z "$deb" ]; then
        (cd "$cache" && apt-get download -qq -o APT::Sandbox::User=root "$package=$version")
        deb=$(ls "$cache/${package}_${version//:/%3a}_"*.deb | head -1)
    fi
    debs+=("$deb")
done

rootfs=$work/rootfs
mkdir -p "$rootfs"
for deb in "${debs[@]}"; do
    dpkg-deb -x "$deb" "$rootfs"
done
# Documentation but for the licences.
find "$rootfs/usr/share" -mindepth 1 -maxdepth 1 ! -name doc -exec rm -rf {} +
find "$rootfs/usr/share/doc" -type f ! -name copyright -delete
mkdir -p "$work/archive"
tar -xzf "$archive" -C "$work/archive"
from=$(echo "$work"/archive/tether-*)
version=$(basename "$from" | sed -E 's/^tether-([^-]+)-.*/\1/')
install -D -m 0755 "$from/tether" "$rootfs/usr/bin/tether"
install -D -m 0644 "$from/tether.toml" "$rootfs/etc/tether/tether.toml"
for f in README.md CHANGELOG.md LICENSE-APACHE LICENSE-MIT; do
    install -D -m 0644 "$from/$f" "$rootfs/usr/share/doc/tether/$f"
done
mkdir -p "$rootfs/var/lib/tether" "$rootfs/tmp" "$rootfs/bin"
[ -e "$rootfs/bin/sh" ] || ln -s busybox "$rootfs/bin/sh"
printf 'root:x:0:0:root:/root:/sbin/nologin\ntether:x:10001:10001:tether:/var/lib/tether:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\ntether:x:10001:\n' >"$rootfs/etc/group"

versions=$(for deb in "${debs[@]}"; do dpkg-deb --show --showformat='${Package}=${Version}\n' "$deb"; done | paste -sd' ')
mkdir -p "$out"
python3 - "$rootfs" "$out" "$version" "$versions" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile, time

rootfs, out, version, base = sys.argv[1:5]
epoch = int(os.environ["SOURCE_DATE_EPOCH"])
owned = {"var/lib/tether": (10001, 0o750)}
modes = {"tmp": 0o1777}

def entries():
    for top, dirs, files in os.walk(rootfs):
        dirs.sort()
        for name in sorted(dirs + files):
            yield os.path.relpath(os.path.join(top, name), rootfs)

layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for path in sorted(entries()):
        info = tar.gettarinfo(os.path.join(rootfs, path), arcname=path)
        info.mtime = epoch
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        if path in owned:
            info.uid = info.gid = owned[path][0]
            info.mode = owned[path][1]
        elif path in modes:
            info.mode = modes[path]
        elif info.isdir():
            info.mode = 0o755
        elif info.isfile():
            info.mode = 0o755 if info.mode & 0o111 else 0o644
        if info.isfile():
            with open(os.path.join(rootfs, path), "rb") as f:
                tar.addfile(info, f)
        else:
            tar.addfile(info)
tar_bytes = layer.getvalue()
gz = io.BytesIO()
with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=6) as g:
    g.write(tar_bytes)
layer_gz = gz.getvalue()

def put(data):
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}

def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()

created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
second = 1_000_000_000
config = {
    "architecture": "amd64",
    "os": "linux",
    "created": created,
    "config": {
        "User": "10001:10001",
        "Env": [
            "PATH=/usr/bin:/bin",
            "TETHER_ADDR=0.0.0.0",
            "TETHER_PORT=8080",
            "TETHER_DATA_DIR=/var/lib/tether",
        ],
        "Entrypoint": ["/usr/bin/tether"],
        "Cmd": ["serve", "--config", "/etc/tether/tether.toml"],
        "WorkingDir": "/var/lib/tether",
        "ExposedPorts": {"8080/tcp": {}},
        "Volumes": {"/var/lib/tether": {}},
        "StopSignal": "SIGTERM",
        # Docker's extension (OCI has none): engines that read the Docker
        # fields run it; the command is the Containerfile's.
        "Healthcheck": {
            "Test": ["CMD", "/bin/busybox", "sh", "-c",
                     "/bin/busybox wget -q -O - http://127.0.0.1:${TETHER_PORT}/healthz"],
            "Interval": 15 * second,
            "Timeout": 3 * second,
            "StartPeriod": 5 * second,
            "Retries": 3,
        },
        "Labels": {
            "org.opencontainers.image.title": "tether",
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.source": "https://github.com/tether-rs/tether",
            "org.opencontainers.image.licenses": "MIT OR Apache-2.0",
            # The Debian packages the C library and busybox come from.
            "io.github.tether-rs.debian-packages": base,
        },
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar_bytes).hexdigest()]},
    "history": [{"created": created, "created_by": "packaging/oci-image.sh"}],
}
config_ref = put(canonical(config))
layer_ref = put(layer_gz)
manifest = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_ref},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer_ref}],
}
manifest_ref = put(canonical(manifest))
index = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        **manifest_ref,
        "platform": {"architecture": "amd64", "os": "linux"},
        "annotations": {"org.opencontainers.image.ref.name": version},
    }],
}
with open(os.path.join(out, "index.json"), "wb") as f:
    f.write(canonical(index))
with open(os.path.join(out, "oci-layout"), "wb") as f:
    f.write(canonical({"imageLayoutVersion": "1.0.0"}))
print(f"image: {out} (oci:{out}:{version}), manifest {manifest_ref['digest']}, layer {len(layer_gz)} bytes")
PY
