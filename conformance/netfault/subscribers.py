"""The subscribers of a fault run: each follows one topic or several
through the load balancer, resumes every topic from its own last id
whenever its connection ends or goes silent, and records what it was
given per (subscriber, topic), the stream checker.py judges.

  - EventStreamSubscriber: `/topics/T/events`, `Last-Event-ID`
  - WebSocketSubscriber: `/topics/T/ws?lastEventId=`
  - MultiWebSocketSubscriber: one `GET /ws` for all its topics, each
    subscribed with `since` = its own last id, each refusal retried alone
  - MultiEventStreamSubscriber: `GET /events?topic=A&topic=B`, resumed
    with the stream's cursor as `Last-Event-ID`
  - ProcessSubscriber: another program printing JSON lines (tether-client's
    `follow` example, the browser client under Node)

Every history line of a subscriber names it and one of its topics
(`sub`, `topic`): `connect` (the topic's subscription is in place),
`disconnect` (it ended, with why), `deliver`, `gap`, `control`.
"""

import asyncio
import base64
import json
import struct
import time
import urllib.parse

from proxy_client import CheckFailed, EventStream, ws_url
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

# A connection that brings no byte for this long (the nodes send a
# heartbeat or a ping every second) is given up and resumed.
SILENCE = 5.0
# How long a subscriber waits before it connects or subscribes again.
RETRY = 0.3
FAILURES = (OSError, CheckFailed, InvalidHandshake, asyncio.TimeoutError, asyncio.IncompleteReadError,
            ConnectionClosed, ValueError)


class Subscriber:
    """What every subscriber of the fault run's own keeps per topic: the
    last id it was given (where it resumes), the ids it holds (so that the
    workload knows when it has settled) and whether the topic's
    subscription is in place (for the presence readings)."""

    def __init__(self, name, base, topics, history):
        self.name = name
        self.base = base
        self.topics = list(topics)
        self.history = history
        self.last_id = {topic: "0-0" for topic in self.topics}
        self.ids = {topic: set() for topic in self.topics}
        self.live = set()
        self.stopping = False

    def connected(self, topic):
        return topic in self.live

    def has_all(self, acknowledged):
        """Whether it holds every acknowledged id ({topic: ids}) of its topics."""
        return all(acknowledged.get(topic, set()) <= self.ids[topic] for topic in self.topics)

    def record(self, kind, topic, **fields):
        self.history.record(kind, sub=self.name, topic=topic, **fields)

    def opened(self, topic, status, **fields):
        """The answer to a topic's subscription: in place when STATUS is
        101 or 200."""
        if status in (101, 200):
            self.live.add(topic)
        self.record("connect", topic, status=status, since=self.last_id[topic], **fields)

    def closed(self, topic, why):
        self.live.discard(topic)
        self.record("disconnect", topic, why=why)

    def take(self, topic, message):
        """One message of TOPIC, as a WebSocket sends it (an event, or a
        control with its fields) or as an event stream does (a gap is an
        event whose data is the JSON of its fields)."""
        if message.get("control") == "gap" or message.get("event") == "gap":
            gap = message.get("data") if "control" not in message else message
            if isinstance(gap, str):
                try:
                    gap = json.loads(gap)
                except ValueError:
                    gap = {"raw": gap}
            self.record("gap", topic, gap=gap)
            return
        if "control" in message or not isinstance(message.get("id"), str):
            # A control, or what no event is (no id): kept for whoever
            # reads a failed run, never taken for a delivery.
            self.record("control", topic, message=message)
            return
        self.record("deliver", topic, id=message["id"], data=message.get("data"))
        self.last_id[topic] = message["id"]
        self.ids[topic].add(message["id"])

    async def follow(self):
        """One connection, to its end: why it ended."""
        raise NotImplementedError

    async def run(self):
        while not self.stopping:
            try:
                why = await self.follow()
            except FAILURES as error:
                why = f"{type(error).__name__}: {error}"[:200]
            # Every topic the connection carried (or was to carry) ended
            # with it: the checker does not count a delivery that waited
            # across a reconnection as late.
            for topic in self.topics:
                self.closed(topic, why)
            if not self.stopping:
                await asyncio.sleep(RETRY)


