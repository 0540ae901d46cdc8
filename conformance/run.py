#!/usr/bin/env python3
"""Run Autobahn|Testsuite against tether and compare with the expected results.

Two modes, one comparison:

  server  wstest -m fuzzingclient drives a WebSocket server that this script
          starts from --server-cmd ("{port}" is replaced by a free loopback
          port).
  client  wstest -m fuzzingserver listens on a free loopback port and
          --client-cmd ("{url}" and "{agent}" are replaced) connects to it:
          /getCaseCount, /runCase?case=N&agent=A for each case, and
          /updateReports?agent=A. This script asks for /updateReports itself
          as well once the client is done, so a client that dies half way
          still leaves a report to compare.

The results (index.json written by wstest) are compared case by case, on
both `behavior` and `behaviorClose`, with a checked-in expected file. Any
difference, any case missing from either side, a server that died during the
run, or an expected file that breaks the strict policy (cases 1.* to 13.*
must be OK or INFORMATIONAL, on both columns) makes the run fail.

Exit status: 0 all as expected; 1 conformance failure; 2 the run itself could
not be carried out (no wstest, server never listened, wstest crashed ...).

Python 3 standard library only. See conformance/README.md.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Grades Autobahn gives (autobahntestsuite/case/case.py). The summary table
# has a column for each of the first five and lumps the rest into OTHER.
TABLE_GRADES = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]

# Strict policy: in these top-level groups only these grades may be expected
# (there is no group 11; 12 and 13 are permessage-deflate, which tether has).
STRICT_GROUPS = range(1, 14)
STRICT_ALLOWED = {"OK", "INFORMATIONAL"}

# The permessage-deflate groups. Each of their cases carries its own offer
# (fuzzingclient) or accept policy (fuzzingserver) inside Autobahn, so no spec
# option is needed to enable compression; --compression only selects them.
COMPRESSION_PATTERNS = ["12.*", "13.*"]

MODES = {
    "server": {
        "wstest_mode": "fuzzingclient",
        "config": HERE / "fuzzingclient.json",
        "expected": HERE / "expected" / "server.json",
        "agent": "tether-server",
    },
    "client": {
        "wstest_mode": "fuzzingserver",
        "config": HERE / "fuzzingserver.json",
        "expected": HERE / "expected" / "client.json",
        "agent": "tether-client",
    },
}

MARKER = ".tether-conformance"
MAX_MISSING_SHOWN = 20


class RunError(Exception):
    """The run could not be carried out (exit status 2)."""


class Terminated(BaseException):
    """A stop signal arrived; unwinds like KeyboardInterrupt."""


def log(msg):
    print(f"conformance: {msg}", file=sys.stderr, flush=True)


# --- case ids and patterns --------------------------------------------------


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def pattern_matches(pattern, case_id):
    # Autobahn's own rule (CaseSet.resolveCasePatternList): a pattern with a
    # '*' is a regular expression ('.' literal, '*' any run) matched at the
    # start of the id; any other pattern names one case exactly.
    if "*" in pattern:
        regex = pattern.replace(".", r"\.").replace("*", ".*")
        return re.match(regex, case_id) is not None
    return pattern == case_id


def selected(case_id, cases, exclude):
    return any(pattern_matches(p, case_id) for p in cases) and not any(
        pattern_matches(p, case_id) for p in exclude
    )


def split_patterns(values):
    out = []
    for value in values or []:
        out.extend(p.strip() for p in value.split(",") if p.strip())
    return out


# --- processes ----------------------------------------------------------------


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_for_port(port, proc, what, deadline_s, log_path):
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if proc.poll() is not None:
            raise RunError(
                f"{what} exited with status {proc.returncode} before listening on "
                f"127.0.0.1:{port}\n{tail(log_path)}"
            )
        if port_accepts(port):
            return
        time.sleep(0.1)
    raise RunError(
        f"{what} did not accept connections on 127.0.0.1:{port} within "
        f"{deadline_s:.0f} s\n{tail(log_path)}"
    )


def tls_probe(port, timeout_s=10):
    """One TLS handshake with 127.0.0.1:port, the certificate unchecked (as
    wstest does not check it either). Returns "TLSv1.3, CIPHER" or raises
    RunError: a server that does not speak TLS would otherwise show up only
    as every case FAILED."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return f"{s.version()}, {s.cipher()[0]}"
    except (OSError, ssl.SSLError) as e:
        raise RunError(
            f"--tls: no TLS handshake with the server on 127.0.0.1:{port} ({e}); "
            "does the server command serve TLS (tether serve --tls-self-signed, "
            "or --tls-cert and --tls-key)?"
        )


