"""One fault run: hosts in network namespaces, a bus, two tether nodes
behind HAProxy, clients, a seeded nemesis, then the checker.

    run.py --tether BIN --python VENV_PYTHON --work DIR --bus redis|nats
           [--seed N] [--seconds 60] [--prefix tnf] [--kinds K,K]

Hosts (topology.py): `bus` (redis-server without persistence, or
nats-server with JetStream and its store), `n1` and `n2` (`tether serve
--app hub --memory --redis ...` or `--nats ...`), `lb`
(HAProxy, round robin, no affinity) and `cl` (workload.py: publishers and
subscribers through HAProxy). The nemesis (nemesis.py) draws a schedule
from the seed, prints it, and plays it while the clients run; every
fault's start and end go into the history beside the clients' records.
Then everything is healed, the clients settle, and checker.py reads the
history. Prints `ok NAME` / `FAIL NAME` lines; exits 1 on any failure.
Everything started runs inside the run's namespaces, and they are torn
down at the end (topology.teardown), whatever happened.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
READY_WITHIN = 30  # seconds a started process has to answer ready
sys.path.insert(0, HERE)

import buses  # noqa: E402
import checker  # noqa: E402
import nemesis  # noqa: E402
from topology import Topology  # noqa: E402

PORT = 8080
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


class Process:
    """A server on a host, started again by `start()` with the same
    command; `pause`, `resume` and `kill` by its own pid."""

    def __init__(self, topo, host, name, argv, work, env=None, ready=None):
        self.topo = topo
        self.host = host
        self.name = name
        self.argv = argv
        self.work = work
        self.env = env
        self.ready = ready
        # Seconds a start may take until ready.
        self.patience = READY_WITHIN
        self.proc = None
        self.paused = False
        self.starts = 0

    def start(self, wait=True):
        self.starts += 1
        log = os.path.join(self.work, f"{self.name}.log")
        with open(log, "ab") as out:
            out.write(f"--- start {self.starts} at {time.time():.3f}\n".encode())
        # A command may be decided at each start (a Redis data node's
        # role under Sentinel).
        argv = self.argv() if callable(self.argv) else self.argv
        self.proc = self.topo.spawn(self.host, argv, log, self.env)
        self.paused = False
        if wait:
            self.wait_ready()

    def wait_ready(self):
        if self.ready is not None:
            # A bound, not a figure: a JetStream server restarted on a
            # busy machine (the buses' runs side by side, builds beside
            # them) took more than 15 s to answer ready.
            deadline = time.monotonic() + self.patience
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode} at start")
                if self.ready():
                    return
                time.sleep(0.1)
            raise RuntimeError(f"{self.name} was not ready within {self.patience} s")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pause(self):
        if self.alive():
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.alive() and self.paused:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.alive():
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.kill()


def answers(topo, host, url):
    """Whether URL answers 200 from HOST (curl inside its namespace)."""
    out = topo.on(host, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1", url, check=False)
    return out.strip() == "200"


def haproxy_config(topo, path, check="readyz"):
    nodes = "\n".join(f"    server {n} {topo.addr(n)}:{PORT}" for n in ("n1", "n2"))
    shutdown = " on-marked-down shutdown-sessions" if check == "readyz" else ""
    # The shared conditions (the bus away) count too: this balancer has a
    # fallback for when every node fails them.
    target = "/readyz?shared=1" if check == "readyz" else "/healthz"
    text = f"""global
    maxconn 2048

defaults
    mode http
    timeout client 30s
    timeout server 30s
    timeout tunnel 30s
    timeout connect 1s
    timeout http-request 10s
    retries 2
    option redispatch 1

frontend tether
    bind {topo.addr("lb")}:{PORT}
    # No node has its bus (the bus restarted): any live node rather than
    # a 503 of HAProxy's own, after which an EventSource never reconnects.
    use_backend tether_live if {{ nbsrv(tether_nodes) eq 0 }}
    default_backend tether_nodes

backend tether_nodes
    balance roundrobin
    # /readyz?shared=1, not /healthz: a node cut off from its bus answers
    # 503 there, is taken out, and its clients are cut so that they resume
    # on the other node instead of waiting for this one's bus.
    option httpchk GET {target}
    default-server check inter 500ms fall 2 rise 2{shutdown}
{nodes}