async def read_event_stream(subscriber, stream, take):
    """Reads STREAM until the subscriber stops, the stream ends or it has
    been silent (no event, no heartbeat comment) for SILENCE seconds;
    TAKE(event) returns why to end it, or None. Why it ended."""
    heard = (stream.comments, time.monotonic())
    while not subscriber.stopping:
        try:
            event = await stream.next(1.0)
        except CheckFailed:
            if stream.comments != heard[0]:
                heard = (stream.comments, time.monotonic())
            elif time.monotonic() - heard[1] > SILENCE:
                return f"silent for {SILENCE} s"
            continue
        if event is None:
            return "ended"
        heard = (stream.comments, time.monotonic())
        why = take(event)
        if why is not None:
            return why
    return "stopped"


class EventStreamSubscriber(Subscriber):
    """One topic on `/topics/T/events`, resumed with `Last-Event-ID`."""

    def __init__(self, name, base, topic, history):
        super().__init__(name, base, [topic], history)
        self.topic = topic

    async def follow(self):
        stream = await EventStream.open(self.base, f"/topics/{self.topic}/events", self.last_id[self.topic])
        try:
            self.opened(self.topic, stream.status, node=stream.headers.get("x-tether-node"))
            if stream.status != 200:
                return f"status {stream.status}"
            return await read_event_stream(self, stream, lambda event: self.take(self.topic, event))
        finally:
            stream.close()


class WebSocketSubscriber(Subscriber):
    """One topic on `/topics/T/ws`, resumed with `?lastEventId=`."""

    def __init__(self, name, base, topic, history):
        super().__init__(name, base, [topic], history)
        self.topic = topic

    async def follow(self):
        url = ws_url(self.base, f"/topics/{self.topic}/ws?lastEventId={self.last_id[self.topic]}")
        async with ws_connect(url, open_timeout=5, close_timeout=1, ping_interval=1, ping_timeout=SILENCE) as ws:
            self.opened(self.topic, 101)
            while not self.stopping:
                try:
                    raw = await ws.recv()
                except ConnectionClosed as closed:
                    return f"closed {closed.rcvd.code if closed.rcvd else None}"
                self.take(self.topic, json.loads(raw))
            return "stopped"


class MultiWebSocketSubscriber(Subscriber):
    """Every one of its topics on one `GET /ws`. Each is subscribed with
    `since` its own last id; a subscription the hub refuses (503 while
    its bus is away) or ends is subscribed again on the same socket, the
    others going on; a socket that closes or goes silent is opened again
    and every topic subscribed anew."""

    async def follow(self):
        async with ws_connect(ws_url(self.base, "/ws"), open_timeout=5, close_timeout=1, ping_interval=1,
                              ping_timeout=SILENCE) as ws:
            retry_at = {topic: 0.0 for topic in self.topics}
            while not self.stopping:
                now = time.monotonic()
                for topic, at in list(retry_at.items()):
                    if at <= now:
                        del retry_at[topic]
                        await ws.send(json.dumps({"type": "subscribe", "topic": topic,
                                                  "since": self.last_id[topic]}))
                # Woken for the next subscribe due, if any.
                wait = max(0.0, min(retry_at.values()) - now) if retry_at else None
                try:
                    raw = await asyncio.wait_for(ws.recv(), wait)
                except asyncio.TimeoutError:
                    continue
                except ConnectionClosed as closed:
                    return f"closed {closed.rcvd.code if closed.rcvd else None}"
                message = json.loads(raw)
                topic = message.get("topic") if isinstance(message, dict) else None
                if topic not in self.ids:
                    # Not about one of its topics (an error without one, or
                    # a topic it never asked for): kept for whoever reads
                    # a failed run.
                    self.history.record("control", sub=self.name, topic=None, message=message)
                    continue
                control = message.get("control")
                if control == "subscribed":
                    self.opened(topic, 101)
                elif control in ("refused", "unsubscribed"):
                    self.record("control", topic, message=message)
                    self.closed(topic, f"{control} {message.get('status') or message.get('reason') or ''}".strip())
                    retry_at[topic] = time.monotonic() + RETRY
                else:
                    self.take(topic, message)
            return "stopped"