def start(cmd, log_path, cwd=None, shell=False):
    # Each child gets its own session (process group): stopping it reaches a
    # shell's children too, and the terminal's Ctrl-C reaches only us, so the
    # order of shutdown stays ours.
    out = open(log_path, "ab")
    try:
        return subprocess.Popen(
            cmd,
            shell=shell,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        out.close()


def stop(proc, what, grace_s):
    """SIGTERM the process group, SIGKILL it after grace_s. Returns the
    exit status if the process had already exited by itself, else None."""
    if proc is None or getattr(proc, "tether_stopped", False):
        return None
    proc.tether_stopped = True
    already = proc.poll()
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log(f"{what} ignored SIGTERM for {grace_s:.0f} s; sending SIGKILL")
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    # Leftovers in the group (a daemonised grandchild) are killed as well.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return already


def tail(path, lines=20):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {shown(path)})"
    if not text:
        return f"({shown(path)} is empty)"
    body = "\n".join("    " + line for line in text[-lines:])
    return f"last lines of {shown(path)}:\n{body}"


def last_case_in_log(path):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            chunk = f.read().decode(errors="replace")
    except OSError:
        return None
    found = re.findall(r"test case ID (\S+)", chunk)
    return found[-1] if found else None


def describe_status(code):
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# --- wstest -------------------------------------------------------------------


