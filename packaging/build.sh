#!/usr/bin/env bash
# Builds the `tether` binary as it is packaged (the release archive, the
# Debian package, the container image) and as .ci/run tests it, and prints
# its path on the last line of stdout:
#
#   - TETHER_CODE_LAYOUT=on: the code layout of crates/cli/build.rs (the
#     hot functions first, packed relative relocations; the latter makes the
#     binary need glibc 2.36 or later);
#   - --locked: the versions of Cargo.lock;
#   - the paths of this machine remapped (--remap-path-prefix): the checkout
#     to /tether, the cargo home (the registry's sources) to /cargo and the
#     target directory to /target, so that the binary names no directory of
#     the machine that built it, and two builds of one commit in different
#     places can give the same bytes; the C code of the dependencies
#     (ring, aws-lc) the same way, through CFLAGS (-ffile-prefix-map, which
#     covers debug info and __FILE__).
#
# The flags go through CARGO_BUILD_RUSTFLAGS, which cargo joins to
# .cargo/config.toml's (the v0 mangling the layout's list is written in);
# RUSTFLAGS would replace them. Arguments are passed on to cargo build.
#
#   bash packaging/build.sh [--features ...]
#   eval "$(bash packaging/build.sh --env)"   (only the environment, for
#       other cargo commands that must build with the same flags: .ci/run
#       sets it for all of its builds, so that they share one set of
#       compiled dependencies)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$target"
target=$(cd "$target" && pwd)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export TETHER_CODE_LAYOUT=on
export CARGO_BUILD_RUSTFLAGS="--remap-path-prefix=$root=/tether --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$target=/target"
# Set whole, not added to: --env is evaluated again by scripts that run
# under it, and every build must see the same flags to reuse the others.
export CFLAGS="-ffile-prefix-map=$root=/tether -ffile-prefix-map=$cargo_home=/cargo -ffile-prefix-map=$target=/target"
if [ "${1:-}" = --env ]; then
    printf 'export TETHER_CODE_LAYOUT=on\nexport CARGO_BUILD_RUSTFLAGS=%q\nexport CFLAGS=%q\n' "$CARGO_BUILD_RUSTFLAGS" "$CFLAGS"
    exit 0
fi
cargo build --release --locked -p tether "$@" >&2
echo "$target/release/tether"
