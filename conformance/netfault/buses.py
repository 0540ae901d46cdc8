"""The buses a fault run puts under the nodes, each on hosts of its own.

redis           one redis-server without persistence, on host `bus`
redis-cluster   a Redis Cluster of three primaries with a replica each:
                hosts bus1..bus3, a primary's replica on another host;
                the nodes acknowledge a publish once the replica has it
                (--redis-wait-replicas 1)
redis-sentinel  a master, two replicas and three sentinels (bus1..bus3),
                the data over TLS (sentinel.py); the nodes follow the
                master the sentinels name and acknowledge a publish once
                both replicas have it (--redis-wait-replicas 2)
nats            one nats-server with JetStream (its store on disk)
nats-cluster    three nats-servers in one JetStream cluster (bus1..bus3);
                the nodes keep their stream in three replicas
rabbitmq-cluster  three RabbitMQ nodes in one cluster (bus1..bus3), the
                streams in three replicas (buses_rabbitmq.py)

`hosts(kind)` names the bus hosts; `start(kind, ...)` starts the servers
and returns their processes (name -> Process) and the `tether serve`
options that point a node at them.
"""

import os
import time

import sentinel
import buses_rabbitmq

REDIS_PORT = 6379
REDIS_REPLICA_PORT = 6380
NATS_PORT = 4222
NATS_MONITOR = 8222
NATS_ROUTE = 6222


def hosts(kind):
    if kind == "rabbitmq-cluster":
        return buses_rabbitmq.hosts(kind)
    return ["bus"] if kind in ("redis", "nats") else ["bus1", "bus2", "bus3"]


def master(kind, topo, work):
    """The process name of the bus's master now, for a bus whose master
    moves (redis-sentinel); None for the others."""
    if kind != "redis-sentinel":
        return None
    return sentinel.Group(topo, work, hosts(kind)).master_host()


def start(kind, topo, work, process, answers, nats_server):
    """PROCESS(host, name, argv, ready) makes a run's Process; ANSWERS(host,
    url) says whether a URL answers 200 from a host."""
    if kind == "rabbitmq-cluster":
        return buses_rabbitmq.start(kind, topo, work, process)
    procs = {}
    if kind == "redis-sentinel":
        return sentinel.start(topo, work, process, hosts(kind))
    if kind in ("redis", "redis-cluster"):
        for host in hosts(kind):
            ports = [REDIS_PORT] if kind == "redis" else [REDIS_PORT, REDIS_REPLICA_PORT]
            for port in ports:
                name = host if port == REDIS_PORT else f"{host}r"
                addr = topo.addr(host)
                argv = ["redis-server", "--bind", addr, "--port", str(port), "--save", "", "--appendonly", "no",
                        "--protected-mode", "no", "--daemonize", "no", "--dir", work,
                        "--dbfilename", f"dump-{name}.rdb"]
                if kind == "redis-cluster":
                    argv += ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                             "--cluster-config-file", os.path.join(work, f"nodes-{name}.conf")]
                procs[name] = process(host, name, argv, lambda h=host, a=addr, p=port: topo.on(
                    h, "redis-cli", "-h", a, "-p", str(p), "ping", check=False).strip() == "PONG")
                procs[name].start()
        if kind == "redis":
            return procs, ["--redis", f"redis://{topo.addr('bus')}:{REDIS_PORT}"]
        members = [f"{topo.addr(h)}:{p}" for p in (REDIS_PORT, REDIS_REPLICA_PORT) for h in hosts(kind)]
        # redis-cli puts each replica on another address than its primary.
        topo.on("bus1", "redis-cli", "--cluster", "create", *members, "--cluster-replicas", "1",
                "--cluster-yes")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in topo.on(h, "redis-cli", "-h", topo.addr(h), "-p", str(REDIS_PORT),
                                                 "cluster", "info", check=False) for h in hosts(kind)):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the Redis Cluster was not ok within 30 s")
        seeds = ",".join(f"{topo.addr(h)}:{REDIS_PORT}" for h in hosts(kind))
        # A publish is acknowledged once its primary's replica has it too:
        # without it a primary that fails before replicating loses events
        # it acknowledged (the replication window the guide describes).
        return procs, ["--redis", f"redis+cluster://{seeds}", "--redis-wait-replicas", "1"]

    routes = ",".join(f"nats://{topo.addr(h)}:{NATS_ROUTE}" for h in hosts(kind))
    for host in hosts(kind):
        addr = topo.addr(host)
        argv = [nats_server, "-a", addr, "-p", str(NATS_PORT), "-m", str(NATS_MONITOR), "-js",
                "-sd", os.path.join(work, f"nats-{host}"), "--server_name", host]
        if kind == "nats-cluster":
            argv += ["--cluster_name", "netfault", "--cluster", f"nats://{addr}:{NATS_ROUTE}", "--routes", routes]
        procs[host] = process(host, host, argv,
                              lambda h=host, a=addr: answers(h, f"http://{a}:{NATS_MONITOR}/healthz"))
    # A clustered server is healthy only once its peers are there: start
    # them all, then wait for each.
    for proc in procs.values():
        proc.start(wait=False)
    for proc in procs.values():
        proc.wait_ready()
    urls = ",".join(f"nats://{topo.addr(h)}:{NATS_PORT}" for h in hosts(kind))
    option = ["--nats", urls]
    if kind == "nats-cluster":
        option += ["--nats-replicas", "3"]
    return procs, option
