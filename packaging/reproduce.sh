#!/usr/bin/env bash
# Builds the binary a second time from a fresh clone of the current commit,
# in another directory with another target directory, and compares it, and
# the release archives made from each, with this checkout's build. Run by
# hand (it is a whole release build: too long for .ci/run, which compares
# two archives of one binary instead):
#
#   bash packaging/reproduce.sh
#
# Prints "reproduce: same" or the differing sizes and exits 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    echo "reproduce.sh: commit first (the clone builds HEAD)" >&2
    exit 2
fi
here=$(bash packaging/build.sh | tail -1)
other=$(mktemp -d "${TMPDIR:-/tmp}/tether-reproduce.XXXXXX")
trap 'rm -rf "$other"' EXIT
git clone --quiet --no-hardlinks "$root" "$other/src"
there=$(cd "$other/src" && CARGO_TARGET_DIR="$other/target" bash packaging/build.sh | tail -1)
# Both archives with the clone's commit time, should HEAD move meanwhile.
SOURCE_DATE_EPOCH=$(git -C "$other/src" log -1 --format=%ct)
export SOURCE_DATE_EPOCH
bash packaging/release.sh --bin "$here" --out "$other/dist-here" >/dev/null
(cd "$other/src" && bash packaging/release.sh --bin "$there" --out "$other/dist-there") >/dev/null
if cmp "$here" "$there" && echo "reproduce: the binaries are the same" && cmp "$other"/dist-here/*.tar.gz "$other"/dist-there/*.tar.gz; then
    echo "reproduce: same ($(sha256sum "$here" | cut -c1-16)..., built in $root and $other/src)"
else
    ls -l "$here" "$there"
    echo "reproduce: the builds differ"
    exit 1
fi
