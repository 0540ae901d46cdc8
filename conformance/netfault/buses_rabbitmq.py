"""RabbitMQ under a fault run: a cluster of three nodes on hosts
bus1..bus3 (`rabbitmq-cluster`), the nodes' streams in three replicas.

Each server is Debian's `rabbitmq-server` run as a plain process with
its data, logs and configuration in the run's directory, an Erlang
cookie shared by the three, and `RUNNING_UNDER_SYSTEMD` set so that the
script execs the Erlang VM: the pid the run holds is the VM's own, and
the nemesis's SIGSTOP and SIGKILL reach the broker, not a shell. The
nodes are named by their addresses (`rabbit@198.18.0.N`, Erlang's long
names), which resolve in every namespace without a hosts file; each
host's Erlang port mapper (epmd, port 4369) is the one the VM starts
in its namespace, ended with the namespace. The three start together;
the first forms the cluster, and the others join it as they first boot
(`cluster_formation.classic_config`, trying until it answers).

`cluster_partition_handling = pause_minority`: a node cut off from the
others for longer than the distribution's tick (60 s) stops serving
rather than diverging; the schedules' partitions are shorter.

The tether nodes get every address (`--rabbitmq-url` with three) and
move to the next when theirs fails; `--rabbitmq-replicas 3`: a stream
confirms a publish once a majority of its replicas hold it.
"""

import os

AMQP_PORT = 5672
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
# A clustered node that restarts syncs its metadata from the others
# before it listens: under the side-by-side runs' load that takes
# longer than a Redis or a NATS server.
PATIENCE = 60


def hosts(kind):
    return ["bus1", "bus2", "bus3"]


def node_name(topo, host):
    return f"rabbit@{topo.addr(host)}"


def listening(topo, host):
    """Whether the node on HOST accepts AMQP connections."""
    out = topo.on(host, "bash", "-c", f"exec 3<>/dev/tcp/{topo.addr(host)}/{AMQP_PORT} && echo up", check=False)
    return out.strip() == "up"


def start(kind, topo, work, process):
    """The three nodes, started and clustered: (name -> Process, the
    `tether serve` options)."""
    cookie = os.urandom(16).hex()
    seed = node_name(topo, "bus1")
    procs = {}
    for host in hosts(kind):
        home = os.path.join(work, f"rabbit-{host}")
        os.makedirs(os.path.join(home, "log"), exist_ok=True)
        conf = (f"listeners.tcp.default = {topo.addr(host)}:{AMQP_PORT}\n"
                "loopback_users = none\n"
                "cluster_partition_handling = pause_minority\n")
        if host != "bus1":
            # Started once bus1 is up, they try to join it until it answers.
            conf += ("cluster_formation.peer_discovery_backend = classic_config\n"
                     f"cluster_formation.classic_config.nodes.1 = {seed}\n"
                     "cluster_formation.discovery_retry_limit = 120\n"
                     "cluster_formation.discovery_retry_interval = 500\n")
        with open(os.path.join(home, "rabbitmq.conf"), "w") as out:
            out.write(conf)
        with open(os.path.join(home, "enabled_plugins"), "w") as out:
            out.write("[].\n")
        path = os.path.join(home, ".erlang.cookie")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400), "w") as out:
            out.write(cookie)
        argv = ["env", f"HOME={home}", "RABBITMQ_USE_LONGNAME=true", f"RABBITMQ_NODENAME={node_name(topo, host)}",
                f"RABBITMQ_MNESIA_BASE={home}/mnesia", f"RABBITMQ_LOG_BASE={home}/log",
                f"RABBITMQ_CONFIG_FILE={home}/rabbitmq", f"RABBITMQ_ENABLED_PLUGINS_FILE={home}/enabled_plugins",
                "RUNNING_UNDER_SYSTEMD=true", SERVER]
        procs[host] = process(host, host, argv, lambda h=host: listening(topo, h))
        procs[host].patience = PATIENCE
    # bus1 up first, then the others beside each other: a node that
    # joins a seed still booting copies its tables before the seed's
    # feature flags change them, and stops at a schema mismatch (seen
    # with 3.10.8 on a busy machine).
    procs["bus1"].start(wait=False)
    procs["bus1"].wait_ready()
    joining = [proc for host, proc in procs.items() if host != "bus1"]
    for proc in joining:
        proc.start(wait=False)
    for proc in joining:
        proc.wait_ready()
    addresses = ",".join(f"{topo.addr(h)}:{AMQP_PORT}" for h in hosts(kind))
    return procs, ["--rabbitmq-url", f"amqp://guest:guest@{addresses}/%2f", "--rabbitmq-replicas", "3"]
