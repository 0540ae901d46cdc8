"""The chaos test: nothing lost, nothing twice, while things die.

Run by chaos.sh (which installs what it needs and makes the venv). Three
phases, each with its own processes on free loopback ports in a
temporary directory. The first two share their driving (bus_phase) and
differ in the bus (buses.py):

cluster   A Redis Cluster of three primaries with a replica each; two
          `tether serve --app hub --memory --redis redis+cluster://...`
          nodes behind HAProxy in round robin (haproxy.cfg.in, no
          stickiness); SSE and WebSocket subscribers through HAProxy on
          topics spread over the three primaries, each reconnecting
          through the proxy with its last id whenever its connection
          drops; a publisher on each node for every topic, each publish
          with its own Tether-Publish-Id and retried (on either node)
          until acknowledged. Meanwhile: one tether node killed with
          SIGKILL and started again, then the Redis primary of the
          busiest topic's slot killed with SIGKILL (its replica takes
          over).

rabbitmq  The same on a RabbitMQ cluster of three nodes (`--rabbitmq-url`
          listing the three, `--rabbitmq-replicas 3`), with fewer
          subscribers: the node that writes the busiest topic's stream
          is the one killed (a replica takes over).

data-dir  One `tether serve --app hub --data-dir DIR --fsync always` (no
          Redis) with SSE subscribers, stopped with SIGTERM and started
          again, then killed with SIGKILL and started again, mid-stream.

After each phase the publishers stop and every subscriber must end with
exactly the acknowledged events of its topic, each once, in id order, and
no gap signal. Prints "ok NAME: counts" or "FAIL NAME: why" per check.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import types
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from buses import RabbitCluster, RedisCluster, free_ports, wait_for
from proxy_client import CheckFailed, EventStream, Node, http, id_key, ws_url

HERE = os.path.dirname(os.path.abspath(__file__))

# A connection's silence (s) after which a subscriber gives it up and
# reconnects: longer than the nodes' heartbeat and ping interval.
SILENCE = 4.0


async def wait_until(condition, seconds, what):
    await asyncio.to_thread(wait_for, condition, seconds, what)


# --- HAProxy --------------------------------------------------------------------


class HAProxy:
    def __init__(self, work, port, nodes, timeout_ms):
        with open(os.path.join(HERE, "haproxy.cfg.in")) as template:
            text = template.read()
        for name, value in (("@PORT@", port), ("@NODE1@", nodes[0]), ("@NODE2@", nodes[1]),
                            ("@TIMEOUT@", f"{timeout_ms}ms")):
            text = text.replace(name, str(value))
        self.config = os.path.join(work, "haproxy.cfg")
        with open(self.config, "w") as out:
            out.write(text)
        self.log = os.path.join(work, "haproxy.log")
        self.proc = None

    def start(self):
        log = open(self.log, "wb")
        self.proc = subprocess.Popen(["haproxy", "-db", "-f", self.config], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


# --- the data-dir node ------------------------------------------------------------


class DurableNode(Node):
    """A single node with the durable log: no Redis, no proxy."""

    def __init__(self, args, port, data_dir):
        super().__init__(args, 0, port)
        self.name = "durable"
        self.data_dir = data_dir

    def command(self):
        a = self.args
        return [
            a.tether, "serve", "--app", "hub", "--threads", "1",
            "--addr", "127.0.0.1", "--port", str(self.port),
            "--data-dir", self.data_dir, "--fsync", "always",
            "--sse-heartbeat", str(a.heartbeat),
            "--log-level", "warn",
        ]

    def terminate(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


# --- subscribers and publishers ---------------------------------------------------


class Subscriber:
    """Follows one topic from 0-0 through BASE, over SSE or a WebSocket,
    reconnecting with its last id whenever the connection drops, until
    stopped."""

    def __init__(self, base, topic, transport):
        self.base = base
        self.topic = topic
        self.transport = transport
        self.received = []
        self.gaps = []
        self.connects = 0
        self.errors = []
        self.stopping = False

    def last_id(self):
        return self.received[-1][0] if self.received else "0-0"

    def take(self, message):
        if message.get("control") == "gap" or message.get("event") == "gap":
            self.gaps.append(message)
        elif "control" in message:
            self.errors.append(f"control message {message}")
        else:
            self.received.append((message["id"], message["data"]))

    async def follow_sse(self):
        stream = await EventStream.open(self.base, f"/topics/{self.topic}/events", self.last_id())
        try:
            if stream.status != 200:
                raise OSError(f"status {stream.status}")
            self.connects += 1
            while not self.stopping:
                try:
                    event = await stream.next(SILENCE)
                except CheckFailed:
                    return  # silent too long: reconnect
                if event is None:
                    return
                self.take(event)
        finally:
            stream.close()

    async def follow_ws(self):
        url = ws_url(self.base, f"/topics/{self.topic}/ws?lastEventId={self.last_id()}")
        async with ws_connect(url, open_timeout=5, close_timeout=1) as ws:
            self.connects += 1
            while not self.stopping:
                try:
                    raw = await asyncio.wait_for(ws.recv(), SILENCE)
                except (ConnectionClosed, asyncio.TimeoutError):
                    return
                self.take(json.loads(raw))

    async def run(self):
        follow = self.follow_sse if self.transport == "sse" else self.follow_ws
        while not self.stopping:
            try:
                await follow()
            # Refused, a 502/503 from the proxy, a handshake cut short: a
            # client tries again.
            except (OSError, CheckFailed, InvalidHandshake, asyncio.TimeoutError,
                    asyncio.IncompleteReadError, ConnectionClosed, ValueError):
                await asyncio.sleep(0.2)


class Publisher:
    """Publishes NAME-0, NAME-1, ... to a topic, preferring one node,
    each with its own publish key, retried on any node until
    acknowledged."""

    def __init__(self, token, bases, topic, name, interval):
        self.token = token
        self.bases = bases
        self.topic = topic
        self.name = name
        self.interval = interval
        self.acknowledged = []
        self.retries = 0
        self.stopping = False
        self.error = None

    async def publish_once(self, data, key):
        headers = {"Authorization": f"Bearer {self.token}", "Tether-Publish-Id": key}
        deadline = time.monotonic() + 30
        attempt = 0
        last = None
        while time.monotonic() < deadline:
            base = self.bases[attempt % len(self.bases)]
            attempt += 1
            try:
                status, _, body = await http("POST", f"{base}/topics/{self.topic}", data.encode(), headers, timeout=5)
                if status == 200:
                    return json.loads(body)["id"]
                last = f"status {status}: {body[:200]!r}"
            except OSError as error:
                last = repr(error)
            self.retries += 1
            await asyncio.sleep(0.1)
        raise CheckFailed(f"{self.name}: {data} not acknowledged within 30 s: {last}")

    async def run(self):
        i = 0
        try:
            while not self.stopping:
                data = f"{self.name}-{i}"
                event_id = await self.publish_once(data, f"{self.name}.{i}")
                self.acknowledged.append((event_id, data))
                i += 1
                await asyncio.sleep(self.interval)
        except CheckFailed as error:
            self.error = str(error)


def verify(name, subscribers, publishers, report):
    """One check: every subscriber of the group has exactly its topic's
    acknowledged events, in id order, each once, no gap."""
    expected = {}
    for p in publishers:
        expected.setdefault(p.topic, []).extend(p.acknowledged)
    for topic in expected:
        expected[topic].sort(key=lambda e: id_key(e[0]))
    problems = []
    for s in subscribers:
        want = expected.get(s.topic, [])
        if s.received == want and not s.gaps and not s.errors:
            continue
        got_ids = [e[0] for e in s.received]
        got, wanted = set(s.received), set(want)
        missing = [e for e in want if e not in got]
        doubled = len(got_ids) - len(set(got_ids))
        in_order = got_ids == sorted(got_ids, key=id_key)
        unknown = [e for e in s.received if e not in wanted]
        problems.append(
            f"{s.transport} on {s.topic}: {len(s.received)} received of {len(want)}, "
            f"{len(missing)} missing {missing[:3]}, {doubled} twice, {len(unknown)} unknown {unknown[:3]}, "
            f"{'in' if in_order else 'OUT OF'} order, {len(s.gaps)} gaps {s.gaps[:1]}, errors {s.errors[:2]}")
    total = sum(len(s.received) for s in subscribers)
    reconnects = sum(max(s.connects - 1, 0) for s in subscribers)
    if not problems and reconnects == 0:
        problems.append("no subscriber lost its connection: nothing was resumed")
    if problems:
        report(False, name, f"{len(problems)} of {len(subscribers)} subscribers wrong; " + "; ".join(problems[:5]))
    else:
        per_topic = ", ".join(f"{t} {len(e)}" for t, e in sorted(expected.items()))
        report(True, name, f"{len(subscribers)} subscribers, {total} events received, {reconnects} reconnections; "
                           f"events per topic: {per_topic}")


class Reporter:
    def __init__(self):
        self.failed = 0

    def __call__(self, ok, name, detail):
        if not ok:
            self.failed += 1
        print(f"{'ok' if ok else 'FAIL'} {name}: {detail}", flush=True)


def say(text):
    print(text, flush=True)


async def caught_up(subscribers, publishers, seconds):
    """Waits until every subscriber has as many events as were
    acknowledged on its topic (or the deadline)."""
    counts = {}
    for p in publishers:
        counts[p.topic] = counts.get(p.topic, 0) + len(p.acknowledged)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(len(s.received) >= counts.get(s.topic, 0) for s in subscribers):
            break
        await asyncio.sleep(0.2)
    # A moment more for anything that would come twice.
    await asyncio.sleep(0.5)


async def stop_all(tasks, things):
    for thing in things:
        thing.stopping = True
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- phases 1 and 2: a bus of three servers -----------------------------------------


class BusNode(Node):
    """A node of the phase's pair, joined to its bus."""

    def __init__(self, args, index, port, options):
        super().__init__(args, index, port)
        self.options = options

    def bus_options(self):
        return self.options


