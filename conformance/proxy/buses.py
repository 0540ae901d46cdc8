"""The chaos test's buses (chaos.py): a Redis Cluster and a RabbitMQ
cluster, each of three servers run as plain processes on free loopback
ports, with their data in the phase's directory.

Both answer what the phase's driver asks of a bus: start and stop, the
`tether serve` options a node joins it with, topic names to publish on,
and `fail(topic)`, which kills (SIGKILL) the server a topic depends on
and returns once the bus serves the topic again.
"""

import json
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


def listening(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


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


# --- the RabbitMQ cluster ---------------------------------------------------------

# Debian's package: the server script (run as is, not the wrapper that
# switches to the rabbitmq user) and the CLI.
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"


class RabbitCluster:
    """Three rabbitmq-server nodes clustered, with an Erlang port mapper
    of their own (the one a server starts by itself is a daemon that
    outlives the run); each tether node lists all three, its own first
    one in turn, and creates streams of three replicas. The node that
    is a topic's stream's writer (its leader) killed, a replica takes
    over once the two left agree.

    Every server is the Erlang VM itself (`RUNNING_UNDER_SYSTEMD` makes
    the script exec it, not wait on it): SIGKILL reaches the broker, and
    it stays in the run's process group, which chaos.sh ends."""

    name = "rabbitmq"
    # A node's boot, side by side with two others on a busy machine.
    PATIENCE = 60

    def __init__(self, work):
        self.dir = os.path.join(work, "rabbitmq")
        os.makedirs(self.dir)
        ports = free_ports(7)
        self.epmd_port = ports.pop()
        self.ports = ports[:3]
        self.dist_ports = ports[3:]
        self.cookie = os.urandom(16).hex()
        self.names = [f"chaos{self.epmd_port}n{i}@localhost" for i in range(3)]
        self.epmd = None
        self.procs = {}

    def home(self, i):
        return os.path.join(self.dir, f"node{i}")

    def env(self, i):
        return dict(os.environ, HOME=self.home(i), ERL_EPMD_PORT=str(self.epmd_port))

    def start(self):
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: listening(self.epmd_port), 10, "epmd")
        for i in range(3):
            self.configure(i)
        # The first forms the cluster and is up before the others join it
        # as they boot (classic_config peer discovery, retried until it
        # answers), which needs no rabbitmqctl and no restart. Not side
        # by side: a node that joins a seed still booting copies its
        # tables before the seed's feature flags change them, and stops
        # at a schema mismatch (seen with 3.10.8 on a busy machine).
        self.launch(0)
        self.wait_listening(0)
        for i in (1, 2):
            self.launch(i)
        for i in (1, 2):
            self.wait_listening(i)
        status = self.ctl(0, "cluster_status", "--formatter", "json")
        running = json.loads(status).get("running_nodes", [])
        expect(sorted(running) == sorted(self.names), f"the cluster runs {running}, not {self.names}")

    def configure(self, i):
        home = self.home(i)
        os.makedirs(os.path.join(home, "log"))
        conf = f"listeners.tcp.default = 127.0.0.1:{self.ports[i]}\nloopback_users = none\n"
        if i > 0:
            conf += ("cluster_formation.peer_discovery_backend = classic_config\n"
                     f"cluster_formation.classic_config.nodes.1 = {self.names[0]}\n"
                     "cluster_formation.discovery_retry_limit = 240\n"
                     "cluster_formation.discovery_retry_interval = 250\n")
        with open(os.path.join(home, "rabbitmq.conf"), "w") as out:
            out.write(conf)
        # tether reads and writes its streams over AMQP 0-9-1: no plugin.
        with open(os.path.join(home, "enabled_plugins"), "w") as out:
            out.write("[].\n")
        cookie = os.path.join(home, ".erlang.cookie")
        with open(os.open(cookie, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400), "w") as out:
            out.write(self.cookie)

    def launch(self, i):
        home = self.home(i)
        env = dict(self.env(i), RABBITMQ_NODENAME=self.names[i], RABBITMQ_NODE_PORT=str(self.ports[i]),
                   RABBITMQ_DIST_PORT=str(self.dist_ports[i]), RABBITMQ_MNESIA_BASE=f"{home}/mnesia",
                   RABBITMQ_LOG_BASE=f"{home}/log", RABBITMQ_CONFIG_FILE=f"{home}/rabbitmq",
                   RABBITMQ_ENABLED_PLUGINS_FILE=f"{home}/enabled_plugins", RUNNING_UNDER_SYSTEMD="true")
        log = open(os.path.join(home, "log", "console.log"), "ab")
        self.procs[i] = subprocess.Popen([RABBITMQ_SERVER], env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def wait_listening(self, i):
        def up():
            expect(self.procs[i].poll() is None,
                   f"{self.names[i]} exited with {self.procs[i].returncode}: see {self.home(i)}/log")
            return listening(self.ports[i])
        wait_for(up, self.PATIENCE, f"{self.names[i]} to accept AMQP connections")

    def ctl(self, i, *args):
        done = subprocess.run([RABBITMQCTL, "-q", "-n", self.names[i], *args], env=self.env(i),
                              capture_output=True, text=True, timeout=30)
        expect(done.returncode == 0, f"rabbitmqctl {' '.join(args)} on {self.names[i]}: {done.stderr[-300:]}")
        return done.stdout

    def alive(self):
        return [i for i, proc in self.procs.items() if proc.poll() is None]

    def tether_options(self, index):
        order = [(index + k) % 3 for k in range(3)]
        addresses = ",".join(f"127.0.0.1:{self.ports[i]}" for i in order)
        return ["--rabbitmq-url", f"amqp://guest:guest@{addresses}/%2f", "--rabbitmq-replicas", "3"]

    def pick_topics(self, count):
        topics = [f"chaos.t{i}" for i in range(count)]
        return topics, f"rabbitmq nodes {dict(zip(self.names, self.ports))}, topics {topics}"

    def leader(self, topic):
        """The node (its index) that is the writer of TOPIC's stream, as
        a live node reports it; None when it has none."""
        rows = json.loads(self.ctl(self.alive()[0], "list_queues", "name", "leader", "--formatter", "json"))
        stream = f"tether.topic.{topic}"
        for row in rows:
            if row.get("name") == stream and row.get("leader") in self.names:
                return self.names.index(row["leader"])
        return None

    def fail(self, topic, log):
        # Not started again: the two left are a majority of every
        # stream's three replicas, and confirm publishes by themselves.
        writer = self.leader(topic)
        expect(writer is not None, f"no writer for {topic}'s stream")
        self.procs[writer].send_signal(signal.SIGKILL)
        self.procs[writer].wait()
        log(f"rabbitmq node {self.names[writer]}, the writer of {topic}'s stream, killed (SIGKILL)")
        def moved():
            try:
                return self.leader(topic) not in (None, writer)
            except CheckFailed:
                return False  # the survivors' CLI answers not yet
        wait_for(moved, 30, "a replica to take the stream over")
        log(f"{self.names[self.leader(topic)]} writes {topic}'s stream")

    def stop(self):
        # The data goes with the run's directory: no clean shutdown to
        # wait for.
        for proc in [*self.procs.values(), self.epmd]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
