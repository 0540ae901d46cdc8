#!/usr/bin/env bash
# Builds the Debian package of the binary packaging/build.sh built (it
# does not build it again: cargo deb --no-build takes target/release/tether
# of the target directory, CARGO_TARGET_DIR included), and prints the
# package's path on the last line of stdout.
#
#   bash packaging/build.sh && bash packaging/deb.sh [OUT_DIR]
#
# cargo-deb (cargo install cargo-deb --locked) reads
# [package.metadata.deb] in crates/cli/Cargo.toml: /usr/bin/tether,
# /etc/tether/tether.toml as a conffile, the systemd unit
# packaging/tether.service (enabled and started on install where systemd
# runs) and packaging/debian/postrm (a purge removes the state directory).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
out=${1:-$target/debian}
if [ ! -x "$target/release/tether" ]; then
    echo "deb.sh: no $target/release/tether: run packaging/build.sh first" >&2
    exit 1
fi
mkdir -p "$out"
# --no-strip: the binary is packaged as built and tested (its symbols are
# what crates/cli/layout/check.sh reads; line tables make a panic's
# backtrace name files and lines).
cargo deb -p tether --no-build --no-strip --locked -o "$out" >&2
ls -t "$out"/tether_*.deb | head -1
