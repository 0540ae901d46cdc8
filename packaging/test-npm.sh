#!/usr/bin/env bash
# The browser client (clients/js) as the npm package it is published as:
# `npm publish --dry-run` passes with complete metadata, the package holds
# what its `exports` name and nothing of the sources' tests, and a project
# that installs the packed tarball imports it by its name (Node resolves
# the `exports` map). Run by .ci/run after the js-client step, whose
# node_modules it reuses; prints "npm: N passed, M failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pkg=$root/clients/js
# shellcheck source=tally.sh
source "$root/packaging/tally.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ ! -d "$pkg/node_modules" ]; then
    (cd "$pkg" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The prepack build prints a line of its own before npm's JSON.
if (cd "$pkg" && npm publish --dry-run --json --loglevel=error) >"$work/publish.out" 2>"$work/publish.err"; then
    ok "npm publish --dry-run"
else
    cat "$work/publish.err"
    bad "npm publish --dry-run"
fi
(cd "$pkg" && npm pack --pack-destination "$work" --loglevel=error) >/dev/null
tarball=$(ls "$work"/tether-client-*.tgz)
python3 - "$work/publish.out" "$pkg/package.json" "$root/Cargo.toml" >"$work/checks" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
report = json.loads(text[text.index("{"):])
report = report.get("tether-client", report)
package = json.load(open(sys.argv[2]))
cargo_version = re.search(r'^version = "([^"]+)"', open(sys.argv[3]).read(), re.M).group(1)
files = {f["path"] for f in report["files"]}
def say(good, what):
    print(("ok   " if good else "FAIL ") + what)
say(package["version"] == cargo_version, f"its version ({package['version']}) is the crates' ({cargo_version})")
for key in ("description", "keywords", "license", "repository", "homepage", "bugs", "author", "types", "exports", "files"):
    say(bool(package.get(key)), f"package.json has {key}")
say(package.get("sideEffects") is False, "sideEffects: false")
say(package.get("type") == "module", "type: module")
targets = set()
def walk(value):
    if isinstance(value, str):
        targets.add(value.removeprefix("./"))
    elif isinstance(value, dict):
        for v in value.values():
            walk(v)
walk(package["exports"])
walk(package["types"])
missing = sorted(t for t in targets if t not in files)
say(not missing, f"every file `exports` and `types` name is in the package" + (f" (missing {missing})" if missing else ""))
say(all(isinstance(v, dict) and "types" in v for k, v in package["exports"].items() if k != "./package.json"),
    "every entry point of `exports` has its types")
for needed in ("README.md", "LICENSE-MIT", "LICENSE-APACHE"):
    say(needed in files, f"the package holds {needed}")
stray = sorted(f for f in files if f.startswith(("src/", "test/", "node_modules/")) or f.endswith(".tgz"))
say(not stray, "no sources, tests or dependencies in it" + (f" ({stray})" if stray else ""))
print(f"INFO {len(files)} files, {report['size']} bytes packed")
PY
grep '^INFO' "$work/checks" | sed 's/^INFO /npm: /'
while read -r mark what; do
    case $mark in ok) ok "$what" ;; FAIL) bad "$what" ;; esac
done < <(grep -E '^(ok|FAIL) ' "$work/checks")

# A project of one's own installs the tarball and imports it by name.
mkdir "$work/app"
cd "$work/app"
echo '{"name": "app", "version": "1.0.0", "type": "module", "private": true}' >package.json
if npm install --no-audit --no-fund --loglevel=error "$tarball" >/dev/null 2>"$work/install.err"; then
    ok "npm install of the packed tarball"
else
    cat "$work/install.err"
    bad "npm install of the packed tarball"
fi
cat >check.mjs <<'JS'
const main = await import("tether-client");
const min = await import("tether-client/min");
const { default: meta } = await import("tether-client/package.json", { with: { type: "json" } });
const names = Object.keys(main).sort();
if (!names.includes("Tether")) throw new Error(`no Tether export: ${names}`);
if (typeof min.Tether !== "function") throw new Error("tether-client/min has no Tether");
console.log(`${meta.name} ${meta.version}: ${names.join(", ")}`);
JS
if node check.mjs >"$work/import.log" 2>&1; then
    ok "import 'tether-client', 'tether-client/min' and its package.json by name: $(cat "$work/import.log")"
else
    cat "$work/import.log"
    bad "importing the installed package by name"
fi
finish npm
