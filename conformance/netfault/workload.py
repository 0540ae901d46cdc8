"""The clients of a fault run, writing what happened as JSON lines.

Run on the client host (inside its namespace) by run.py:

    workload.py --base http://LB:PORT --token T --history FILE
                --topics 3 --subscribers 4 --mux 2 --mux-sse 2 --seconds 60 --settle 30

Publishers: one per topic, each publish one attempt through the load
balancer with its own key (`Tether-Publish-Id`), recorded as `ok` (200,
with its id), `fail` (a 4xx: refused for what it is), or `unknown` (a
503, a timeout, a reset: it may or may not have been added; the hub says
so of a 503 whose append was under way). Subscribers (subscribers.py):
event streams and WebSockets of one topic each, --mux WebSockets that
follow every topic on one `/ws`, --mux-sse event streams that follow
every topic on one `/events?topic=…`, all through the load balancer
from `0-0` (and, with --follow and --node, tether-client's `EventSource`
and the browser client under Node, one topic each), each resuming every
topic from its own last id (`Last-Event-ID`, `lastEventId`, a subscribe's
`since`, a multi-topic stream's cursor) whenever its connection ends or
goes silent (no byte, not even a heartbeat or ping, for SILENCE
seconds), as a client would. Every delivery, gap signal, connection and
disconnection is a line of the history naming the subscriber and the
topic; checker.py reads it.

After SECONDS the publishers stop; the subscribers go on until each has
every acknowledged event of its topics or SETTLE seconds have passed.

With --jwt-secret and --nodes, an identity probe goes to each node
directly (not through the load balancer) every PROBE_EVERY seconds: a
fresh JSON Web Token (nbf and iat now, exp TOKEN_LIFE seconds on, by
this host's clock) that grants the topics, used to publish to a topic
and to long poll it. Each try is an `identity` line with the node's
clock offset (--skews) and the answer; the publishes are `publish` lines
too, so an accepted one must be delivered and a refused one never.
At the end, once the subscribers have settled, each node's presence of
each topic is read (`presence` lines) beside the count of subscribers
then connected (checker.py reports both).
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proxy"))

from proxy_client import http  # noqa: E402
from subscribers import (SILENCE, EventStreamSubscriber, MultiEventStreamSubscriber,  # noqa: E402
                         MultiWebSocketSubscriber, ProcessSubscriber, WebSocketSubscriber)

PUBLISH_TIMEOUT = 8.0
# A probe's token is good for this long by this host's clock; a node
# whose clock is off by more than this plus the leeway (30 s) must refuse
# it, and one off by less than the leeway must accept it.
TOKEN_LIFE = 45
LEEWAY = 30  # the nodes' --jwt-leeway (run.py)
PROBE_EVERY = 1.0


class History:
    def __init__(self, path):
        self.out = open(path, "a", buffering=1)

    def record(self, kind, **fields):
        fields = {"t": round(time.time(), 4), "type": kind, **fields}
        self.out.write(json.dumps(fields, separators=(",", ":")) + "\n")


class Publisher:
    def __init__(self, name, base, token, topic, interval, history):
        self.name = name
        self.base = base
        self.token = token
        self.topic = topic
        self.interval = interval
        self.history = history
        self.acknowledged = set()
        self.stopping = False

    async def run(self):
        i = 0
        while not self.stopping:
            data = f"{self.name}-{i}"
            key = f"{self.name}.{i}"
            started = time.time()
            headers = {"Authorization": f"Bearer {self.token}", "Tether-Publish-Id": key}
            try:
                status, _, body = await http("POST", f"{self.base}/topics/{self.topic}", data.encode(),
                                             headers, timeout=PUBLISH_TIMEOUT)
            except OSError as error:
                status, body = None, repr(error).encode()
            if status == 200:
                event_id = json.loads(body)["id"]
                self.acknowledged.add(event_id)
                outcome = "ok"
            elif status is not None and 400 <= status < 500:
                event_id, outcome = None, "fail"
            else:
                event_id, outcome = None, "unknown"
            self.history.record("publish", pub=self.name, topic=self.topic, data=data, key=key,
                                outcome=outcome, status=status, id=event_id, started=round(started, 4),
                                why=None if status == 200 else body[:120].decode("utf-8", "replace"))
            i += 1
            await asyncio.sleep(self.interval)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret, subject, now, life):
    """An HS256 token for SUBJECT, good from NOW for LIFE seconds, that
    may publish and subscribe to the run's topics."""
    claims = {"sub": subject, "iat": now, "nbf": now, "exp": now + life,
              "tether": {"sub": ["nf.*"], "pub": ["nf.*"]}}
    signed = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64url(json.dumps(claims).encode())
    return signed + "." + b64url(hmac.new(secret, signed.encode(), hashlib.sha256).digest()), claims