def encode_cursor(topics, positions):
    """The cursor (`~` and base64url) of a multi-topic event stream for
    TOPICS in their order, each at its position ("MS-SEQ", or None: from
    its next event): the hub's `Cursor::encode`, so that a stream can
    start every topic from 0-0 as the one-topic subscribers do."""
    fingerprint = 0x811C9DC5
    for byte in "\n".join(topics).encode():
        fingerprint = ((fingerprint ^ byte) * 0x01000193) & 0xFFFFFFFF
    out = bytearray([1]) + varint(len(topics)) + struct.pack("<I", fingerprint)
    previous = 0
    for position in positions:
        if position is None:
            out.append(0)
            continue
        ms, _, seq = position.partition("-")
        difference = (int(ms) - previous) & 0xFFFFFFFFFFFFFFFF
        signed = difference - (1 << 64) if difference >> 63 else difference
        out += varint((((signed << 1) ^ (signed >> 63)) & 0xFFFFFFFFFFFFFFFF) + 1) + varint(int(seq or 0))
        previous = int(ms)
    return "~" + base64.urlsafe_b64encode(bytes(out)).rstrip(b"=").decode()


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class MultiEventStreamSubscriber(Subscriber):
    """Every one of its topics on one `GET /events?topic=A&topic=B…`,
    resumed with the last cursor it was given (`Last-Event-ID`), which
    holds every topic's position; the first one starts each at 0-0. A
    topic refused at the start ends the stream, to be asked again with
    the others from the cursor."""

    def __init__(self, name, base, topics, history):
        super().__init__(name, base, topics, history)
        self.cursor = encode_cursor(self.topics, ["0-0"] * len(self.topics))

    async def follow(self):
        query = "&".join("topic=" + urllib.parse.quote(topic, safe="") for topic in self.topics)
        stream = await EventStream.open(self.base, f"/events?{query}", self.cursor)
        try:
            for topic in self.topics:
                self.opened(topic, stream.status, node=stream.headers.get("x-tether-node"))
            if stream.status != 200:
                return f"status {stream.status}"
            return await read_event_stream(self, stream, self.take_multi)
        finally:
            stream.close()

    def take_multi(self, event):
        """An event of the stream: its data is the JSON a `/ws` socket
        gets (naming its topic), its `id:` the cursor after it."""
        try:
            payload = json.loads(event.get("data", ""))
        except ValueError:
            payload = None
        topic = payload.get("topic") if isinstance(payload, dict) else None
        if topic not in self.ids:
            self.history.record("control", sub=self.name, topic=None, message=event)
            return None
        why = None
        kind = event.get("event", "message")
        if kind == "gap":
            self.record("gap", topic, gap=payload)
        elif kind == "refused":
            self.record("control", topic, message=payload)
            why = f"refused {topic} {payload.get('status')}"
        elif kind in ("join", "leave"):
            self.record("control", topic, message=payload)
        else:
            self.take(topic, payload)
        if event.get("id"):
            self.cursor = event["id"]
        return why


class ProcessSubscriber:
    """A subscriber that is another program (tether-client's `follow`
    example, or the browser client under Node: jsfollow.mjs), printing
    JSON lines: `open`/`state`, `event`, `gap`, `reconnecting`, `error`."""

    def __init__(self, name, topic, argv, history):
        self.name = name
        self.topic = topic
        self.topics = [topic]
        self.argv = argv
        self.history = history
        self.stopping = False
        self.proc = None
        self.ids = set()
        self.state = None
        # The browser client runs on long polls here: no member.
        self.member = not name.startswith("js.")

    def connected(self, topic):
        return topic == self.topic and self.member and self.state == "open"

    def has_all(self, acknowledged):
        return acknowledged.get(self.topic, set()) <= self.ids

    def record_event(self, event_type, event_id, data):
        if event_type == "gap":
            try:
                gap = json.loads(data)
            except ValueError:
                gap = {"raw": data}
            self.history.record("gap", sub=self.name, topic=self.topic, gap=gap)
        else:
            self.history.record("deliver", sub=self.name, topic=self.topic, id=event_id, data=data)
            self.ids.add(event_id)

    def take(self, line):
        try:
            m = json.loads(line)
        except ValueError:
            self.history.record("control", sub=self.name, topic=self.topic, message={"unparsed": line[:200]})
            return
        kind = m.get("kind")
        if kind == "event":
            self.record_event(m.get("type"), m.get("id"), m.get("data"))
        elif kind == "gap":
            self.history.record("gap", sub=self.name, topic=self.topic, gap=m.get("gap"))
        elif kind == "open" or (kind == "state" and m.get("state") == "open"):
            self.state = "open"
            self.history.record("connect", sub=self.name, topic=self.topic, status=None)
        elif kind == "reconnecting" or (kind == "state" and m.get("state") in ("resuming", "connecting")):
            self.state = "away"
            self.history.record("disconnect", sub=self.name, topic=self.topic,
                                why=m.get("why") or m.get("state"))
        else:
            # Errors, events the client dropped, anything else: kept for
            # whoever reads a failed run.
            self.history.record("control", sub=self.name, topic=self.topic, message=m)

    async def run(self):
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=asyncio.subprocess.PIPE)  # stderr: to the workload's log
        try:
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    break
                self.take(line.decode("utf-8", "replace").strip())
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
