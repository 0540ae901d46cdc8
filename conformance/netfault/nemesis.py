"""The nemesis: faults of the network and of processes, and a seeded
schedule of them.

Every fault has a start and an end (its heal). Partitions are iptables
rules inside a host's namespace (packets dropped, not refused: the peer
sees silence, as across a real partition, not a reset); a pause is
SIGSTOP then SIGCONT. A lossy, slow, reordering or duplicating link is
made without netem, which not every kernel has (this project's test
machines' do not): loss with iptables' `statistic` match, duplicates
with nftables' `dup` on the host's egress, delay and reordering by
delayer.py holding the host's packets from an NFQUEUE. `heal_all` undoes
every kind on every host, whatever a failed run left.
"""

import os
import random
import signal
import subprocess


class Faults:
    """Knows the topology and the processes of a run (`procs`: a
    name -> object with `.pause()`, `.resume()`, `.kill()`, `.start()`)."""

    def __init__(self, topo, procs, python, work, master=None):
        self.topo = topo
        self.procs = procs
        self.python = python
        self.work = work
        self.delayers = {}
        # MASTER() names the process of the bus's master now (a bus
        # whose master moves: redis-sentinel).
        self.master = master

    # --- the parts ---------------------------------------------------------

    def drop(self, host, peer, direction, on):
        """Drops, on HOST, what comes from PEER (`in`) or goes to it
        (`out`); `on=False` removes the rule."""
        chain, flag = ("INPUT", "-s") if direction == "in" else ("OUTPUT", "-d")
        action = "-I" if on else "-D"
        self.topo.on(host, "iptables", action, chain, flag, self.topo.addr(peer), "-j", "DROP",
                     check=on)

    def cut(self, side_a, side_b, on, one_way=False):
        """No packet between any host of A and any host of B (or, one
        way, none from B reaches A)."""
        for a in side_a:
            for b in side_b:
                self.drop(a, b, "in", on)
                if not one_way:
                    self.drop(a, b, "out", on)

    def lose(self, host, percent, on):
        """Drops PERCENT % of what HOST sends and of what it receives."""
        for chain in ("INPUT", "OUTPUT"):
            self.topo.on(host, "iptables", "-I" if on else "-D", chain, "-m", "statistic", "--mode", "random",
                         "--probability", f"{percent / 100:.3f}", "-j", "DROP", check=on)

    def duplicate(self, host, percent, on):
        """Sends PERCENT % of what HOST sends twice."""
        if not on:
            self.topo.on(host, "nft", "delete", "table", "netdev", "nemesis", check=False)
            return
        self.topo.on(host, "nft", "add", "table", "netdev", "nemesis")
        self.topo.on(host, "nft", "add chain netdev nemesis out "
                                  "{ type filter hook egress device \"eth0\" priority 0; }")
        self.topo.on(host, "nft", "add", "rule", "netdev", "nemesis", "out", "numgen", "random", "mod", "100",
                     "<", str(percent), "dup", "to", "eth0")

    def delay(self, host, delay_ms, jitter_ms, reorder_pct, on):
        """Holds what HOST sends and receives for DELAY_MS (+- JITTER_MS),
        all but REORDER_PCT % of it."""
        rules = [("INPUT",), ("OUTPUT",)]
        if not on:
            proc = self.delayers.pop(host, None)
            for (chain,) in rules:
                self.topo.on(host, "iptables", "-D", chain, "-j", "NFQUEUE", "--queue-num", "7",
                             "--queue-bypass", check=False)
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
            return
        self.delayers[host] = self.topo.spawn(host, [
            self.python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "delayer.py"),
            "--queue", "7", "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms),
            "--reorder-pct", str(reorder_pct),
        ], os.path.join(self.work, f"delayer-{host}.log"))
        for (chain,) in rules:
            self.topo.on(host, "iptables", "-I", chain, "-j", "NFQUEUE", "--queue-num", "7", "--queue-bypass")

    def heal_all(self):
        for host in list(self.delayers):
            self.delay(host, 0, 0, 0, False)
        for host in self.topo.hosts:
            self.topo.on(host, "iptables", "-F", check=False)
            self.duplicate(host, 0, False)
        for proc in self.procs.values():
            proc.resume()

    # --- the faults, as (start, end) ----------------------------------------

    def fault(self, kind, target):
        """(description, start, end) of one fault."""
        bus = self.bus_hosts()
        nodes = self.node_hosts()
        if kind == "partition-node-bus":
            return (f"{target} cut off from the bus {bus}",
                    lambda: self.cut([target], bus, True),
                    lambda: self.cut([target], bus, False))
        if kind == "partition-one-way":
            return (f"nothing from the bus {bus} reaches {target} (it still sends)",
                    lambda: self.cut([target], bus, True, one_way=True),
                    lambda: self.cut([target], bus, False, one_way=True))
        if kind == "partition-halves":
            # One node (and, of a clustered bus, a minority of its
            # servers) on one side, the rest on the other.
            half = nodes[: len(nodes) // 2] + bus[: len(bus) // 2]
            rest = [h for h in nodes + bus if h not in half]
            return (f"{half} cut off from {rest}",
                    lambda: self.cut(half, rest, True),
                    lambda: self.cut(half, rest, False))
        if kind == "pause":
            proc = self.procs[target]
            return (f"{target} paused (SIGSTOP)", proc.pause, proc.resume)
        if kind == "loss":
            return (f"10 % of {target}'s packets lost, each way",
                    lambda: self.lose(target, 10, True), lambda: self.lose(target, 10, False))
        if kind == "duplicate":
            return (f"5 % of what {target} sends sent twice",
                    lambda: self.duplicate(target, 5, True), lambda: self.duplicate(target, 5, False))
        if kind == "delay":
            return (f"{target}'s packets held 200 ms +- 50 ms, each way",
                    lambda: self.delay(target, 200, 50, 0, True), lambda: self.delay(target, 0, 0, 0, False))
        if kind == "reorder":
            return (f"{target}'s packets held 20 ms, but 25 % of them at once (reordered)",
                    lambda: self.delay(target, 20, 0, 25, True), lambda: self.delay(target, 0, 0, 0, False))
        if kind == "kill-partitioned":
            proc = self.procs[target]

            def start():
                self.cut([target], bus, True)
                proc.kill()

            def end():
                proc.start()
                self.cut([target], bus, False)

            return (f"{target} cut off from the bus, killed (SIGKILL), started again while cut off, then healed",
                    start, end)
        if kind == "bus-restart":
            proc = self.procs[target]
            return (f"{target} killed (SIGKILL) and started again (Redis empty: it keeps nothing on disk; "
                    "NATS with its JetStream store; a RabbitMQ node with its data)", proc.kill, proc.start)
        if kind == "master-kill":
            # Asked now, just before it starts: the master moves.
            name = self.master() if self.master else None
            if name is None:
                raise RuntimeError("master-kill: no master named by the bus")
            proc = self.procs[name]
            return (f"the master {name} killed (SIGKILL) while publishes go on; started again as a replica of "
                    "the master the sentinels name (once they have failed over)", proc.kill, proc.start)
        raise ValueError(f"unknown fault {kind}")

    def bus_hosts(self):
        return [h for h in self.topo.hosts if h.startswith("bus")]

    def node_hosts(self):
        return [h for h in self.topo.hosts if h.startswith("n")]


# Which faults a schedule draws from, and what each is aimed at: a node,
# a bus server (process), any process, any host (its link), or nothing.
KINDS = {
    "partition-node-bus": "node",
    "partition-one-way": "node",
    "partition-halves": None,
    "pause": "any-proc",
    "loss": "any-host",
    "delay": "any-host",
    "reorder": "any-host",
    "duplicate": "any-host",
    "kill-partitioned": "node",
    "bus-restart": "bus-proc",
    "master-kill": "bus-master",
}

# Faults only some buses have: the fault -> those buses.
ONLY_ON = {"master-kill": ("redis-sentinel",)}

# Played first when drawn from, whatever the seed: the fault a bus's run
# is there for, which a short schedule (fewer faults than kinds) might
# otherwise leave out.
LEADING = ("master-kill",)


def kinds_for(bus, kinds=None):
    """The kinds a run on BUS draws from (of KINDS, by default)."""
    return [k for k in sorted(kinds or KINDS) if bus in ONLY_ON.get(k, (bus,))]


def schedule(seed, seconds, nodes, bus_procs, bus_hosts, kinds=None, fault_seconds=(2.5, 5.0),
             calm_seconds=(1.5, 3.0)):
    """A list of (at, duration, kind, target) filling SECONDS, drawn from
    SEED: the same seed gives the same schedule."""
    rng = random.Random(seed)
    kinds = sorted(kinds or KINDS)
    aims = {"node": nodes, "bus-proc": bus_procs, "any-proc": nodes + bus_procs, "any-host": nodes + bus_hosts,
            "bus-master": ["master"]}
    plan = []
    at = rng.uniform(*calm_seconds)
    # Every kind once first (in a seeded order), then at random.
    order = rng.sample(kinds, len(kinds))
    order.sort(key=lambda k: k not in LEADING)
    while True:
        kind = order.pop(0) if order else rng.choice(kinds)
        aim = KINDS[kind]
        target = rng.choice(aims[aim]) if aim else None
        duration = round(rng.uniform(*fault_seconds), 1)
        if at + duration > seconds:
            break
        plan.append((round(at, 1), duration, kind, target))
        at += duration + rng.uniform(*calm_seconds)
    return plan
