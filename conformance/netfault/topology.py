"""Test hosts in network namespaces, joined by one bridge.

Each host is a namespace named PREFIX-HOST with one interface, eth0, on
198.18.0.0/24 (the range RFC 2544 sets aside for benchmark tests, so no
host of anyone else's is ever addressed), its other end on the bridge of
the namespace PREFIX-sw. Every process a run starts is started inside a
host with `ip netns exec`, which execs it: the pid we hold is the
process's own, so signals (SIGSTOP, SIGKILL) reach it directly.

`teardown(PREFIX)` ends every process still inside a namespace of the
prefix (`ip netns pids`) and deletes the namespaces, so a run that failed
halfway leaves nothing behind; `teardown.sh` does the same from a shell.
"""

import os
import subprocess

SUBNET = "198.18.0"


def sh(*argv, check=True):
    done = subprocess.run(argv, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def namespaces(prefix):
    names = []
    for line in sh("ip", "netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(prefix + "-"):
            names.append(name)
    return names


def teardown(prefix):
    """Kills what runs in the prefix's namespaces, then deletes them."""
    for ns in namespaces(prefix):
        for pid in sh("ip", "netns", "pids", ns, check=False).split():
            try:
                os.kill(int(pid), 9)
            except (ProcessLookupError, ValueError):
                pass
    for ns in namespaces(prefix):
        sh("ip", "netns", "del", ns, check=False)


class Topology:
    """Hosts by name, each with its address: `up()` makes them."""

    def __init__(self, prefix, hosts):
        self.prefix = prefix
        self.hosts = {}
        for i, host in enumerate(hosts):
            self.hosts[host] = f"{SUBNET}.{10 + i}"
        self.switch = f"{prefix}-sw"

    def ns(self, host):
        return f"{self.prefix}-{host}"

    def addr(self, host):
        return self.hosts[host]

    def up(self):
        teardown(self.prefix)
        sh("ip", "netns", "add", self.switch)
        self.run_in(self.switch, "ip", "link", "set", "lo", "up")
        self.run_in(self.switch, "ip", "link", "add", "br0", "type", "bridge")
        self.run_in(self.switch, "ip", "link", "set", "br0", "up")
        for host, addr in self.hosts.items():
            ns = self.ns(host)
            # Interface names have 15 bytes at most: the pair is named by
            # the host's index, not its name.
            index = list(self.hosts).index(host)
            inner, outer = f"{self.prefix}i{index}", f"{self.prefix}o{index}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", inner, "type", "veth", "peer", "name", outer)
            sh("ip", "link", "set", inner, "netns", ns)
            sh("ip", "link", "set", outer, "netns", self.switch)
            self.run_in(self.switch, "ip", "link", "set", outer, "master", "br0", "up")
            self.run_in(ns, "ip", "link", "set", inner, "name", "eth0")
            self.run_in(ns, "ip", "addr", "add", f"{addr}/24", "dev", "eth0")
            self.run_in(ns, "ip", "link", "set", "eth0", "up")
            self.run_in(ns, "ip", "link", "set", "lo", "up")

    def down(self):
        teardown(self.prefix)

    @staticmethod
    def run_in(ns, *argv, check=True):
        return sh("ip", "netns", "exec", ns, *argv, check=check)

    def on(self, host, *argv, check=True):
        """Runs a short command on a host and returns what it printed."""
        return self.run_in(self.ns(host), *argv, check=check)

    def spawn(self, host, argv, log_path, env=None):
        """Starts a long-running process on a host, its output to a file."""
        log = open(log_path, "ab")
        try:
            return subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv],
                                    stdout=log, stderr=subprocess.STDOUT, env=env)
        finally:
            log.close()
