#!/usr/bin/env python3
"""Runs tlsfuzzer's scripts against `tether serve` (or the rustls
reference server) and compares each case with the expected-failure list.
tlsfuzzer.sh beside this file sets it up (venv, certificate, binaries);
see README.md beside this file.

    tlsfuzzer_run.py --tlsfuzzer DIR --tether BIN --cert C --key K [--expected FILE]
    tlsfuzzer_run.py --tlsfuzzer DIR --reference BIN --cert C --key K --report FILE
    tlsfuzzer_run.py ... --compare-with FILE   # each failure beside the reference's

A case that fails and is in the expected list counts as passed; one that
fails and is not, or passes and is, counts as failed; so does a server
that died, stopped serving or logged a panic during a script. A listed
case whose reason starts with "either:" passes or fails by timing, and
counts as passed either way. The last line reads `tlsfuzzer: N passed, M
failed`.
"""

import argparse
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from record_layer import PANIC, https_get  # noqa: E402

# Each script with the arguments this server needs. rustls has no RSA key
# exchange and no CBC suites: the TLS 1.2 scripts that default to them
# are given ECDHE (-d) and an AES-GCM suite the server has.
TLS12_SUITE = ["-d", "-C", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
SCRIPTS = [
    # rustls answers several KeyUpdates that ask for one with one
    # (--coalescing); tether answers those that one read brings with one,
    # so mostly each (tlsfuzzer-expected.txt, "multiple KeyUpdate messages").
    ("test-tls13-keyupdate", {"tether": ["-n", "0"], "reference": ["-n", "0", "--coalescing"]}),
    ("test-tls13-zero-length-data", []),
    ("test-tls13-finished", ["-n", "0"]),
    ("test-tls13-record-layer-limits", ["-n", "0"]),
    ("test-tls13-empty-alert", []),
    ("test-tls13-zero-content-type", []),
    ("test-tls13-record-padding", []),
    ("test-tls13-unencrypted-alert", []),
    ("test-tls13-multiple-ccs-messages", []),
    # Each probe is sent --repeat times, and a server that says nothing is
    # waited for -t seconds: 2 and 2 keep the script under a minute.
    ("test-tls13-connection-abort", ["--repeat", "2", "-t", "2"]),
    ("test-truncating-of-client-hello", TLS12_SUITE),
    ("test-record-layer-fragmentation", TLS12_SUITE),
    # A sample: 200 of its 256 cases (hellos of up to 64 KiB); a sample of
    # 40 missed most of the hellos rustls refuses. The sample is the same
    # in every run (see SEED).
    ("test-large-hello", ["-d", "-n", "200"]),
]
# The scripts' own random choices (which cases a sample of -n takes) are
# made with this seed, so that each run, against either server, runs the
# same cases.
SEED = 43

# "NAME ..." before each case's result; test-tls13-connection-abort
# writes '"NAME" repeat N...' for each of its repeats.
CASE_START = re.compile(r'^(?:"(.*)" repeat \d+\.\.\.|(.*) \.\.\.)$')


# The most plaintext a TLS record carries (RFC 8446 §5.1).
MAX_RECORD_PLAINTEXT = 16384


def check_one_record(port):
    """Exits unless the server's answer to the scripts' request (`GET /`
    over HTTP/1.0) fits one TLS record: a longer one comes as two
    ApplicationData records, and every case that expects one would fail for
    that alone."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while len(answer) <= MAX_RECORD_PLAINTEXT:
                try:
                    chunk = tls.recv(65536)
                except (ssl.SSLEOFError, ConnectionResetError):
                    break
                if not chunk:
                    break
                answer += chunk
    if not answer or len(answer) > MAX_RECORD_PLAINTEXT:
        raise SystemExit(f"tlsfuzzer: the answer to GET / is {len(answer)} bytes, not 1 to "
                         f"{MAX_RECORD_PLAINTEXT}: the scripts expect it in one record")


class Server:
    """tether serve with the given certificate, or rustls-reference."""

    def __init__(self, kind, binary, cert, key, work):
        self.kind, self.binary, self.cert, self.key, self.work = kind, binary, cert, key, work
        self.runs = 0
        self.proc = None
        self.port = 0

    def start(self, port=0):
        """Starts it on `port` (0: a free one), which is then `self.port`."""
        for attempt in range(50):
            self.runs += 1
            self.out_path = os.path.join(self.work, f"{self.kind}-{self.runs}.out")
            self.err_path = os.path.join(self.work, f"{self.kind}-{self.runs}.err")
            if self.kind == "tether":
                # At debug level a connection's read error is logged
                # (rustls' reason for an alert), which --explain shows.
                # The hub, not the demo: the scripts ask for `/` and most
                # expect its answer in one ApplicationData record, which
                # the demo's page outgrew; the hub answers `/` with a short
                # 404, whatever size the demo page has (checked by
                # check_one_record before the scripts run).
                command = [self.binary, "serve", "--memory", "--app", "hub", "--tls-cert", self.cert,
                           "--tls-key", self.key, "--port", str(port), "--threads", "1", "--log-level", "debug"]
                pattern = re.compile(r"listening on https://127\.0\.0\.1:(\d+)/")
            else:
                command = [self.binary, self.cert, self.key, str(port)]
                pattern = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
            with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
                self.proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
            found = None
            for _ in range(400):
                with open(self.out_path, encoding="utf-8", errors="replace") as f:
                    match = pattern.search(f.read())
                if match:
                    found = int(match.group(1))
                    break
                if self.proc.poll() is not None:
                    break
                time.sleep(0.01)
            if found is not None:
                self.port = found
                self.panics_seen = 0
                return
            self.stop()
            # The port may be taken a moment longer by what was there.
            time.sleep(0.1)
        raise SystemExit(f"tlsfuzzer: the server did not start: {self.stderr()[-2000:]}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def log_size(self):
        return os.path.getsize(self.err_path)

    def errors_since(self, path, offset):
        """The connection errors the server logged past `offset` of `path`
        (its stderr then: it may have been started again since)."""
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", errors="replace")
        return [line.strip() for line in text.splitlines()
                if re.search(r"connection from|read error|write error", line) or PANIC.search(line)]

    def new_panic_lines(self):
        lines = [line for line in self.stderr().splitlines() if PANIC.search(line)]
        new = lines[self.panics_seen:]
        self.panics_seen = len(lines)
        return new

    def stop(self):
        # By its own pid: SIGTERM, then SIGKILL if it does not go.
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_script(tlsfuzzer, script, args, server, timeout):
    """Runs one script against the server; returns {case: error or None},
    the script's output, and the crashes: (case, what the server logged)
    for each time the server exited during the script. A server that
    exits is started again on the same port (the script is stopped
    meanwhile), so that the cases after the one that ended it still test
    something."""
    path = os.path.join(tlsfuzzer, "scripts", script + ".py")
    argv = [path, "-h", "127.0.0.1", "-p", str(server.port)] + args
    launcher = (
        "import random, runpy, sys\n"
        f"random.seed({SEED})\n"
        f"sys.argv = {argv!r}\n"
        f"runpy.run_path({path!r}, run_name='__main__')\n"
    )
    proc = subprocess.Popen([sys.executable, "-u", "-c", launcher], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", cwd=tlsfuzzer)
    output_lines = []
    running = [None]

    def reader():
        for line in proc.stdout:
            line = line.rstrip("\n")
            output_lines.append(line)
            match = CASE_START.match(line)
            if match:
                running[0] = match.group(1) or match.group(2)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    crashes = []
    deadline = time.monotonic() + timeout
    timed_out = False
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            timed_out = True
            break
        if not server.alive():
            proc.send_signal(signal.SIGSTOP)
            logged = server.new_panic_lines()
            what = logged[0] if logged else f"exit status {server.proc.returncode}"
            crashes.append((running[0], what))
            server.start(server.port)
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.005)
    proc.wait()
    thread.join(10)
    if not server.alive():
        # It exited as the script ended: with the last case, or with one
        # that finished faster than it could be seen exiting.
        logged = server.new_panic_lines()
        crashes.append((None, logged[0] if logged else f"exit status {server.proc.returncode}"))
        server.start(server.port)
    output = "\n".join(output_lines) + "\n"
    if timed_out:
        output += f"(script timed out after {timeout} s)\n"
    results = {}
    current, lines = None, []

    def close_case():
        if current is None:
            return
        text = "\n".join(lines)
        if "Error while processing" in text:
            error = "unknown error"
            for line in reversed(lines):
                # The exception's own line ends the traceback:
                # "AssertionError: ...", "tlslite.errors.TLSBadRecordMAC: ...".
                if line != "OK" and re.match(r"^[A-Za-z_][\w.]*(:|$)", line):
                    error = line.strip()
                    break
            if results.get(current) is None:
                results[current] = error
        elif re.search(r"^OK$", text, re.M):
            results.setdefault(current, None)
        else:
            results[current] = "no result (the script stopped)"

    for line in output.splitlines():
        match = CASE_START.match(line)
        if match:
            close_case()
            current, lines = match.group(1) or match.group(2), []
        elif line.startswith("Test end"):
            close_case()
            current = None
        elif current is not None:
            lines.append(line)
    close_case()
    for case, what in crashes:
        if case is not None:
            results[case] = f"the server exited: {what}"
    return results, output, crashes


def load_expected(path):
    """{(script, case): reason} from the expected-failure list."""
    expected = {}
    if not path:
        return expected
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = [p.strip() for p in line.split(" | ")]
            if len(parts) != 3 or not all(parts):
                raise SystemExit(f"{path}:{number}: not 'script | case | reason'")
            expected[(parts[0], parts[1])] = parts[2]
    return expected


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tlsfuzzer", required=True, help="a checkout of tlsfuzzer")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--tether", metavar="BIN")
    target.add_argument("--reference", metavar="BIN")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--expected", help="the expected-failure list")
    parser.add_argument("--script", action="append", default=[], help="run only these (repeatable)")
    parser.add_argument("--report", help="write every case's result here (JSON)")
    parser.add_argument("--compare-with", help="a --report of another run, shown beside each failure")
    parser.add_argument("--logs", help="keep the scripts' output and the server's logs in this directory")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per script")
    parser.add_argument("--explain", action="store_true",
                        help="run each failing case again alone and show what the server logged for it")
    args = parser.parse_args()

    kind = "tether" if args.tether else "reference"
    expected = load_expected(args.expected)
    other = {}
    if args.compare_with:
        with open(args.compare_with, encoding="utf-8") as f:
            other = json.load(f)
    unknown = set(args.script) - {name for name, _ in SCRIPTS}
    if unknown:
        parser.error(f"no such script here: {', '.join(sorted(unknown))}")

    work = args.logs or tempfile.mkdtemp(prefix="tether-tlsfuzzer.")
    os.makedirs(work, exist_ok=True)
    server = Server(kind, args.tether or args.reference, args.cert, args.key, work)
    report = {}
    table = []
    passed = failed = 0
    try:
        for script, script_args in SCRIPTS:
            if args.script and script not in args.script:
                continue
            if not server.alive():
                server.start()
            if not table:
                check_one_record(server.port)
            if isinstance(script_args, dict):
                script_args = script_args[kind]
            started = time.monotonic()
            results, output, crashes = run_script(args.tlsfuzzer, script, script_args, server, args.timeout)
            # Cases that found no server while it was being started again
            # after a crash are run again, on their own.
            refused = [case for case, error in results.items()
                       if crashes and error and "Connection refused" in error]
            if refused:
                again, more, more_crashes = run_script(args.tlsfuzzer, script, script_args + refused, server,
                                                       args.timeout)
                output += f"\n(run again: {len(refused)} case(s) that found the server down)\n" + more
                crashes += more_crashes
                for case in refused:
                    if case in again:
                        results[case] = again[case]
            seconds = time.monotonic() - started
            with open(os.path.join(work, f"{script}.log"), "w", encoding="utf-8") as f:
                f.write(output)
            report[script] = results
            if args.explain:
                said = report.setdefault("_server_said", {}).setdefault(script, {})
                for case, error in results.items():
                    if error is None:
                        continue
                    if not server.alive():
                        server.start(server.port)
                    path, offset = server.err_path, server.log_size()
                    run_script(args.tlsfuzzer, script, script_args + [case], server, args.timeout)
                    said[case] = server.errors_since(path, offset)
            ok = bad = xfail = 0
            if not results:
                bad += 1
                print(f"FAIL {script}: no case ran; its output ends with:")
                for line in output.splitlines()[-15:]:
                    print(f"     {line}")
            for case, error in results.items():
                reason = expected.get((script, case))
                beside = ""
                if script in other and case in other[script]:
                    theirs = other[script][case]
                    if theirs is None:
                        beside = " [the reference passes]"
                    elif theirs == error:
                        beside = " [the reference fails the same way]"
                    else:
                        beside = f" [the reference fails otherwise: {theirs}]"
                said = report.get("_server_said", {}).get(script, {}).get(case)
                if said:
                    beside += f" [the server logged: {' / '.join(said[:3])}]"
                if error is None and reason is None:
                    ok += 1
                elif error is not None and reason is not None:
                    xfail += 1
                elif reason is not None and reason.startswith("either:"):
                    ok += 1
                elif error is None:
                    bad += 1
                    print(f"XPASS {script}: {case}: passes, but is listed as expected to fail ({reason})")
                else:
                    bad += 1
                    print(f"FAIL {script}: {case}: {error}{beside}")
            # The server after the script: alive, serving, no panic logged.
            problems = []
            if crashes:
                problems.append(f"it exited {len(crashes)} time(s) and was started again ({crashes[0][1]})")
            panics = server.new_panic_lines()
            if panics:
                problems.append(f"{len(panics)} panic(s) logged: {panics[0]}")
            if not server.alive():
                problems.append(f"the server exited (status {server.proc.returncode})")
            else:
                try:
                    status = https_get(server.port)
                    if not status.startswith("HTTP/1.1 "):
                        problems.append(f"a request got {status!r}")
                except OSError as e:
                    problems.append(f"a request failed: {e}")
            if problems:
                bad += 1
                print(f"FAIL {script}: the server afterwards: {'; '.join(problems)}")
            else:
                ok += 1
            passed += ok + xfail
            failed += bad
            table.append((script, ok, bad, xfail, seconds))
            print(f"  {script}: {ok} ok, {bad} not as expected, {xfail} expected failures ({seconds:.0f} s)")
            sys.stdout.flush()
    finally:
        server.stop()
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, sort_keys=True)
    ran = {(s, c) for s, cases in report.items() if not s.startswith("_") for c in cases}
    stale = sorted(k for k in expected if k[0] in report and k not in ran)
    for script, case in stale:
        print(f"note: {script}: {case}: listed as expected to fail, but did not run")
    print()
    print("| script | ok | not as expected | expected failures |")
    print("| --- | --- | --- | --- |")
    for script, ok, bad, xfail, _ in table:
        print(f"| {script} | {ok} | {bad} | {xfail} |")
    print("(ok counts the server check after each script as one)")
    print(f"tlsfuzzer: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