def find_wstest(args):
    if args.wstest:
        return args.wstest
    if os.environ.get("TETHER_WSTEST"):
        return os.environ["TETHER_WSTEST"]
    log("locating wstest (conformance/wstest-env.sh)")
    proc = subprocess.run(
        ["bash", str(HERE / "wstest-env.sh")], stdout=subprocess.PIPE, text=True
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RunError(f"conformance/wstest-env.sh failed (status {proc.returncode})")
    return lines[-1]


def ws_close_only(port, path, timeout_s=120):
    """Open a WebSocket to 127.0.0.1:port/path, wait for the server's close
    frame and answer it. Enough for wstest's /updateReports, which writes the
    reports and then closes. Minimal on purpose: no fragmentation, no TLS."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(request.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise RunError(f"{path}: connection closed during the handshake")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise RunError(f"{path}: handshake refused: {head.splitlines()[0]!r}")
        while True:
            while len(buf) < 2:
                chunk = s.recv(4096)
                if not chunk:
                    return
                buf += chunk
            opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
            header = 2 + {126: 2, 127: 8}.get(length, 0)
            while len(buf) < header:
                buf += s.recv(4096)
            if length >= 126:
                length = int.from_bytes(buf[2:header], "big")
            while len(buf) < header + length:
                chunk = s.recv(65536)
                if not chunk:
                    return
                buf += chunk
            payload, buf = buf[header : header + length], buf[header + length :]
            if opcode == 0x8:
                mask = os.urandom(4)
                body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:2]))
                s.sendall(bytes([0x88, 0x80 | len(body)]) + mask + body)
                return


# --- spec, results, expected ----------------------------------------------------


def write_spec(mode, args, port, outdir_name, cases, exclude):
    config = json.loads(MODES[mode]["config"].read_text())
    spec = dict(config)
    spec["cases"] = cases
    spec["exclude-cases"] = exclude
    spec["outdir"] = f"./{outdir_name}"
    scheme = "wss" if getattr(args, "tls", False) else "ws"
    url = f"{scheme}://127.0.0.1:{port}"
    if mode == "server":
        first = dict((config.get("servers") or [{}])[0])
        first["agent"] = args.agent
        first["url"] = url
        spec["servers"] = [first]
    else:
        spec["url"] = url
    # Room for later switches: options that only some runs need are merged
    # here, e.g. protocol options under spec["options"].
    return spec


def load_results(index_path, agent):
    if not index_path.exists():
        raise RunError(f"wstest wrote no report index ({index_path})")
    index = json.loads(index_path.read_text())
    if agent not in index:
        found = ", ".join(sorted(index)) or "none"
        raise RunError(f"{index_path} has no results for agent '{agent}' (agents: {found})")
    return index[agent]


def load_expected(path):
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"cannot read the expected file {path}: {e}") from None
    for case_id, entry in data.items():
        if not re.fullmatch(r"\d+(\.\d+)*", case_id):
            raise RunError(f"{path}: '{case_id}' is not a case id")
        if not isinstance(entry, dict) or set(entry) != {"behavior", "behaviorClose"}:
            raise RunError(f"{path}: case {case_id}: want exactly behavior and behaviorClose")
    return data


def dump_expected(data):
    lines = [
        f"  {json.dumps(case_id)}: {json.dumps({'behavior': e['behavior'], 'behaviorClose': e['behaviorClose']})}"
        for case_id, e in sorted(data.items(), key=lambda kv: case_key(kv[0]))
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def policy_violations(entries):
    bad = []
    for case_id, e in sorted(entries.items(), key=lambda kv: case_key(kv[0])):
        if case_key(case_id)[0] in STRICT_GROUPS:
            if e["behavior"] not in STRICT_ALLOWED or e["behaviorClose"] not in STRICT_ALLOWED:
                bad.append((case_id, e["behavior"], e["behaviorClose"]))
    return bad


def summary_table(results):
    groups = {}
    for case_id, r in results.items():
        g = case_key(case_id)[0]
        row = groups.setdefault(g, dict.fromkeys(TABLE_GRADES + ["OTHER", "close!OK", "total"], 0))
        grade = r["behavior"] if r["behavior"] in TABLE_GRADES else "OTHER"
        row[grade] += 1
        if r["behaviorClose"] not in ("OK", "INFORMATIONAL", "UNIMPLEMENTED"):
            row["close!OK"] += 1
        row["total"] += 1
    cols = TABLE_GRADES + ["OTHER", "close!OK", "total"]
    total = dict.fromkeys(cols, 0)
    widths = [6] + [max(len(c), 5) for c in cols]
    out = ["  ".join(["group".ljust(widths[0])] + [c.rjust(w) for c, w in zip(cols, widths[1:])])]
    for g in sorted(groups):
        row = groups[g]
        for c in cols:
            total[c] += row[c]
        out.append("  ".join([f"{g}.*".ljust(widths[0])] + [str(row[c]).rjust(w) for c, w in zip(cols, widths[1:])]))
    out.append("  ".join(["all".ljust(widths[0])] + [str(total[c]).rjust(w) for c, w in zip(cols, widths[1:])]))
    return "\n".join(out)


# --- the run ----------------------------------------------------------------------


def prepare_workdir(reports, mode):
    workdir = reports / mode
    if workdir.exists():
        if not (workdir / MARKER).exists() and any(workdir.iterdir()):
            raise RunError(f"{workdir} exists and was not made by this runner; refusing to clear it")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by conformance/run.py; cleared at every run\n")
    return workdir


def heartbeat(started, wstest_log, every_s, state):
    now = time.monotonic()
    if now - state.get("last", started) >= every_s:
        state["last"] = now
        case = last_case_in_log(wstest_log)
        log(f"{now - started:5.0f} s, running case {case or '(none yet)'}")


def run_server_mode(args, wstest, workdir, cases, exclude):
    port = free_port()
    server_log = workdir / "server.log"
    wstest_log = workdir / "wstest.log"
    cmd = args.server_cmd.replace("{port}", str(port))
    server = wstest_proc = None
    died = None
    try:
        log(f"starting the server: {cmd}")
        server = start(cmd, server_log, shell=True)
        wait_for_port(port, server, "the server", args.startup_timeout, server_log)
        log(f"server is listening on 127.0.0.1:{port} (log: {shown(server_log)})")
        if args.tls:
            log(f"server speaks TLS ({tls_probe(port)}); wstest connects to wss://")

        spec = write_spec("server", args, port, "reports", cases, exclude)
        (workdir / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
        log(f"running wstest -m fuzzingclient (log: {shown(wstest_log)})")
        started = time.monotonic()
        wstest_proc = start([wstest, "-m", "fuzzingclient", "-s", "spec.json"], wstest_log, cwd=workdir)
        state = {}
        while wstest_proc.poll() is None:
            time.sleep(0.2)
            heartbeat(started, wstest_log, args.heartbeat, state)
            if died is None and server.poll() is not None:
                died = (server.returncode, last_case_in_log(wstest_log), time.monotonic())
                log(f"the server died ({describe_status(server.returncode)}) during case {died[1]}")
            if died is not None and time.monotonic() - died[2] > args.stop_timeout + 30:
                log("wstest did not finish after the server died; stopping it")
                break
            if time.monotonic() - started > args.timeout:
                stop(wstest_proc, "wstest", args.stop_timeout)
                raise RunError(f"wstest did not finish within {args.timeout} s (--timeout)\n{tail(wstest_log)}")
        elapsed = time.monotonic() - started
        wstest_status = stop(wstest_proc, "wstest", args.stop_timeout)
        if wstest_status is not None:
            log(f"wstest finished in {elapsed:.0f} s ({describe_status(wstest_status)})")
        if died is None and server.poll() is not None:
            died = (server.returncode, last_case_in_log(wstest_log), time.monotonic())
    finally:
        stop(wstest_proc, "wstest", args.stop_timeout)
        server_status = stop(server, "the server", args.stop_timeout)
    if died is None and server_status is not None:
        died = (server_status, None, None)
    if died is None and wstest_status not in (0, None):
        raise RunError(f"wstest failed ({describe_status(wstest_status)})\n{tail(wstest_log)}")
    problems = []
    if died is not None:
        where = f" during case {died[1]}" if died[1] else ""
        problems.append(f"the server died{where} ({describe_status(died[0])})\n{tail(server_log)}")
    try:
        results = load_results(workdir / "reports" / "index.json", args.agent)
    except RunError as e:
        if problems:
            return {}, problems + [str(e)]
        raise
    return results, problems


def run_client_mode(args, wstest, workdir, cases, exclude):
    port = free_port()
    client_log = workdir / "client.log"
    wstest_log = workdir / "wstest.log"
    url = f"ws://127.0.0.1:{port}"
    cmd = args.client_cmd.replace("{url}", url).replace("{agent}", args.agent)
    wstest_proc = client = None
    problems = []
    try:
        spec = write_spec("client", args, port, "reports", cases, exclude)
        (workdir / "spec.json").write_text(json.dumps(spec, indent=2) + "\n")
        log(f"starting wstest -m fuzzingserver on {url} (log: {shown(wstest_log)})")
        # -u 0: no embedded web server (it would take port 8080).
        wstest_proc = start([wstest, "-m", "fuzzingserver", "-s", "spec.json", "-u", "0"], wstest_log, cwd=workdir)
        wait_for_port(port, wstest_proc, "wstest", args.startup_timeout, wstest_log)

        log(f"running the client: {cmd} (log: {shown(client_log)})")
        started = time.monotonic()
        client = start(cmd, client_log, shell=True)
        state = {}
        while client.poll() is None:
            time.sleep(0.2)
            heartbeat(started, wstest_log, args.heartbeat, state)
            if wstest_proc.poll() is not None:
                raise RunError(f"wstest exited during the run ({describe_status(wstest_proc.returncode)})\n{tail(wstest_log)}")
            if time.monotonic() - started > args.timeout:
                stop(client, "the client", args.stop_timeout)
                problems.append(f"the client did not finish within {args.timeout} s (--timeout)\n{tail(client_log)}")
                break
        elapsed = time.monotonic() - started
        status = client.returncode
        log(f"the client finished in {elapsed:.0f} s ({describe_status(status)})")
        if status not in (0, None):
            problems.append(f"the client failed ({describe_status(status)})\n{tail(client_log)}")
        log("asking wstest for /updateReports")
        try:
            ws_close_only(port, f"/updateReports?agent={args.agent}")
        except (OSError, RunError) as e:
            # Not fatal by itself: the client may have asked already.
            log(f"/updateReports failed: {e}")
    finally:
        stop(client, "the client", args.stop_timeout)
        stop(wstest_proc, "wstest", args.stop_timeout)
    try:
        results = load_results(workdir / "reports" / "index.json", args.agent)
    except RunError as e:
        if problems:
            return {}, problems + [str(e)]
        raise
    return results, problems


def compare(results, expected, cases, exclude, outdir):
    in_scope = {c: e for c, e in expected.items() if selected(c, cases, exclude)}
    mismatches, missing, unexpected = [], [], []
    for case_id in sorted(set(results) | set(in_scope), key=case_key):
        got, want = results.get(case_id), in_scope.get(case_id)
        if got is None:
            missing.append(case_id)
        elif want is None:
            unexpected.append((case_id, got))
        elif (got["behavior"], got["behaviorClose"]) != (want["behavior"], want["behaviorClose"]):
            mismatches.append((case_id, want, got))
    lines = []
    for case_id, want, got in mismatches:
        lines.append(
            f"MISMATCH {case_id}: expected {want['behavior']}/{want['behaviorClose']}, "
            f"got {got['behavior']}/{got['behaviorClose']}  ({shown(outdir / got['reportfile'])})"
        )
    # A run cut short misses hundreds of cases; name the first ones only.
    for case_id in missing[:MAX_MISSING_SHOWN]:
        lines.append(f"MISSING  {case_id}: in the expected file but not in this run's results")
    if len(missing) > MAX_MISSING_SHOWN:
        lines.append(
            f"MISSING  ... and {len(missing) - MAX_MISSING_SHOWN} more, up to {missing[-1]} "
            f"({len(missing)} cases missing in all)"
        )
    for case_id, got in unexpected:
        lines.append(
            f"EXTRA    {case_id}: got {got['behavior']}/{got['behaviorClose']} but the expected "
            f"file has no entry  ({shown(outdir / got['reportfile'])})"
        )
    return lines, len(mismatches) + len(missing) + len(unexpected)


def shown(path):
    """A path as the user would type it: relative to the working directory
    when it lies below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv=None):
    try:
        return run(argv)
    except RunError as e:
        log(f"ERROR: {e}")
        return 2


