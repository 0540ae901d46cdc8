#!/usr/bin/env python3
"""Runs the snippets of README.md and docs/src/**/*.md against a live
`tether serve`, as a reader would type them, and checks what they print.

    TETHER_BIN=target/release/tether python3 docs/run-snippets.py [FILE.md ...]

How a code block is marked (the fence's info string, after the language):

    ```sh server        the page's server: started in the background, waited
                        for until its port answers; the next `server` block,
                        or the end of the page, stops it (SIGTERM)
    ```sh run           run with bash (-e, pipefail); must exit 0
    ```sh background    started and left running (a subscriber); its output is
                        checked when the page ends, after it is stopped
    ```js run           run by Node as an ES module beside tether-client.js
                        (clients/js's build), and then in headless Chromium
                        as a page of the server's origin
                        (docs/run-in-chromium.mjs): both must print what
                        the expect block says
    ```sh run from-repo the same, run in the repository's root instead of the
                        page's directory (for commands on the repository's
                        own files, as a reader types them in a clone)
    ```toml file=NAME   written to NAME in the page's directory (any language)
    ```text expect      what a block prints: the last run or background block
                        before it that has no expect block yet. Each line as
                        written; `...` alone on a line stands for any lines,
                        and within a line for any text

Every `sh`, `bash`, `console`, `toml`, `js` and `javascript` block carries
one of these marks or says why it is not run, in its first line, where the
rendered page shows it: `# not run: REASON` (or `// not run: REASON`).
Blocks of other languages (`text`, `json`, `rust`: the Rust examples are
doc tests) are not looked at.

Each page runs in a directory of its own, in order, with `tether` on the
PATH (the binary $TETHER_BIN). `cargo run --release -p tether --` in a
block is run as `tether`, which is what it builds. The snippets say port
8080; when that port is taken here, another free port is used in its place
throughout. Ends with `docs: N passed, M failed`.

The Chromium half needs Chromium and conformance/browser's playwright-core
(its run.sh installs both). It runs when $CHROMIUM names the browser, and
is then required: a missing playwright-core fails the block. Without
$CHROMIUM it runs only when /usr/bin/chromium and playwright-core are both
there, and says when it does not.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED = {"sh", "bash", "console", "toml", "js", "javascript"}
NOT_RUN = re.compile(r"^\s*(#|//)\s*not run:\s*\S")
FENCE = re.compile(r"^(```+|~~~+)(.*)$")
RUN_TIMEOUT = 30
BACKGROUND_WAIT = 5.0


class Block:
    def __init__(self, page, line, lang, attrs, text):
        self.page, self.line, self.lang, self.attrs, self.text = page, line, lang, attrs, text

    def where(self):
        return f"{os.path.relpath(self.page, ROOT)}:{self.line}"


def blocks(page):
    """The fenced blocks of a Markdown file, with their info strings."""
    out = []
    lines = page.read_text().split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group(1), m.group(2).strip()
        start = i + 1
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        i += 1
        words = info.replace(",", " ").split()
        lang = words[0] if words else ""
        attrs = {}
        for w in words[1:]:
            key, _, value = w.partition("=")
            attrs[key] = value
        out.append(Block(page, start, lang, attrs, "\n".join(body) + "\n"))
    return out


def free_port(preferred=int(os.environ.get("DOCS_PORT", "8080"))):
    for port in (preferred, 0):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return s.getsockname()[1]
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def matches(expected, actual):
    """`expected` against `actual`, line by line; `...` is a wildcard."""
    pattern = []
    for line in expected.rstrip("\n").split("\n"):
        if line.strip() == "...":
            pattern.append(r"(?:.*\n)*?")
        else:
            pattern.append(".*".join(re.escape(p) for p in line.rstrip().split("...")) + r"[ \t]*\n")
    text = "\n".join(l.rstrip() for l in actual.rstrip("\n").split("\n")) + "\n"
    return re.fullmatch("".join(pattern), text) is not None


class Page:
    def __init__(self, path, env, port, js_client):
        self.path = path
        self.env = env
        self.port = port
        self.js_client = js_client
        self.dir = Path(tempfile.mkdtemp(prefix="tether-docs-"))
        self.server = None
        self.background = []  # (block, process, output file)
        self.passed = 0
        self.failed = 0

    def text(self, block):
        text = block.text.replace("cargo run --release -p tether --", "tether")
        return text.replace(":8080", f":{self.port}")

    def ok(self, block, what):
        self.passed += 1
        print(f"docs: ok: {block.where()} {what}")

    def bad(self, block, what, output=""):
        self.failed += 1
        print(f"docs: FAILED: {block.where()} {what}")
        if output:
            print("    | " + "\n    | ".join(output.rstrip("\n").split("\n")))

    def spawn(self, text, out):
        return subprocess.Popen(
            ["bash", "-c", text.rstrip().rstrip("&")],
            cwd=self.dir, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, proc):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def start_server(self, block):
        self.stop_server()
        log = open(self.dir / f"server-{block.line}.log", "w")
        proc = self.spawn(self.text(block), log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                self.server = (block, proc, log)
                self.ok(block, "server up")
                return
            except OSError:
                time.sleep(0.1)
        self.stop(proc)
        self.bad(block, "the server did not start", (self.dir / log.name).read_text())

    def stop_server(self):
        if self.server:
            block, proc, log = self.server
            self.stop(proc)
            log.close()
            self.server = None
            # A server keeps serving for its --drain-delay after SIGTERM,
            # and a process started from a pipeline outlives the shell
            # waited for: wait until the port is free, or the next page's
            # server would be refused the port and its snippets would
            # reach this one.
            deadline = time.time() + 15
            while time.time() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                except OSError:
                    break
                time.sleep(0.1)

    def run(self, block, expect):
        if block.lang in ("js", "javascript"):
            script = self.dir / f"snippet-{block.line}.mjs"
            script.write_text(self.text(block))
            if self.js_client and not (self.dir / "tether-client.js").exists():
                shutil.copy(self.js_client, self.dir / "tether-client.js")
            argv = ["node", str(script)]
        else:
            argv = ["bash", "-e", "-o", "pipefail", "-c", self.text(block)]
        cwd = ROOT if "from-repo" in block.attrs else self.dir
        try:
            done = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True,
                                  text=True, timeout=RUN_TIMEOUT, start_new_session=True)
        except subprocess.TimeoutExpired as e:
            self.bad(block, f"still running after {RUN_TIMEOUT} s", (e.stdout or b"").decode(errors="replace"))
            return
        self.judge(block, expect, done, "ran")
        if block.lang in ("js", "javascript") and "run" in block.attrs:
            self.run_in_chromium(block, expect, script)

    def judge(self, block, expect, done, what):
        output = done.stdout + done.stderr
        if done.returncode != 0:
            self.bad(block, f"{what}: exit status {done.returncode}", output)
        elif expect is not None and not matches(expect.text, done.stdout):
            self.bad(block, f"{what}: printed other than the expect block says", done.stdout + "--- expected:\n" + expect.text)
        else:
            self.ok(block, what + (" as expected" if expect is not None else ""))

    def run_in_chromium(self, block, expect, script):
        chromium = os.environ.get("CHROMIUM")
        playwright = ROOT / "conformance/browser/node_modules/playwright-core"
        if not chromium:
            if not (Path("/usr/bin/chromium").exists() and playwright.exists()):
                print(f"docs: note: {block.where()} not run in Chromium (no /usr/bin/chromium "
                      "or no playwright-core; set CHROMIUM to require it)")
                return
            chromium = "/usr/bin/chromium"
        argv = ["node", str(ROOT / "docs/run-in-chromium.mjs"), str(script), f"http://127.0.0.1:{self.port}"]
        try:
            done = subprocess.run(argv, cwd=self.dir, env=dict(self.env, CHROMIUM=chromium),
                                  capture_output=True, text=True, timeout=RUN_TIMEOUT + 30,
                                  start_new_session=True)
        except subprocess.TimeoutExpired as e:
            self.bad(block, "in Chromium: still running", (e.stdout or b"").decode(errors="replace"))
            return
        self.judge(block, expect, done, "ran in Chromium")

    def start_background(self, block, expect):
        out = open(self.dir / f"background-{block.line}.out", "w")
        proc = self.spawn(self.text(block), out)
        self.background.append((block, proc, out, expect))
        # A subscriber that is not yet subscribed would miss what the next
        # block publishes: wait for its first bytes (an event stream starts
        # with its retry field once subscribed), for a few seconds at most.
        path = Path(out.name)
        deadline = time.time() + BACKGROUND_WAIT
        while time.time() < deadline and proc.poll() is None and path.stat().st_size == 0:
            time.sleep(0.05)
        time.sleep(0.2)

    def finish(self):
        time.sleep(0.5 if self.background else 0)
        for block, proc, out, expect in self.background:
            self.stop(proc)
            out.close()
            text = Path(out.name).read_text()
            if expect is not None and not matches(expect.text, text):
                self.bad(block, "printed other than the expect block says", text + "--- expected:\n" + expect.text)
            else:
                self.ok(block, "ran in the background" + (" as expected" if expect is not None else ""))
        self.background = []
        self.stop_server()
        shutil.rmtree(self.dir, ignore_errors=True)

    def go(self):
        bs = blocks(self.path)
        # Each expect block checks the last run or background block before
        # it that has none yet.
        expects = {}
        for i, block in enumerate(bs):
            if "expect" not in block.attrs:
                continue
            owner = next((j for j in range(i - 1, -1, -1)
                          if {"run", "background"} & bs[j].attrs.keys() and j not in expects), None)
            if owner is None:
                self.bad(block, "an expect block with no run or background block before it")
            else:
                expects[owner] = block
        for i, block in enumerate(bs):
            if block.attrs.get("file") and block.lang not in CHECKED:
                (self.dir / block.attrs["file"]).write_text(block.text)
                continue
            if block.lang not in CHECKED or "expect" in block.attrs:
                continue
            expect = expects.get(i)
            if NOT_RUN.match(block.text):
                continue
            if {"server", "run", "background"} & block.attrs.keys() and re.search(r"(?<!:)\b8080\b", block.text):
                # Only HOST:8080 is replaced by the free port: a snippet
                # naming the port otherwise would reach whatever holds
                # 8080 on a machine where it is taken.
                self.bad(block, "names port 8080 other than as HOST:8080, the one form the runner replaces")
                continue
            if "server" in block.attrs:
                self.start_server(block)
            elif "run" in block.attrs:
                self.run(block, expect)
            elif "background" in block.attrs:
                self.start_background(block, expect)
            elif block.attrs.get("file"):
                (self.dir / block.attrs["file"]).write_text(block.text)
            else:
                self.bad(block, f"a `{block.lang}` block neither run nor marked `not run: REASON`")
        self.finish()


def main():
    tether = os.environ.get("TETHER_BIN")
    if not tether:
        sys.exit("docs: set TETHER_BIN to the tether binary")
    bindir = Path(tempfile.mkdtemp(prefix="tether-docs-bin-"))
    (bindir / "tether").symlink_to(Path(tether).resolve())
    port = free_port()
    # The port of the snippets' URLs, and of a server whose configuration
    # file says 8080 (the environment wins over the file).
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", TETHER_PORT=str(port))
    env.pop("TETHER_PUBLISH_TOKEN", None)
    js_client = ROOT / "clients/js/dist/tether-client.min.js"
    pages = [Path(p).resolve() for p in sys.argv[1:]] or [ROOT / "README.md"] + sorted((ROOT / "docs/src").rglob("*.md"))
    passed = failed = 0
    for path in pages:
        page = Page(path, env, port, js_client if js_client.exists() else None)
        try:
            page.go()
        finally:
            page.finish() if page.server or page.background else None
        passed += page.passed
        failed += page.failed
    shutil.rmtree(bindir, ignore_errors=True)
    print(f"docs: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
