#!/usr/bin/env bash
# The crates as crates.io would take them, and `cargo install`. Run by
# .ci/run after the release build; prints "crates: N passed, M failed".
#
#   TETHER_BIN=... bash packaging/test-crates.sh
#
# - every workspace crate: publishable ones carry the metadata crates.io
#   and docs.rs show (description, keywords, categories, readme,
#   documentation, license, repository, [package.metadata.docs.rs]) and a
#   README with a Rust example that runs: included as doc tests by the
#   crate (`cargo test` runs them), or, for tether-auth, its
#   examples/readme.rs, run here; internal crates are `publish = false`;
# - the MSRV: every crate inherits the workspace's rust-version, no
#   dependency in Cargo.lock declares a newer one, and clippy's
#   incompatible_msrv lint (std APIs newer than the MSRV) is on (.ci/run's
#   clippy step denies warnings). Only the stable toolchain is installed
#   here, so the MSRV compiler itself is not run;
# - `cargo package` of every publishable crate, in dependency order
#   (cargo puts the workspace's unpublished crates in a local overlay).
#   Verification (a build of each crate from its .crate) is done for the
#   crates without dependencies only: verifying all of them builds the
#   whole workspace again (some 10 minutes on two cores), past CI's
#   budget. The rest is packaged with --no-verify, and every .crate is
#   checked to hold its README and licence files;
# - `cargo install --path crates/cli --locked` into a temporary root,
#   with the target directory and flags of packaging/build.sh, so that
#   it reuses the release build instead of making another.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=tally.sh
source "$root/packaging/tally.sh"
target=${CARGO_TARGET_DIR:-$root/target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo metadata --format-version 1 --locked >"$work/metadata.json"
python3 - "$work/metadata.json" "$root" >"$work/meta.log" <<'PY'
import json, os, re, sys
meta = json.load(open(sys.argv[1]))
root = sys.argv[2]
members = set(meta["workspace_members"])
workspace = [p for p in meta["packages"] if p["id"] in members]
msrv = None
with open(os.path.join(root, "Cargo.toml")) as f:
    msrv = re.search(r'^rust-version = "([^"]+)"', f.read(), re.M).group(1)
internal = {"tether-testkit", "tether-benches"}
def version(v):
    parts = [int(x) for x in v.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))
def say(good, what):
    print(("ok   " if good else "FAIL ") + what)
publishable = []
for p in sorted(workspace, key=lambda p: p["name"]):
    name = p["name"]
    say(p["rust_version"] == msrv, f"{name}: rust-version {p['rust_version']} (the workspace's {msrv})")
    if name in internal:
        say(p["publish"] == [], f"{name}: publish = false (internal)")
        continue
    publishable.append(name)
    missing = [k for k in ("description", "keywords", "categories", "readme", "documentation", "license", "repository") if not p.get(k)]
    say(not missing, f"{name}: crates.io metadata" + (f" (missing {missing})" if missing else ""))
    say(len(p["keywords"]) <= 5 and len(p["categories"]) <= 5, f"{name}: at most 5 keywords and 5 categories")
    crate_dir = os.path.dirname(p["manifest_path"])
    is_lib = any("lib" in t["kind"] for t in p["targets"])
    if is_lib:
        say(bool(((p.get("metadata") or {}).get("docs") or {}).get("rs")), f"{name}: [package.metadata.docs.rs]")
    readme = os.path.join(crate_dir, p.get("readme") or "README.md")
    text = open(readme).read() if os.path.exists(readme) else ""
    if is_lib:
        say("```rust" in text, f"{name}: its README has a Rust example")
        lib = open(os.path.join(crate_dir, "src", "lib.rs")).read()
        runs = 'include_str!("../README.md")' in lib or os.path.exists(os.path.join(crate_dir, "examples", "readme.rs"))
        say(runs, f"{name}: the README's example runs (doc test or examples/readme.rs)")
    else:
        say(bool(text), f"{name}: a README")
print("PUBLISHABLE " + " ".join(publishable))
# The dependencies' own MSRVs (crates that declare one).
newer = [f"{p['name']} {p['version']} ({p['rust_version']})" for p in meta["packages"]
         if p["id"] not in members and p.get("rust_version") and version(p["rust_version"]) > version(msrv)]
say(not newer, f"no dependency in Cargo.lock needs a Rust newer than {msrv}" + (f": {newer}" if newer else ""))
PY
while read -r mark what; do
    case $mark in ok) ok "$what" ;; FAIL) bad "$what" ;; esac
done < <(grep -E '^(ok|FAIL) ' "$work/meta.log")
read -r -a publishable <<<"$(sed -n 's/^PUBLISHABLE //p' "$work/meta.log")"
check "clippy's incompatible_msrv lint is not turned off anywhere" \
    sh -c "! grep -rn --include='*.rs' --include='*.toml' 'incompatible_msrv' crates benches Cargo.toml clippy.toml"
check "clippy.toml sets no other msrv" sh -c "! grep -qE '^msrv' clippy.toml"

# cargo package: the crates without dependencies verified, the rest not.
packages=()
for name in "${publishable[@]}"; do packages+=(-p "$name"); done
if cargo package --locked --no-verify "${packages[@]}" --target-dir "$work/package" >"$work/package.log" 2>&1; then
    ok "cargo package --no-verify of ${#publishable[@]} crates"
else
    tail -30 "$work/package.log"
    bad "cargo package --no-verify"
fi
for name in "${publishable[@]}"; do
    crate=$(ls "$work/package/package/$name"-[0-9]*.crate 2>/dev/null | head -1 || true)
    if [ -z "$crate" ]; then bad "$name: no .crate"; continue; fi
    files=$(tar -tzf "$crate")
    dir=$(basename "$crate" .crate)
    for f in README.md LICENSE-MIT LICENSE-APACHE Cargo.toml; do
        grep -qx "$dir/$f" <<<"$files" || { bad "$name: $f is not in its .crate"; continue 2; }
    done
    ok "$name: its .crate holds README.md, LICENSE-MIT, LICENSE-APACHE"
done
leaves=(tether-topic tether-sse tether-backoff tether-delta)
if cargo package --locked "${leaves[@]/#/-p}" --target-dir "$work/verify" >"$work/verify.log" 2>&1; then
    ok "cargo package verifies ${leaves[*]} (each built from its .crate file alone)"
else
    tail -30 "$work/verify.log"
    bad "cargo package (verified) of ${leaves[*]}"
fi

# The example of tether-auth's README.
check "tether-auth's README example runs (examples/readme.rs)" \
    sh -c "cargo run --locked --quiet -p tether-auth --example readme >'$work/auth.log' 2>&1 || { cat '$work/auth.log'; exit 1; }"

# cargo install, reusing the release build.
(
    eval "$(bash packaging/build.sh --env)"
    cargo install --locked --path crates/cli --root "$work/root" --target-dir "$target"
) >"$work/install.log" 2>&1 || { tail -30 "$work/install.log"; bad "cargo install --path crates/cli --locked"; }
if [ -x "$work/root/bin/tether" ]; then
    check "cargo install: tether --version says $("$work/root/bin/tether" --version)" \
        test "$("$work/root/bin/tether" --version | cut -d' ' -f1-2)" = "tether $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
    check "cargo install reused the release build (nothing compiled)" sh -c "! grep -q '^ *Compiling ' '$work/install.log'"
fi
finish crates
