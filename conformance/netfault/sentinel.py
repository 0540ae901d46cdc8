"""The `redis-sentinel` bus of a fault run: a Redis master with two
replicas and three sentinels, one of each kind on each of bus1..bus3,
the data over TLS.

The data nodes listen on TLS alone (`--port 0 --tls-port`), ask every
client for a certificate (`tls-auth-clients yes`) and replicate over TLS;
the sentinels speak TLS to the data nodes and to each other
(`tls-replication yes`) and listen on TLS alone too (`port 0`,
`tls-port`, `tls-auth-clients yes`): tether asks them over TLS
(`--redis-sentinel-tls`), with the same files as for the master. One CA
and one certificate naming the three hosts' addresses are made per run
with benches/tls-files.sh (openssl): every server shows it, and the
tether nodes, the replicas, the sentinels and redis-cli show it as their
client certificate.

A data node is started as a replica of the master the sentinels name,
each time but the first: Redis keeps nothing on disk here, so a master
killed and started again as a master would come back empty, and if it
came back before the sentinels failed over, its replicas would copy the
empty stream (acknowledged events lost by the harness, not by tether).
Its first start makes bus1 the master, bus2 and bus3 its replicas.
"""

import os
import subprocess
import time

REDIS_PORT = 6379
# The sentinels' port, TLS alone: with `tls-replication yes` a sentinel
# speaks TLS to every peer it connects to, the other sentinels too, and
# announces this port to them; tether and redis-cli ask them on it.
SENTINEL_TLS_PORT = 26380
MASTER_NAME = "netfault"
HERE = os.path.dirname(os.path.abspath(__file__))
TLS_FILES = os.path.join(HERE, "..", "..", "benches", "tls-files.sh")
# How long a restarted master waits for the sentinels to have failed over.
FAILOVER_PATIENCE = 30.0