async def bus_phase(args, work, report, bus, per_transport):
    """Two tether nodes on BUS behind HAProxy, PER_TRANSPORT SSE and as
    many WebSocket subscribers through it, publishers on both nodes; a node killed and started again, then the
    bus's server of the busiest topic killed."""
    name = bus.name
    haproxy = None
    nodes = []
    tasks = []
    try:
        started = time.monotonic()
        await asyncio.to_thread(bus.start)
        topics, where = await asyncio.to_thread(bus.pick_topics, args.topics)
        say(f"    {name}: started in {time.monotonic() - started:.1f} s: {where}")

        node_ports = free_ports(3)
        proxy_port = node_ports.pop()
        node_args = types.SimpleNamespace(
            tether=args.tether, heartbeat=1, poll_timeout=1.5, token=args.token, work=work)
        nodes = [BusNode(node_args, i + 1, port, bus.tether_options(i)) for i, port in enumerate(node_ports)]
        for node in nodes:
            await node.start()
        haproxy = HAProxy(work, proxy_port, node_ports, 10000)
        haproxy.start()
        base = f"http://127.0.0.1:{proxy_port}"
        await wait_until(lambda: ok_health(base), 10, "haproxy")

        subscribers = []
        for i in range(per_transport):
            for transport in ("sse", "ws"):
                subscribers.append(Subscriber(base, topics[i % len(topics)], transport))
        tasks += [asyncio.create_task(s.run()) for s in subscribers]
        node_bases = [f"http://127.0.0.1:{n.port}" for n in nodes]
        publishers = []
        for topic in topics:
            for i, node_base in enumerate(node_bases):
                others = [b for b in node_bases if b != node_base]
                publishers.append(Publisher(args.token, [node_base, *others], topic,
                                            f"{topic}.node{i + 1}", args.interval))
        await wait_until_async(lambda: all(s.connects for s in subscribers), 20, "every subscriber connected")
        tasks += [asyncio.create_task(p.run()) for p in publishers]
        started = time.monotonic()

        def log(text):
            say(f"    {name}: {text} at {time.monotonic() - started:.1f} s")

        await asyncio.sleep(2)
        victim = nodes[0]
        victim.kill()
        log(f"{victim.name} killed (SIGKILL)")
        await asyncio.sleep(1.5)
        await victim.start()
        log(f"{victim.name} started again")
        await asyncio.sleep(2)

        acknowledged = {t: sum(len(p.acknowledged) for p in publishers if p.topic == t) for t in topics}
        busiest = max(topics, key=lambda t: acknowledged[t])
        await asyncio.to_thread(bus.fail, busiest, log)
        await asyncio.sleep(2)

        for p in publishers:
            p.stopping = True
        await asyncio.gather(*tasks[len(subscribers):])
        log(f"publishing stopped, {sum(len(p.acknowledged) for p in publishers)} events acknowledged, "
            f"{sum(p.retries for p in publishers)} attempts retried")
        errors = [p.error for p in publishers if p.error]
        report(not errors, f"{name}: every publish acknowledged (retried with its key)",
               "; ".join(errors) if errors else
               f"{len(publishers)} publishers on 2 nodes, {sum(len(p.acknowledged) for p in publishers)} events")
        await caught_up(subscribers, publishers, 20)
        await stop_all(tasks[:len(subscribers)], subscribers)
        for transport, label in (("sse", "SSE"), ("ws", "WebSocket")):
            group = [s for s in subscribers if s.transport == transport]
            verify(f"{name}: {len(group)} {label} subscribers through HAProxy, every event once, in order",
                   group, publishers, report)
    finally:
        await stop_all(tasks, [])
        if haproxy is not None:
            haproxy.stop()
        for node in nodes:
            node.stop()
        bus.stop()


