#!/usr/bin/env python3
"""Fails on a broken internal link in the book, README.md,
benches/README.md or benches/results/: a relative link to a file that is not in the
repository, or an anchor (`page.md#heading`, `#heading`) that no heading of
its page makes. mdbook builds such a book without a word. Also checks that
every page under docs/src is in SUMMARY.md and the other way round.

    python3 docs/check-links.py

Anchors are made as mdbook and GitHub make them: the heading's text,
lower-cased, code marks dropped, spaces made `-`, characters other than
letters, digits, `-` and `_` left out; a repeated one gets `-1`, `-2`.
Links to other sites are not fetched. Ends with `links: N passed, M failed`.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!\!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|!\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def slug(text):
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text
    text = text.replace("`", "").strip().lower()
    out = []
    for ch in text:
        if ch.isalnum() or ch in "-_":
            out.append(ch)
        elif ch.isspace():
            out.append("-")
    return "".join(out)


def prose(path):
    """The lines of a Markdown file outside fenced code blocks."""
    fence = None
    for number, line in enumerate(path.read_text().split("\n"), 1):
        m = re.match(r"^(```+|~~~+)", line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif line.startswith(fence):
                fence = None
            continue
        if fence is None:
            yield number, line


def anchors(path, cache={}):
    if path not in cache:
        seen = {}
        found = set()
        for _, line in prose(path):
            m = HEADING.match(line)
            if m:
                base = slug(m.group(2))
                n = seen.get(base, 0)
                seen[base] = n + 1
                found.add(base if n == 0 else f"{base}-{n}")
            for explicit in re.findall(r'<a\s+(?:id|name)="([^"]+)"', line):
                found.add(explicit)
        cache[path] = found
    return cache[path]


def main():
    pages = [ROOT / "README.md", ROOT / "benches/README.md"] + sorted((ROOT / "benches/results").glob("*.md"))
    pages += sorted((ROOT / "docs/src").rglob("*.md"))
    passed = failed = 0

    def bad(where, what):
        nonlocal failed
        failed += 1
        print(f"links: FAILED: {where}: {what}")

    for page in pages:
        for number, line in prose(page):
            line = re.sub(r"`[^`]*`", "", line)  # code spans hold no links
            for m in LINK.finditer(line):
                target = m.group(1) or m.group(2)
                where = f"{page.relative_to(ROOT)}:{number}"
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # another site, or mailto:
                path, _, anchor = target.partition("#")
                dest = (page.parent / path).resolve() if path else page
                if not dest.exists():
                    bad(where, f"{target}: no such file")
                    continue
                try:
                    dest.relative_to(ROOT)
                except ValueError:
                    bad(where, f"{target}: outside the repository")
                    continue
                if page.is_relative_to(ROOT / "docs/src") and not dest.is_relative_to(ROOT / "docs/src"):
                    bad(where, f"{target}: outside the book (link to the repository's address instead)")
                    continue
                if anchor:
                    if dest.suffix != ".md":
                        bad(where, f"{target}: an anchor into a file that is not Markdown")
                        continue
                    if anchor not in anchors(dest):
                        bad(where, f"{target}: no heading makes #{anchor}")
                        continue
                passed += 1

    summary = ROOT / "docs/src/SUMMARY.md"
    listed = set()
    for _, line in prose(summary):
        for m in LINK.finditer(line):
            listed.add((summary.parent / (m.group(1) or "")).resolve())
    for page in sorted((ROOT / "docs/src").rglob("*.md")):
        if page != summary and page not in listed:
            bad(str(page.relative_to(ROOT)), "not in SUMMARY.md")
        else:
            passed += 1
    print(f"links: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