def run(argv):
    parser = argparse.ArgumentParser(
        description="Run Autobahn|Testsuite against tether and compare with the expected results.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cases", action="append", metavar="PATTERNS",
                        help="comma-separated case patterns (Autobahn syntax, e.g. '1.*,2.*'); "
                        "default: those in the config file")
    common.add_argument("--exclude", action="append", metavar="PATTERNS",
                        help="comma-separated case patterns to leave out")
    common.add_argument("--compression", action="store_true",
                        help="also run the permessage-deflate cases 12.* and 13.* "
                        "(left out by default)")
    common.add_argument("--expected", type=Path, help="expected results file "
                        "(default conformance/expected/<mode>.json)")
    common.add_argument("--update-expected", action="store_true",
                        help="write the expected file from this run instead of comparing")
    common.add_argument("--agent", help="agent name in wstest's reports")
    common.add_argument("--reports", type=Path, default=HERE / "reports",
                        help="where reports go; the run uses <dir>/<mode>/ (default conformance/reports)")
    common.add_argument("--wstest", help="wstest executable (default: $TETHER_WSTEST, "
                        "else what conformance/wstest-env.sh provides)")
    common.add_argument("--timeout", type=float, default=2400,
                        help="seconds the whole case run may take (default 2400)")
    common.add_argument("--startup-timeout", type=float, default=30,
                        help="seconds to wait for the listening port (default 30)")
    common.add_argument("--stop-timeout", type=float, default=5,
                        help="seconds between SIGTERM and SIGKILL (default 5)")
    common.add_argument("--heartbeat", type=float, default=30,
                        help="seconds between progress lines (default 30)")
    common.add_argument("--no-policy", action="store_true",
                        help="do not enforce the strict policy on the expected file "
                        "(for trying other implementations)")
    p_server = sub.add_parser("server", parents=[common],
                              help="fuzzingclient: test a WebSocket server")
    p_server.add_argument("--server-cmd", required=True,
                          help="shell command starting the server; {port} is replaced")
    p_server.add_argument("--tls", action="store_true",
                          help="the server speaks TLS: wstest connects to wss:// "
                          "(it does not check the certificate)")
    p_client = sub.add_parser("client", parents=[common],
                              help="fuzzingserver: test a WebSocket client")
    p_client.add_argument("--client-cmd", required=True,
                          help="shell command running the client; {url} and {agent} are replaced")
    args = parser.parse_args(argv)

    mode = MODES[args.mode]
    args.agent = args.agent or mode["agent"]
    expected_path = args.expected or mode["expected"]
    config = json.loads(mode["config"].read_text())
    cases = split_patterns(args.cases) or config.get("cases", ["*"])
    exclude = list(config.get("exclude-cases", [])) + split_patterns(args.exclude)
    if not args.compression:
        exclude += [p for p in COMPRESSION_PATTERNS if p not in exclude]

    expected = None
    if not args.update_expected:
        if not expected_path.exists():
            log(f"no expected results at {shown(expected_path)}; make them with --update-expected")
            return 2
        expected = load_expected(expected_path)
        if not args.no_policy:
            bad = policy_violations({c: e for c, e in expected.items() if selected(c, cases, exclude)})
            if bad:
                for case_id, b, bc in bad:
                    log(f"POLICY   {case_id}: expected file says {b}/{bc}; 1.* to 10.* must be OK or INFORMATIONAL")
                log(f"the expected file {shown(expected_path)} breaks the strict policy ({len(bad)} cases)")
                return 1

    # Ctrl-C, SIGTERM and SIGHUP all unwind through the finally blocks that
    # stop the children. SIGINT is handled explicitly too, as a shell starts
    # background jobs with it ignored. Once unwinding, further signals are
    # ignored so that the clean-up itself is not cut short.
    def on_signal(signum, frame):
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    try:
        wstest = find_wstest(args)
        workdir = prepare_workdir(args.reports.resolve(), args.mode)
        log(f"cases {','.join(cases)}; excluded {','.join(exclude) or 'none'}; agent {args.agent}")
        runner = run_server_mode if args.mode == "server" else run_client_mode
        results, problems = runner(args, wstest, workdir, cases, exclude)
    except RunError as e:
        log(f"ERROR: {e}")
        return 2
    except (KeyboardInterrupt, Terminated) as e:
        log(f"interrupted ({e or 'SIGINT'}); children stopped")
        return 130

    outdir = workdir / "reports"
    print()
    print(f"Autobahn|Testsuite, {args.mode} mode, agent {args.agent}: {len(results)} cases "
          f"(reports: {shown(outdir / 'index.html')})")
    print(summary_table(results) if results else "(no results)")
    print()

    if args.update_expected:
        if problems:
            for p in problems:
                print(f"FAILED   {p}")
            log("not writing the expected file from a broken run")
            return 1
        merged = {}
        if expected_path.exists():
            merged = {c: e for c, e in load_expected(expected_path).items()
                      if not selected(c, cases, exclude)}
        merged.update({c: {"behavior": r["behavior"], "behaviorClose": r["behaviorClose"]}
                       for c, r in results.items()})
        expected_path.parent.mkdir(parents=True, exist_ok=True)
        expected_path.write_text(dump_expected(merged))
        print(f"wrote {len(merged)} cases to {shown(expected_path)}; review the diff before committing")
        bad = [] if args.no_policy else policy_violations(merged)
        for case_id, b, bc in bad:
            print(f"POLICY   {case_id}: {b}/{bc}; 1.* to 10.* must be OK or INFORMATIONAL")
        return 1 if bad else 0

    lines, case_problems = compare(results, expected, cases, exclude, outdir)
    for p in problems:
        print(f"FAILED   {p}")
    for line in lines:
        print(line)
    # The last line is the plain "N passed, N failed" that CI logs are read for.
    failed = case_problems + len(problems)
    passed = len(results) - sum(1 for line in lines if line.startswith(("MISMATCH", "EXTRA")))
    if problems or lines:
        print(f"\nFAIL: {case_problems} case(s) differ from {shown(expected_path)}"
              + (f"; {len(problems)} other problem(s)" if problems else ""))
    else:
        print(f"PASS: all {len(results)} cases as expected ({shown(expected_path)})")
    print(f"autobahn: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