class Group:
    """The hosts, their addresses and the run's TLS files."""

    def __init__(self, topo, work, hosts):
        self.topo = topo
        self.work = work
        self.hosts = hosts
        self.tls = os.path.join(work, "tls")
        self.started = set()

    def make_certificates(self):
        names = ",".join(f"IP:{self.topo.addr(h)}" for h in self.hosts)
        done = subprocess.run(["bash", "-c", '. "$0" && make_tls_files "$1" "$2"', TLS_FILES, self.tls, names],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the Redis TLS files: {done.stdout.strip()} {done.stderr.strip()}")

    def files(self):
        """(CA, certificate, key)."""
        return tuple(os.path.join(self.tls, f) for f in ("ca.pem", "server.pem", "server.key"))

    def cli(self, host, addr, port, *command, tls=True):
        """redis-cli on HOST against ADDR:PORT; what it printed."""
        ca, cert, key = self.files()
        argv = ["redis-cli", "-h", addr, "-p", str(port)]
        if tls:
            argv += ["--tls", "--cacert", ca, "--cert", cert, "--key", key]
        return self.topo.on(host, *argv, *command, check=False).strip()

    def master(self, host):
        """The master's address as the first sentinel that answers (asked
        from HOST) names it, or None."""
        for sentinel in self.hosts:
            out = self.cli(host, self.topo.addr(sentinel), SENTINEL_TLS_PORT, "SENTINEL",
                           "get-master-addr-by-name", MASTER_NAME).split()
            if len(out) == 2:
                return out[0]
        return None

    def master_host(self):
        """The host of the master the sentinels name now, or None."""
        addr = self.master(self.hosts[0])
        return next((h for h in self.hosts if self.topo.addr(h) == addr), None)

    def data_argv(self, host):
        """The command of HOST's data node, as a function called at each
        start (the role is decided then)."""
        ca, cert, key = self.files()
        addr = self.topo.addr(host)
        base = ["redis-server", "--bind", addr, "--port", "0", "--tls-port", str(REDIS_PORT),
                "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
                "--tls-auth-clients", "yes", "--tls-replication", "yes",
                # A replica started again needs a full copy: at once,
                # not after the default 5 s that waits for others to
                # share it (publishes wait for a replica meanwhile).
                "--repl-diskless-sync-delay", "0",
                "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no",
                "--dir", self.work, "--dbfilename", f"dump-{host}.rdb"]

        def argv():
            if host not in self.started:
                self.started.add(host)
                if host == self.hosts[0]:
                    return base
                return [*base, "--replicaof", self.topo.addr(self.hosts[0]), str(REDIS_PORT)]
            return [*base, "--replicaof", self.wait_for_other_master(host), str(REDIS_PORT)]

        return argv

    def wait_for_other_master(self, host):
        """The master the sentinels name, once it is not HOST (which was
        killed): the address."""
        own = self.topo.addr(host)
        deadline = time.monotonic() + FAILOVER_PATIENCE
        while time.monotonic() < deadline:
            master = self.master(host)
            if master is not None and master != own:
                return master
            time.sleep(0.2)
        raise RuntimeError(f"the sentinels named no master but {host} within {FAILOVER_PATIENCE:.0f} s "
                           "of its death: it cannot be started again without losing the streams")

    def sentinel_argv(self, host):
        """The sentinel's command; its configuration written (the sentinel
        rewrites it as it learns, and reads it again when restarted)."""
        ca, cert, key = self.files()
        own = os.path.join(self.work, f"sentinel-{host}")
        os.makedirs(own, exist_ok=True)
        config = os.path.join(own, "sentinel.conf")
        with open(config, "w") as out:
            # Quick to act, as the guide's deployment advice is not: a
            # master silent for 1 s is down, so that a 45 s schedule sees
            # failovers through.
            out.write(f"port 0\ntls-port {SENTINEL_TLS_PORT}\nbind {self.topo.addr(host)}\n"
                      f"daemonize no\ndir {own}\n"
                      f"sentinel monitor {MASTER_NAME} {self.topo.addr(self.hosts[0])} {REDIS_PORT} 2\n"
                      f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                      f"sentinel failover-timeout {MASTER_NAME} 3000\n"
                      f"sentinel parallel-syncs {MASTER_NAME} 2\n"
                      f"tls-replication yes\ntls-cert-file {cert}\ntls-key-file {key}\ntls-ca-cert-file {ca}\n"
                      f"tls-auth-clients yes\n")
        return ["redis-server", config, "--sentinel"]

    def wait_until_ready(self):
        """Until every sentinel knows the other two and both replicas."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(self.sentinel_knows(h) for h in self.hosts):
                return
            time.sleep(0.2)
        raise RuntimeError("the sentinels did not know each other and the replicas within 30 s")

    def sentinel_knows(self, host):
        fields = self.cli(host, self.topo.addr(host), SENTINEL_TLS_PORT, "SENTINEL", "master",
                          MASTER_NAME).split("\n")
        info = dict(zip(fields[::2], fields[1::2]))
        return info.get("num-other-sentinels") == "2" and info.get("num-slaves") == "2"


def start(topo, work, process, hosts):
    """The data nodes and the sentinels started (name -> Process: the data
    node of bus1 is `bus1`, its sentinel `bus1s`), and the `tether serve`
    options."""
    group = Group(topo, work, hosts)
    group.make_certificates()
    procs = {}
    for host in hosts:
        addr = topo.addr(host)
        procs[host] = process(host, host, group.data_argv(host), lambda h=host, a=addr: group.cli(
            h, a, REDIS_PORT, "ping") == "PONG")
        procs[host].start()
    for host in hosts:
        addr = topo.addr(host)
        name = f"{host}s"
        procs[name] = process(host, name, group.sentinel_argv(host), lambda h=host, a=addr: group.cli(
            h, a, SENTINEL_TLS_PORT, "ping") == "PONG")
        procs[name].start()
    group.wait_until_ready()
    ca, cert, key = group.files()
    sentinels = ",".join(f"{topo.addr(h)}:{SENTINEL_TLS_PORT}" for h in hosts)
    # A publish is acknowledged once both replicas have it, as the guide
    # advises for a master with more replicas than one: the sentinels may
    # promote either (the one they last saw furthest along, or the only
    # one on their side of a partition), so with one replica asked for,
    # a failover could lose what the other alone held (seed 2209299771
    # did: acknowledged, then missing from the new master without a
    # gap signal).
    option = ["--redis", f"rediss+sentinel://{sentinels}/{MASTER_NAME}", "--redis-sentinel-tls",
              "--redis-ca", ca, "--redis-cert", cert, "--redis-key", key,
              "--redis-wait-replicas", str(len(hosts) - 1)]
    return procs, option
