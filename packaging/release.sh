#!/usr/bin/env bash
# Builds the release archive of the `tether` binary and its checksums:
#
#   OUT/tether-VERSION-x86_64-unknown-linux-gnu.tar.gz
#       tether-VERSION-x86_64-unknown-linux-gnu/
#           tether  README.md  CHANGELOG.md  LICENSE-APACHE  LICENSE-MIT
#           tether.toml (the example configuration)  tether.service (the systemd unit)
#   OUT/SHA256SUMS
#
#   bash packaging/release.sh [--bin FILE] [--out DIR]
#
# --bin takes a binary already built by packaging/build.sh (as .ci/run
# does, so that it is not built twice); without it, packaging/build.sh
# builds one. OUT defaults to the target directory's `dist`.
#
# The archive is reproducible: its bytes depend on the binary and the
# files it holds, not on when, where or by whom it was made. Every entry's
# mtime is SOURCE_DATE_EPOCH (the last commit's time unless it is set),
# entries are sorted by name, owned by 0:0 with no names, their modes set
# here (not from the umask), and gzip leaves out the name and time of its
# input (-n). The binary itself is built with the machine's paths
# remapped (packaging/build.sh); `packaging/reproduce.sh` builds it twice
# in two places and compares.
#
# It also states the oldest glibc the binary runs on: the highest GLIBC_
# version its dynamic symbols need (objdump -T), and fails if that is
# above MAX_GLIBC (2.36, Debian 12's, by default: the code layout's packed
# relocations need 2.36 anyway).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bin=
out=
while [ $# -gt 0 ]; do
    case $1 in
        --bin) bin=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
target=${CARGO_TARGET_DIR:-$root/target}
out=${out:-$target/dist}
if [ -z "$bin" ]; then
    bin=$(bash packaging/build.sh | tail -1)
fi
MAX_GLIBC=${MAX_GLIBC:-2.36}
triple=x86_64-unknown-linux-gnu

version=$("$bin" --version | awk '{print $2}')
case $version in
    [0-9]*.[0-9]*.[0-9]*) ;;
    *) echo "release.sh: '$bin --version' gave no version" >&2; exit 1 ;;
esac
if ! readelf -h "$bin" | grep -q 'Machine: *Advanced Micro Devices X86-64'; then
    echo "release.sh: $bin is not an x86-64 binary" >&2
    exit 1
fi

# The oldest glibc it runs on: the highest GLIBC_x.y version its dynamic
# symbols need, and 2.36 if it needs GLIBC_ABI_DT_RELR (packed relative
# relocations, which only glibc 2.36 and later read).
glibc=$(objdump -T "$bin" | grep -oE 'GLIBC_[0-9]+(\.[0-9]+)+' | sed 's/GLIBC_//' | sort -V | tail -1 || true)
if [ -z "$glibc" ]; then
    echo "release.sh: no GLIBC_ versions in $bin's dynamic symbols" >&2
    exit 1
fi
why="its highest GLIBC_ symbol version"
if readelf -V "$bin" | grep -q 'GLIBC_ABI_DT_RELR'; then
    if [ "$(printf '%s\n%s\n' "$glibc" 2.36 | sort -V | tail -1)" = 2.36 ] && [ "$glibc" != 2.36 ]; then
        why="GLIBC_ABI_DT_RELR, packed relocations; its symbols need $glibc"
        glibc=2.36
    fi
fi
echo "glibc: the binary needs glibc $glibc or later ($why)"
if [ "$(printf '%s\n%s\n' "$glibc" "$MAX_GLIBC" | sort -V | tail -1)" != "$MAX_GLIBC" ]; then
    echo "release.sh: it needs glibc $glibc, above $MAX_GLIBC" >&2
    exit 1
fi

SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
export SOURCE_DATE_EPOCH
name=tether-$version-$triple
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
install -m 0755 "$bin" "$stage/$name/tether"
for f in README.md CHANGELOG.md LICENSE-APACHE LICENSE-MIT packaging/tether.toml packaging/tether.service; do
    install -m 0644 "$f" "$stage/$name/$(basename "$f")"
done
chmod 0755 "$stage/$name"

mkdir -p "$out"
tar --create --format=gnu --sort=name --mtime="@$SOURCE_DATE_EPOCH" \
    --owner=0 --group=0 --numeric-owner -C "$stage" "$name" |
    gzip -n >"$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" >SHA256SUMS)
echo "release: $out/$name.tar.gz"
cat "$out/SHA256SUMS"