def ok_health(base):
    with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
        return response.status == 200


async def wait_until_async(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.1)
    raise CheckFailed(f"waited {seconds} s for {what}")


# --- phase 3: one node with the durable log -----------------------------------------


async def data_dir_phase(args, work, report):
    data_dir = os.path.join(work, "data")
    node_args = types.SimpleNamespace(tether=args.tether, heartbeat=1, token=args.token, work=work)
    node = DurableNode(node_args, free_ports(1)[0], data_dir)
    tasks = []
    try:
        await node.start()
        base = f"http://127.0.0.1:{node.port}"
        topics = ["chaos.durable.a", "chaos.durable.b"]
        subscribers = [Subscriber(base, topics[i % len(topics)], "sse") for i in range(args.durable_subscribers)]
        tasks += [asyncio.create_task(s.run()) for s in subscribers]
        await wait_until_async(lambda: all(s.connects for s in subscribers), 10, "every subscriber connected")
        publishers = [Publisher(args.token, [base], t, f"{t}.p", args.interval) for t in topics]
        tasks += [asyncio.create_task(p.run()) for p in publishers]
        started = time.monotonic()

        await asyncio.sleep(1.5)
        node.terminate()
        say(f"    data-dir: stopped (SIGTERM) at {time.monotonic() - started:.1f} s")
        await asyncio.sleep(0.5)
        await node.start()
        say(f"    data-dir: started again at {time.monotonic() - started:.1f} s")
        await asyncio.sleep(1.5)
        node.kill()
        say(f"    data-dir: killed (SIGKILL) at {time.monotonic() - started:.1f} s")
        await asyncio.sleep(0.5)
        await node.start()
        say(f"    data-dir: started again at {time.monotonic() - started:.1f} s")
        await asyncio.sleep(1.5)

        for p in publishers:
            p.stopping = True
        await asyncio.gather(*tasks[len(subscribers):])
        errors = [p.error for p in publishers if p.error]
        report(not errors, "data-dir: every publish acknowledged (retried with its key)",
               "; ".join(errors) if errors else
               f"{sum(len(p.acknowledged) for p in publishers)} events, {sum(p.retries for p in publishers)} attempts retried")
        await caught_up(subscribers, publishers, 15)
        await stop_all(tasks[:len(subscribers)], subscribers)
        verify(f"data-dir: {len(subscribers)} SSE subscribers across a SIGTERM and a SIGKILL restart, "
               "every event once, in order", subscribers, publishers, report)
    finally:
        await stop_all(tasks, [])
        node.stop()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tether", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--topics", type=int, default=4)
    parser.add_argument("--subscribers", type=int, default=200, help="per transport, on Redis")
    parser.add_argument("--rabbitmq-subscribers", type=int, default=100, help="per transport, on RabbitMQ")
    parser.add_argument("--durable-subscribers", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between a publisher's events")
    parser.add_argument("--phase", choices=["cluster", "rabbitmq", "data-dir", "all"], default="all")
    args = parser.parse_args()
    # Every publish is a blocking request in a thread: enough of them.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64))
    report = Reporter()
    phases = (("cluster", lambda a, w, r: bus_phase(a, w, r, RedisCluster(w), a.subscribers)),
              ("rabbitmq", lambda a, w, r: bus_phase(a, w, r, RabbitCluster(w), a.rabbitmq_subscribers)),
              ("data-dir", data_dir_phase))
    for name, phase in phases:
        if args.phase not in (name, "all"):
            continue
        work = os.path.join(args.work, name)
        os.makedirs(work)
        started = time.monotonic()
        try:
            await phase(args, work, report)
        except CheckFailed as error:
            report(False, f"{name}: setup", str(error))
        say(f"    {name}: {time.monotonic() - started:.1f} s in all")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
