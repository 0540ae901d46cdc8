"""The chaos test's buses (chaos.py): a Redis Cluster of servers run as
plain processes on free loopback ports, with their data in the phase's
directory.

A bus answers what the phase's driver asks of a bus: start and stop, the
`tether serve` options a node joins it with, topic names to publish on,
and `fail(topic)`, which kills (SIGKILL) the server a topic depends on
and returns once the bus serves the topic again.
"""

import os
import signal
import socket
import subprocess
import time

from proxy_client import CheckFailed, expect


def free_ports(count):
    ports = set()
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.add(s.getsockname()[1])
    return sorted(ports)


def wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (OSError, ValueError, subprocess.SubprocessError):
            pass
        time.sleep(0.1)
    raise CheckFailed(f"waited {seconds} s for {what}")


def redis_cli(port, *args, timeout=5):
    done = subprocess.run(["redis-cli", "-p", str(port), *args],
                          capture_output=True, text=True, timeout=timeout)
    return done.stdout


# --- the Redis Cluster ------------------------------------------------------------


class RedisCluster:
    """Six redis-server children, three primaries with a replica each;
    a topic's primary killed, its replica takes over."""

    name = "cluster"

    def __init__(self, work):
        self.dir = os.path.join(work, "redis")
        os.makedirs(self.dir)
        ports = free_ports(12)
        self.ports = ports[:6]
        self.buses = ports[6:]
        self.procs = {}

    def start(self):
        for port, bus in zip(self.ports, self.buses):
            log = open(os.path.join(self.dir, f"redis-{port}.log"), "wb")
            self.procs[port] = subprocess.Popen([
                "redis-server", "--bind", "127.0.0.1", "--port", str(port),
                "--cluster-enabled", "yes", "--cluster-port", str(bus),
                "--cluster-config-file", os.path.join(self.dir, f"nodes-{port}.conf"),
                "--cluster-node-timeout", "2000",
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", self.dir,
                # A snapshot file per node: a replica's first sync goes
                # through its primary's RDB file, and one shared file could
                # hand a replica another primary's data.
                "--dbfilename", f"dump-{port}.rdb",
            ], stdout=log, stderr=subprocess.STDOUT)
            log.close()
        for port in self.ports:
            wait_for(lambda: redis_cli(port, "ping").strip() == "PONG", 10, f"redis-server on {port}")
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
             "--cluster-replicas", "1", "--cluster-yes"],
            capture_output=True, text=True, timeout=30)
        expect(created.returncode == 0, f"redis-cli --cluster create: {created.stdout[-500:]}")
        wait_for(self.healthy, 20, "the cluster to be ok on every node")

    def alive(self):
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def healthy(self):
        for port in self.alive():
            if "cluster_state:ok" not in redis_cli(port, "cluster", "info"):
                return False
        return True

    def tether_options(self, index):
        return ["--redis", "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)]

    def primaries(self):
        """{port: [(first slot, last slot), ...]} of the live primaries."""
        owners = {}
        for line in redis_cli(self.alive()[0], "cluster", "nodes").splitlines():
            fields = line.split()
            if len(fields) < 8 or "master" not in fields[2] or "fail" in fields[2]:
                continue
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            ranges = []
            for slots in fields[8:]:
                if slots.startswith("["):
                    continue
                first, _, last = slots.partition("-")
                ranges.append((int(first), int(last or first)))
            if ranges:
                owners[port] = ranges
        return owners

    def owner(self, slot):
        for port, ranges in self.primaries().items():
            if any(first <= slot <= last for first, last in ranges):
                return port
        return None

    def slot(self, topic):
        # The bridge's keys for a topic are hash-tagged with its name.
        return int(redis_cli(self.alive()[0], "cluster", "keyslot", f"tether:{{{topic}}}"))

    def pick_topics(self, count):
        """COUNT topic names whose slots cover every primary, and a line
        that says where they are."""
        primaries = self.primaries()
        expect(len(primaries) == 3, f"primaries with slots: {primaries}")
        owners = {}
        for topic in (f"chaos.t{i}" for i in range(100)):
            owner = self.owner(self.slot(topic))
            if owner is not None and (owner not in owners.values() or len(set(owners.values())) == 3):
                owners[topic] = owner
            if len(owners) == count:
                return list(owners), f"redis primaries {sorted(primaries)}, topics {owners}"
        raise CheckFailed(f"no {count} topics over the primaries {sorted(primaries)}: {owners}")

    def fail(self, topic, log):
        slot = self.slot(topic)
        primary = self.owner(slot)
        self.procs[primary].send_signal(signal.SIGKILL)
        self.procs[primary].wait()
        log(f"redis primary {primary} (slot of {topic}) killed (SIGKILL)")
        wait_for(lambda: self.owner(slot) not in (None, primary) and self.healthy(),
                 20, "the replica to take over")
        log(f"{self.owner(slot)} is the primary of {topic}'s slot")

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
