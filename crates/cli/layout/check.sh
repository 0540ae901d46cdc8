#!/usr/bin/env bash
# Checks that a release build of `tether` has the layout build.rs asks for:
# its code begins with functions of hot-functions.txt, and its relative
# relocations are packed (.relr.dyn). Run by .ci/run after the release
# build; prints "layout: N passed, M failed".
#
#   bash crates/cli/layout/check.sh target/release/tether
set -euo pipefail
bin=$1
list="$(dirname "$0")/hot-functions.txt"
python3 - "$bin" "$list" <<'PY'
import re
import subprocess
import sys

binary, listing = sys.argv[1], sys.argv[2]
patterns = [l.strip() for l in open(listing) if l.strip() and not l.startswith("#")]
named = re.compile("|".join(re.escape(p).replace(r"\*", ".*") for p in patterns))
symbols = subprocess.run(["nm", "-n", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
first = [s.split()[2] for s in symbols.splitlines() if len(s.split()) == 3 and s.split()[1] in "tT"]
# The first symbol of the code is the C runtime's _init, in .init.
first = [s for s in first if s not in ("_init", "_start")][:40]
matched = sum(1 for s in first if named.fullmatch(s))
sections = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
passed = failed = 0
if matched >= 30:
    print(f"ok   the code begins with the listed functions ({matched} of its first {len(first)})")
    passed += 1
else:
    print(f"FAIL the code begins with {matched} listed functions of {len(first)}: {first[:5]}")
    failed += 1
if ".relr.dyn" in sections:
    print("ok   relative relocations packed (.relr.dyn)")
    passed += 1
else:
    print("FAIL no .relr.dyn: relative relocations not packed")
    failed += 1
print(f"layout: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