class IdentityProbe:
    """Publishes and long polls on each node directly with fresh,
    short-lived tokens, recording what each node answered."""

    def __init__(self, secret, nodes, skews, topics, history):
        self.secret = secret
        self.nodes = nodes  # name -> base URL
        self.skews = skews  # name -> seconds its clock is ahead
        self.topics = topics
        self.history = history
        self.acknowledged = {topic: set() for topic in topics}
        self.on_bus = [name for name in nodes if name.startswith("n")]
        self.heads = {}
        self.stopping = False

    async def try_once(self, i, node, base):
        # A node off the bus (the one whose clock is off) gets a topic of
        # its own: what it accepts, no subscriber here can be given.
        topic = self.topics[i % len(self.topics)] if node in self.on_bus else f"nf.{node}"
        now = int(time.time())
        token, claims = mint(self.secret, f"probe-{node}", now, TOKEN_LIFE)
        headers = {"Authorization": f"Bearer {token}"}
        fields = {"node": node, "skew": self.skews.get(node, 0), "nbf": claims["nbf"], "exp": claims["exp"],
                  "leeway": LEEWAY, "topic": topic}
        data = f"id.{node}-{i}"
        key = f"id.{node}.{i}"
        try:
            status, _, body = await http("POST", f"{base}/topics/{topic}", data.encode(),
                                         dict(headers, **{"Tether-Publish-Id": key}), timeout=PUBLISH_TIMEOUT)
        except OSError as error:
            status, body = None, repr(error).encode()
        event_id = None
        if status == 200:
            event_id, outcome = json.loads(body)["id"], "ok"
            self.acknowledged.setdefault(topic, set()).add(event_id)
            self.heads[topic] = event_id
        elif status is not None and 400 <= status < 500:
            outcome = "fail"
        else:
            outcome = "unknown"
        self.history.record("publish", pub=f"id.{node}", topic=topic, data=data, key=key, outcome=outcome,
                            status=status, id=event_id, started=now,
                            why=None if status == 200 else body[:120].decode("utf-8", "replace"))
        self.history.record("identity", op="publish", status=status, **fields)
        since = self.heads.get(topic, "0-0")
        try:
            status, _, _ = await http("GET", f"{base}/topics/{topic}/poll?since={since}&timeout=0", None,
                                      headers, timeout=PUBLISH_TIMEOUT)
        except OSError:
            status = None
        self.history.record("identity", op="subscribe", status=status, **fields)
        # A ticket for the token's holder, then its use, on the same node:
        # tickets are the node's own and live by its monotonic clock, so
        # one issued is good at once, whatever the node's wall clock says.
        try:
            status, _, body = await http("POST", f"{base}/tickets?topic={topic}", None, headers,
                                         timeout=PUBLISH_TIMEOUT)
        except OSError:
            status, body = None, b""
        self.history.record("identity", op="ticket", status=status, **fields)
        if status == 200:
            try:
                ticket = json.loads(body)["ticket"]
                status, _, _ = await http("GET", f"{base}/topics/{topic}/poll?since={since}&timeout=0&ticket={ticket}",
                                          None, {}, timeout=PUBLISH_TIMEOUT)
            except (OSError, ValueError, KeyError):
                status = None
            self.history.record("identity", op="ticket-use", status=status, **dict(fields, skew=0))

    async def run(self):
        i = 0
        while not self.stopping:
            for node, base in sorted(self.nodes.items()):
                await self.try_once(i, node, base)
            i += 1
            await asyncio.sleep(PROBE_EVERY)


