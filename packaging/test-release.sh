#!/usr/bin/env bash
# The release archive (packaging/release.sh) from the binary .ci/run
# built: made twice, in different conditions, and compared byte for byte;
# its checksums, entries, owners, times and contents; the glibc it needs.
# Prints "release: N passed, M failed"; the archive stays in OUT_DIR (for
# the image step).
#
#   TETHER_BIN=... bash packaging/test-release.sh OUT_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$1
# shellcheck source=tally.sh
source "$root/packaging/tally.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

bash packaging/release.sh --bin "$TETHER_BIN" --out "$out" | tee "$work/one.log"
# Again: another umask, time zone, locale, directory, and a copy of the
# binary with another mtime.
cp "$TETHER_BIN" "$work/tether"
touch -d '2001-02-03 04:05:06' "$work/tether"
(cd /tmp && umask 077 && TZ=America/Lima LC_ALL=C bash "$root/packaging/release.sh" --bin "$work/tether" --out "$work/two") >/dev/null
archive=$(ls "$out"/tether-*-x86_64-unknown-linux-gnu.tar.gz)
name=$(basename "$archive" .tar.gz)
check "made twice, the archive is the same, byte for byte" cmp "$archive" "$work/two/$name.tar.gz"
check "SHA256SUMS checks" sh -c "cd '$out' && sha256sum --quiet -c SHA256SUMS"
version=$("$TETHER_BIN" --version | awk '{print $2}')
check "its name carries the binary's version ($version)" test "$name" = "tether-$version-x86_64-unknown-linux-gnu"
epoch=$(git log -1 --format=%ct)
tar --numeric-owner -tvzf "$archive" >"$work/listing"
check "every entry is owned by 0/0" sh -c "! awk '\$2 != \"0/0\"' '$work/listing' | grep -q ."
check "every entry's mtime is the commit's" \
    sh -c "tar --full-time --numeric-owner -tvzf '$archive' | awk '{print \$4\" \"\$5}' | sort -u | grep -qx \"\$(date -u -d @$epoch '+%Y-%m-%d %H:%M:%S')\" && [ \$(tar --full-time -tvzf '$archive' | awk '{print \$4\" \"\$5}' | sort -u | wc -l) -eq 1 ]"
tar -tzf "$archive" >"$work/names"
check "entries sorted by name" sh -c "LC_ALL=C sort -c '$work/names'"
expected="$name/ $name/CHANGELOG.md $name/LICENSE-APACHE $name/LICENSE-MIT $name/README.md $name/tether $name/tether.service $name/tether.toml"
check "it holds the binary, README, licences, changelog, config and unit" test "$(paste -sd' ' "$work/names")" = "$expected"
check "gzip header: no name, no time" sh -c "[ \"\$(od -An -tx1 -j3 -N5 '$archive' | tr -d ' ')\" = 0000000000 ]"
mkdir "$work/x"
tar -xzf "$archive" -C "$work/x"
check "its binary is the one tested" cmp "$work/x/$name/tether" "$TETHER_BIN"
check "its unit and config are the packaging files" \
    sh -c "cmp '$work/x/$name/tether.service' packaging/tether.service && cmp '$work/x/$name/tether.toml' packaging/tether.toml"
check "its binary runs: $("$work/x/$name/tether" --version)" "$work/x/$name/tether" --version
# packaging/build.sh maps the checkout, the cargo home and the target
# directory to /tether, /cargo and /target, in Rust (--remap-path-prefix)
# and in the dependencies' C (-ffile-prefix-map).
target_dir=$(cd "${CARGO_TARGET_DIR:-$root/target}" && pwd)
check "its binary names no directory of the machine that built it" \
    sh -c '! grep -aqF -e "$1/" -e "$2/" -e "$3/" "$4"' sh "$root" "${CARGO_HOME:-$HOME/.cargo}" "$target_dir" "$TETHER_BIN"
glibc=$(sed -n 's/^glibc: the binary needs glibc \([0-9.]*\) .*/\1/p' "$work/one.log")
check "release.sh states the oldest glibc it runs on (${glibc:-none})" test -n "$glibc"
check "release.sh refuses a binary that needs a newer glibc than it allows (MAX_GLIBC=2.17)" \
    sh -c "! MAX_GLIBC=2.17 bash packaging/release.sh --bin '$TETHER_BIN' --out '$work/old' >/dev/null 2>&1"
finish release