backend tether_live
    balance roundrobin
    option httpchk GET /healthz
    default-server check inter 500ms fall 2 rise 2
{nodes}
"""
    with open(path, "w") as out:
        out.write(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tether", required=True)
    parser.add_argument("--python", required=True, help="a Python with websockets, for the clients")
    parser.add_argument("--work", required=True)
    parser.add_argument("--bus", choices=["redis", "redis-cluster", "redis-sentinel", "nats", "nats-cluster",
                                          "rabbitmq-cluster"], default="redis")
    parser.add_argument("--nats-server", default="nats-server", help="the nats-server binary, for --bus nats")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--settle", type=float, default=40.0)
    parser.add_argument("--prefix", default="tnf")
    parser.add_argument("--late-bound", type=float, default=30.0)
    parser.add_argument("--topics", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=3, help="per transport and topic")
    parser.add_argument("--mux", type=int, default=2, help="WebSockets following every topic on one /ws")
    parser.add_argument("--mux-sse", type=int, default=2,
                        help="event streams following every topic on one /events?topic=...")
    parser.add_argument("--kinds", default=None,
                        help="the faults to draw from, comma-separated (default: every kind nemesis.py knows)")
    parser.add_argument("--fault-seconds", default="2.5,5",
                        help="how long a fault lasts, drawn between MIN,MAX seconds")
    parser.add_argument("--follow", help="tether-client's follow example, as one more subscriber per topic")
    parser.add_argument("--node", help="node, to run the browser client as one more subscriber per topic")
    parser.add_argument("--spare-bus-servers", action="store_true",
                        help="no fault stops a bus server (no pause, no restart): on a Redis Cluster those fail "
                             "a primary over, and an acknowledged event in the replication window is lost")
    parser.add_argument("--skew", type=int, default=None,
                        help="seconds the clock of the node on host ck is ahead (negative: behind), by "
                             "libfaketime; default drawn from the seed, 90 to 150 either way; 0: no such node")
    parser.add_argument("--lb-check", choices=["readyz", "healthz"], default="readyz",
                        help="what HAProxy checks the nodes with: readyz (a node without its bus is taken out "
                             "and its sessions cut) or healthz (only a node that does not answer)")
    parser.add_argument("--drop-acknowledged", action="store_true",
                        help="the injected fault that shows the checker works: delete "
                             "acknowledged events from the bus behind the hub's back")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    os.makedirs(args.work, exist_ok=True)
    token = f"nf-{seed}"
    failed = 0
    # Far enough outside a token's life (45 s) plus the leeway (30 s) that
    # the node on ck refuses every probe token, whichever way its clock is
    # off.
    rng = random.Random(seed)
    skew = args.skew if args.skew is not None else rng.choice((-1, 1)) * rng.randint(90, 150)
    if skew and not os.path.exists(LIBFAKETIME):
        print(f"    {args.bus}: no {LIBFAKETIME} (Debian's libfaketime): no clock skew", flush=True)
        skew = 0

    def report(ok, name, detail):
        nonlocal failed
        failed += 0 if ok else 1
        print(f"{'ok' if ok else 'FAIL'} {args.bus}: {name}: {detail}", flush=True)

    # ck: a node whose clock is off (libfaketime), on no bus and behind
    # no load balancer, which only the identity probes reach.
    topo = Topology(args.prefix, [*buses.hosts(args.bus), "n1", "n2", "lb", "cl", *(["ck"] if skew else [])])
    procs = {}
    clock_node = None
    workload = None
    try:
        topo.up()
        bus_procs, bus_option = buses.start(
            args.bus, topo, args.work,
            lambda host, name, argv, ready: Process(topo, host, name, argv, args.work, ready=ready),
            lambda host, url: answers(topo, host, url), args.nats_server)
        procs.update(bus_procs)
        env = dict(os.environ, TETHER_PUBLISH_TOKEN=token)
        secret = os.path.join(args.work, "jwt.secret")
        with open(secret, "wb") as out:
            out.write(os.urandom(32).hex().encode())
        skews = {"n1": 0, "n2": 0, **({"ck": skew} if skew else {})}
        for node in skews:
            addr = topo.addr(node)
            node_env = env
            if skews[node]:
                # Only the wall clock: timers and timeouts run on the
                # monotonic clock, which stays true.
                node_env = dict(env, LD_PRELOAD=LIBFAKETIME, FAKETIME=f"{skews[node]:+d}",
                                FAKETIME_DONT_FAKE_MONOTONIC="1")
            clocked = Process(
                topo, node, node,
                [args.tether, "serve", "--app", "hub", "--memory", "--threads", "1",
                 "--addr", addr, "--port", str(PORT),
                 *(bus_option if node != "ck" else []),
                 "--jwt-secret-file", secret, "--jwt-leeway", "30",
                 "--sse-heartbeat", "1", "--ping-interval", "1", "--log-level", "info", "--access-log"],
                args.work, env=node_env,
                ready=lambda addr=addr: answers(topo, "cl", f"http://{addr}:{PORT}/healthz"))
            clocked.start()
            if node == "ck":
                clock_node = clocked
            else:
                procs[node] = clocked
        config = os.path.join(args.work, "haproxy.cfg")
        haproxy_config(topo, config, args.lb_check)
        lb = Process(topo, "lb", "haproxy", ["haproxy", "-db", "-f", config], args.work,
                     ready=lambda: answers(topo, "cl", f"http://{topo.addr('lb')}:{PORT}/healthz"))
        lb.start()

        kinds = nemesis.kinds_for(args.bus, args.kinds.split(",") if args.kinds else None)
        targets = sorted(bus_procs)
        if args.spare_bus_servers:
            kinds = [k for k in kinds if nemesis.KINDS[k] not in ("bus-proc", "bus-master")]
            targets = []
        if not kinds:
            raise RuntimeError(f"no fault of --kinds {args.kinds} applies to {args.bus}")
        plan = nemesis.schedule(seed, args.seconds, ["n1", "n2"], targets, buses.hosts(args.bus), kinds=kinds,
                               fault_seconds=tuple(float(x) for x in args.fault_seconds.split(",")))
        print(f"    {args.bus}: seed {seed}; {len(plan)} faults in {args.seconds:.0f} s "
              f"(repeat with --seed {seed}); the clock of the node on ck {skew:+d} s:", flush=True)
        for at, duration, kind, target in plan:
            print(f"    {args.bus}:   at {at:5.1f} s for {duration:.1f} s: {kind} {target or ''}", flush=True)

        history = os.path.join(args.work, "history.jsonl")
        faults_log = os.path.join(args.work, "faults.jsonl")
        workload = topo.spawn("cl", [
            args.python, os.path.join(HERE, "workload.py"),
            "--base", f"http://{topo.addr('lb')}:{PORT}", "--token", token, "--history", history,
            "--topics", str(args.topics), "--subscribers", str(args.subscribers),
            "--mux", str(args.mux), "--mux-sse", str(args.mux_sse),
            "--seconds", str(args.seconds), "--settle", str(args.settle), "--work", args.work,
            *(["--follow", args.follow] if args.follow else []),
            *(["--node", args.node] if args.node else []),
            "--nodes", ",".join(f"{n}=http://{topo.addr(n)}:{PORT}" for n in skews),
            "--skews", ",".join(f"{n}={v}" for n, v in skews.items()),
            "--jwt-secret", secret,
        ], os.path.join(args.work, "workload.log"))

        faults = nemesis.Faults(topo, procs, args.python, args.work,
                                master=lambda: buses.master(args.bus, topo, args.work))
        started = time.monotonic() + 1.0  # the workload publishes a second after it starts
        with open(faults_log, "a", buffering=1) as log:
            def mark(kind, target, phase, description):
                log.write(json.dumps({"t": round(time.time(), 4), "type": "fault", "kind": kind,
                                      "target": target, "phase": phase, "description": description}) + "\n")

            for at, duration, kind, target in plan:
                time.sleep(max(0.0, started + at - time.monotonic()))
                description, begin, end = faults.fault(kind, target)
                mark(kind, target, "start", description)
                fault_started = time.time()
                begin()
                time.sleep(duration)
                if args.drop_acknowledged and args.bus == "redis":
                    drop_acknowledged(topo, history, fault_started)
                end()
                mark(kind, target, "end", description)
            time.sleep(max(0.0, started + args.seconds - time.monotonic()))
        faults.heal_all()
        for name in procs:
            if not procs[name].alive():
                procs[name].start()
        try:
            workload.wait(timeout=args.settle + 30)
        except subprocess.TimeoutExpired:
            report(False, "the clients", f"still running {args.settle + 30:.0f} s after publishing stopped")
            workload.kill()
        report(workload.returncode == 0, "the clients ran to the end",
               f"exit {workload.returncode} (workload.log)")
        # What each node counted (the bus's reads, errors, resynchronisations),
        # kept beside its log for whoever reads a failed run.
        for name in ("n1", "n2"):
            out = topo.on("cl", "curl", "-s", "-m", "2", f"http://{topo.addr(name)}:{PORT}/metrics", check=False)
            with open(os.path.join(args.work, f"{name}.metrics"), "w") as kept:
                kept.write(out)

        summary, anomalies = checker.check(checker.load([history, faults_log]), args.late_bound)
        print(f"    {args.bus}: {summary['publishes']} publishes: {summary['ok']} ok, {summary['fail']} failed, "
              f"{summary['unknown']} indeterminate ({summary['unknown_delivered']} delivered); "
              f"{summary['subscribers']} subscribers ({summary['streams']} streams of a subscriber and a "
              f"topic), {summary['deliveries']} deliveries, "
              f"{summary['reconnections']} reconnections, {summary['gaps']} gap signals; "
              f"{summary['faults']} faults; acknowledgement to delivery p50 {summary['lag_p50']} s, "
              f"max {summary['lag_max']} s", flush=True)
        print(f"    {args.bus}: by kind of subscriber: {checker.describe_kinds(summary)}", flush=True)
        print(f"    {args.bus}: identity probes: {summary['identity_tries']} tries, {summary['identity_judged']} "
              f"judged, {summary['identity_refused']} refused (ck's clock {skew:+d} s); presence after the "
              f"heal: {summary['presence_complete']} of {summary['presence_reads']} readings listed every "
              f"member connected ({', '.join(summary['presence'])})", flush=True)
        with open(os.path.join(args.work, "summary.json"), "w") as out:
            json.dump({"bus": args.bus, "seed": seed, "seconds": args.seconds, "skew": skew, "plan": plan,
                       "summary": summary, "anomalies": {k: len(v) for k, v in anomalies.items()}}, out)
        silent = [name for name, kind in summary["kinds"].items() if kind["deliveries"] == 0]
        report(summary["ok"] > 0 and summary["subscribers"] > 0 and not silent,
               "publishes acknowledged and delivered to every kind of subscriber",
               f"{summary['ok']} acknowledged" + (f"; nothing delivered to {', '.join(silent)}" if silent else ""))
        for kind in checker.KINDS:
            found = anomalies[kind]
            report(not found, f"no {kind}", "none" if not found else f"{len(found)}: " + "; ".join(found[:3]))
    except (RuntimeError, OSError) as error:
        report(False, "setup", str(error))
    finally:
        if workload is not None and workload.poll() is None:
            workload.kill()
        for proc in [*procs.values(), *([clock_node] if clock_node else [])]:
            proc.stop()
        topo.down()
    return 1 if failed else 0


def drop_acknowledged(topo, history, since):
    """Deletes from the Redis streams, just before a fault heals, the
    events acknowledged since it began: acknowledged events lost behind
    the hub's back. A node cut off meanwhile catches up from the streams
    without them, so its subscribers never get them and are not told:
    the checker must report them lost."""
    dropped = {}
    try:
        with open(history) as lines:
            for line in lines:
                record = json.loads(line)
                if record["type"] == "publish" and record["outcome"] == "ok" and record["t"] >= since:
                    dropped.setdefault(record["topic"], []).append(record["id"])
    except (OSError, ValueError):
        return
    for topic, ids in dropped.items():
        topo.on("bus", "redis-cli", "-h", topo.addr("bus"), "-p", str(buses.REDIS_PORT), "XDEL", f"tether:{topic}", *ids,
                check=False)


if __name__ == "__main__":
    sys.exit(main())