async def read_presence(nodes, topics, subscribers, history):
    """Each node's presence of each topic, beside the subscribers (event
    streams and WebSockets: long polls are no members) connected now."""
    for topic in topics:
        connected = sum(1 for s in subscribers if s.connected(topic))
        for node, base in sorted(nodes.items()):
            if not node.startswith("n"):
                continue
            try:
                status, _, body = await http("GET", f"{base}/topics/{topic}/presence", timeout=5)
                count = json.loads(body).get("count") if status == 200 else None
            except (OSError, ValueError):
                status, count = None, None
            history.record("presence", node=node, topic=topic, status=status, count=count, connected=connected)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--history", required=True)
    parser.add_argument("--topics", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=4, help="per transport and topic")
    parser.add_argument("--mux", type=int, default=2,
                        help="WebSockets following every topic on one GET /ws")
    parser.add_argument("--mux-sse", type=int, default=2,
                        help="event streams following every topic on one GET /events?topic=...")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--follow", help="tether-client's follow example: one such subscriber per topic")
    parser.add_argument("--node", help="node, for the browser client (jsfollow.mjs): one per topic")
    parser.add_argument("--work", default="/tmp", help="where jsfollow.mjs keeps the client it loads")
    parser.add_argument("--nodes", default="", help="NAME=URL,...: the nodes, for the probes that go to each")
    parser.add_argument("--skews", default="", help="NAME=SECONDS,...: how far each node's clock is ahead")
    parser.add_argument("--jwt-secret", help="the nodes' HS256 secret file: probe them with short-lived tokens")
    args = parser.parse_args()
    nodes = dict(pair.split("=", 1) for pair in args.nodes.split(",") if pair)
    skews = {name: int(value) for name, value in (pair.split("=", 1) for pair in args.skews.split(",") if pair)}
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32))
    history = History(args.history)
    topics = [f"nf.t{i}" for i in range(args.topics)]
    one_topic = {"sse": EventStreamSubscriber, "ws": WebSocketSubscriber}
    subscribers = [one_topic[transport](f"{transport}{i}.{topic}", args.base, topic, history)
                   for topic in topics for transport in ("sse", "ws") for i in range(args.subscribers)]
    subscribers += [MultiWebSocketSubscriber(f"wsmux{i}", args.base, topics, history) for i in range(args.mux)]
    subscribers += [MultiEventStreamSubscriber(f"ssemux{i}", args.base, topics, history)
                    for i in range(args.mux_sse)]
    for topic in topics:
        if args.follow:
            url = f"{args.base}/topics/{topic}/events?lastEventId=0-0"
            subscribers.append(ProcessSubscriber(f"rust.{topic}", topic, [args.follow, url, str(SILENCE)], history))
        if args.node:
            script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "jsfollow.mjs")
            subscribers.append(ProcessSubscriber(f"js.{topic}", topic, [args.node, script, args.base, topic, args.work],
                                                 history))
    publishers = [Publisher(f"p.{topic}", args.base, args.token, topic, args.interval, history)
                  for topic in topics]
    sub_tasks = [asyncio.create_task(s.run()) for s in subscribers]
    await asyncio.sleep(1.0)
    history.record("phase", name="publishing")
    probe = None
    if args.jwt_secret and nodes:
        with open(args.jwt_secret, "rb") as f:
            secret = f.read()
        probe = IdentityProbe(secret, nodes, skews, topics, history)
        publishers.append(probe)
    pub_tasks = [asyncio.create_task(p.run()) for p in publishers]
    await asyncio.sleep(args.seconds)
    for p in publishers:
        p.stopping = True
    await asyncio.gather(*pub_tasks)
    history.record("phase", name="settling")
    deadline = time.monotonic() + args.settle
    acked = {p.topic: set(p.acknowledged) for p in publishers if p is not probe}
    if probe is not None:
        for topic, ids in probe.acknowledged.items():
            acked.setdefault(topic, set()).update(ids)
    while time.monotonic() < deadline:
        if all(s.has_all(acked) for s in subscribers):
            break
        await asyncio.sleep(0.25)
    # A moment more for anything that would come twice.
    await asyncio.sleep(1.0)
    if nodes:
        # Presence is read every second and renewed every few: long
        # enough after the last fault, every node should list every
        # member.
        await asyncio.sleep(2.0)
        await read_presence(nodes, topics, subscribers, history)
    history.record("phase", name="done")
    for s in subscribers:
        s.stopping = True
        if isinstance(s, ProcessSubscriber) and s.proc is not None and s.proc.returncode is None:
            s.proc.kill()
    for task in sub_tasks:
        task.cancel()
    await asyncio.gather(*sub_tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
