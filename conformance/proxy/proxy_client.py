"""tether behind HAProxy and nginx: the checks that run.sh runs.

It starts the two tether nodes itself (so that it can kill one with
SIGKILL and start it again), on the ports and Redis that run.sh gives it,
and checks, through each proxy given with --proxy NAME=URL:

- an event stream (SSE) passes event by event, unbuffered;
- a WebSocket subscribes through the proxy's upgrade, and publishes;
- a long poll is answered when an event arrives, and an empty one within
  the proxy's timeout;
- an idle event stream and an idle WebSocket outlive the proxy's timeout
  (tether's heartbeat comments and pings keep them open);
- no stickiness: a subscriber whose node is killed reconnects through the
  proxy to the other node with its last id and gets every event published
  meanwhile exactly once, in order (SSE and WebSocket).

Prints "ok NAME" or "FAIL NAME: why" for each check; exits 0 when all
passed.
"""

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

# How late an event may arrive through a proxy and still count as
# unbuffered.
PROMPT = 1.0


class CheckFailed(Exception):
    pass


def expect(condition, why):
    if not condition:
        raise CheckFailed(why)


# --- the nodes ----------------------------------------------------------------


class Node:
    def __init__(self, args, index, port):
        self.args = args
        self.name = f"node{index}"
        self.port = port
        self.proc = None
        self.starts = 0

    def command(self):
        a = self.args
        return [
            a.tether, "serve", "--app", "hub", "--memory", "--threads", "1",
            "--addr", "127.0.0.1", "--port", str(self.port),
            *self.bus_options(),
            "--sse-heartbeat", str(a.heartbeat),
            "--ping-interval", str(a.heartbeat),
            "--poll-timeout", str(a.poll_timeout),
            "--ws-publish", "proxy.*",
            "--log-level", "warn",
        ]

    def bus_options(self):
        """The options that join the node to the others' bus."""
        return ["--redis", self.args.redis]

    async def start(self):
        self.starts += 1
        log = open(os.path.join(self.args.work, f"{self.name}-{self.starts}.log"), "wb")
        env = dict(os.environ, TETHER_PUBLISH_TOKEN=self.args.token)
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CheckFailed(f"{self.name} exited with {self.proc.returncode} at start")
            try:
                status, _, body = await http("GET", f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                if status == 200 and body.strip() == b"ok":
                    return
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise CheckFailed(f"{self.name} did not answer /healthz within 10 s")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=6)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def subscribers(self, transport):
        """The node's tether_hub_subscribers{transport=...} gauge (none on
        a node that is down)."""
        if self.proc is None or self.proc.poll() is not None:
            return 0
        _, _, body = await http("GET", f"http://127.0.0.1:{self.port}/metrics", timeout=2)
        pattern = rf'^tether_hub_subscribers\{{transport="{transport}"\}} (\d+)$'
        found = re.search(pattern, body.decode(), re.M)
        return int(found.group(1)) if found else 0


# --- plain HTTP ---------------------------------------------------------------


def _http_blocking(method, url, body, headers, timeout):
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


async def http(method, url, body=None, headers=None, timeout=5):
    return await asyncio.to_thread(_http_blocking, method, url, body, headers or {}, timeout)


async def publish(base, token, topic, data, key=None, attempts=1):
    """Publishes through BASE; with a key, retries what the proxy could not
    deliver (a node that died under it): the key makes it happen once."""
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Tether-Publish-Id"] = key
    last = None
    for _ in range(attempts):
        try:
            status, _, body = await http("POST", f"{base}/topics/{topic}", data.encode(), headers)
            if status == 200:
                return json.loads(body)["id"]
            last = f"status {status}: {body[:200]!r}"
        except OSError as error:
            last = repr(error)
        await asyncio.sleep(0.1)
    raise CheckFailed(f"publish {data!r} to {topic} through {base}: {last}")


def id_key(event_id):
    ms, seq = event_id.split("-")
    return (int(ms), int(seq))


# --- an event stream reader -----------------------------------------------------


class EventStream:
    """A minimal text/event-stream client over one HTTP/1.1 request."""

    def __init__(self):
        self.reader = None
        self.writer = None
        self.status = None
        self.headers = {}
        self.events = asyncio.Queue()
        self.comments = 0
        self.ended = asyncio.Event()
        self._task = None

    @classmethod
    async def open(cls, base, path, last_id=None, timeout=5):
        self = cls()
        url = urllib.parse.urlsplit(base)
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(url.hostname, url.port), timeout)
        head = (f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                "Accept: text/event-stream\r\n")
        if last_id is not None:
            head += f"Last-Event-ID: {last_id}\r\n"
        self.writer.write((head + "\r\n").encode())
        await self.writer.drain()
        try:
            raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        except asyncio.TimeoutError:
            self.writer.close()
            raise CheckFailed(f"no response head within {timeout} s (buffered?)") from None
        lines = raw.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                self.headers[name.strip().lower()] = value.strip()
        self._task = asyncio.create_task(self._read())
        return self

    async def _body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readline()).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    return
                yield await self.reader.readexactly(size)
                await self.reader.readexactly(2)
        else:
            while chunk := await self.reader.read(65536):
                yield chunk

    async def _read(self):
        buffer = b""
        fields = {}
        try:
            async for chunk in self._body():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    line = line.rstrip(b"\r").decode()
                    if line == "":
                        if "data" in fields:
                            self.events.put_nowait(fields)
                        fields = {}
                    elif line.startswith(":"):
                        self.comments += 1
                    else:
                        name, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if name == "data" and "data" in fields:
                            value = fields["data"] + "\n" + value
                        fields[name] = value
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            self.ended.set()

    async def next(self, timeout):
        """The next event, or None when the stream ended first."""
        get = asyncio.ensure_future(self.events.get())
        end = asyncio.ensure_future(self.ended.wait())
        done, _ = await asyncio.wait({get, end}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        end.cancel()
        if get in done:
            return get.result()
        get.cancel()
        if end in done and self.events.empty():
            return None
        if end in done:
            return self.events.get_nowait()
        raise CheckFailed(f"no event within {timeout} s")

    def close(self):
        if self._task is not None:
            self._task.cancel()
        if self.writer is not None:
            self.writer.close()


def ws_url(base, path):
    return "ws" + base[len("http"):] + path


async def ws_next(ws, timeout):
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), timeout))
    except asyncio.TimeoutError:
        raise CheckFailed(f"no message within {timeout} s") from None


# --- the checks ---------------------------------------------------------------


class Checks:
    def __init__(self, args, nodes):
        self.args = args
        self.nodes = nodes
        self.token = args.token
        self.failed = 0
        self.run_id = f"{os.getpid()}-{int(time.time())}"

    async def check(self, name, coroutine):
        try:
            detail = await asyncio.wait_for(coroutine, 30)
            print(f"ok {name}{': ' + detail if detail else ''}", flush=True)
        except CheckFailed as error:
            self.failed += 1
            print(f"FAIL {name}: {error}", flush=True)
        except Exception as error:  # a check that crashed fails; the others go on
            self.failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)

    def topic(self, proxy, what):
        return f"proxy.{proxy}.{what}.{self.run_id}"

    # (a) SSE event by event
    async def sse_unbuffered(self, proxy, base, header_passes):
        topic = self.topic(proxy, "sse")
        stream = await EventStream.open(base, f"/topics/{topic}/events")
        try:
            expect(stream.status == 200, f"status {stream.status}")
            expect(stream.headers.get("content-type", "").startswith("text/event-stream"),
                   f"content-type {stream.headers.get('content-type')!r}")
            if header_passes:
                expect(stream.headers.get("x-accel-buffering") == "no",
                       f"X-Accel-Buffering through the proxy: {stream.headers.get('x-accel-buffering')!r}")
            slowest = 0.0
            for i in range(3):
                await asyncio.sleep(0.2)
                sent = time.monotonic()
                event_id = await publish(base, self.token, topic, f"event {i}")
                event = await stream.next(PROMPT + 1)
                late = time.monotonic() - sent
                expect(event is not None, "the stream ended")
                expect(event.get("data") == f"event {i}" and event.get("id") == event_id,
                       f"got {event}, expected event {i} with id {event_id}")
                expect(late <= PROMPT, f"event {i} took {late:.2f} s (buffered?)")
                slowest = max(slowest, late)
            return f"3 events, each within {slowest * 1000:.0f} ms of its publish"
        finally:
            stream.close()

    async def node_sends_accel_header(self):
        node = self.nodes[0]
        stream = await EventStream.open(f"http://127.0.0.1:{node.port}", "/topics/proxy.header/events")
        try:
            expect(stream.headers.get("x-accel-buffering") == "no",
                   f"X-Accel-Buffering from the node: {stream.headers.get('x-accel-buffering')!r}")
        finally:
            stream.close()
        return ""

    # (b) WebSocket
    async def websocket(self, proxy, base):
        topic = self.topic(proxy, "ws")
        url = ws_url(base, f"/topics/{topic}/ws")
        async with ws_connect(url, open_timeout=5) as a, ws_connect(url, open_timeout=5) as b:
            await asyncio.sleep(0.2)
            event_id = await publish(base, self.token, topic, "over http")
            for ws in (a, b):
                message = await ws_next(ws, PROMPT + 1)
                expect(message.get("data") == "over http" and message.get("id") == event_id,
                       f"got {message}, expected 'over http' with id {event_id}")
            await a.send("over the websocket")
            for ws in (b, a):
                message = await ws_next(ws, PROMPT + 1)
                expect(message.get("data") == "over the websocket",
                       f"got {message}, expected the WebSocket publish")
        return "upgrade, an HTTP publish to two subscribers, a WebSocket publish"

    # (c) long poll
    async def long_poll(self, proxy, base):
        topic = self.topic(proxy, "poll")
        first = await publish(base, self.token, topic, "before")

        async def poll(since):
            started = time.monotonic()
            status, _, body = await http("GET", f"{base}/topics/{topic}/poll?since={since}", timeout=10)
            return status, json.loads(body) if status == 200 else body, time.monotonic() - started

        waiting = asyncio.create_task(poll(first))
        await asyncio.sleep(0.4)
        expect(not waiting.done(), f"the poll was answered before the event: {waiting.done() and waiting.result()}")
        second = await publish(base, self.token, topic, "after")
        status, answer, _ = await asyncio.wait_for(waiting, PROMPT + 1)
        expect(status == 200, f"status {status}: {answer!r}")
        events = [(e["id"], e["data"]) for e in answer["events"]]
        expect(events == [(second, "after")] and answer["next"] == second,
               f"answer {answer}, expected the event {second}")
        # Nothing comes: answered empty at --poll-timeout, inside the
        # proxy's timeout (not a 504 from the proxy).
        status, answer, took = await poll(second)
        expect(status == 200 and answer["events"] == [],
               f"an empty poll got {status}: {answer!r} after {took:.1f} s")
        return f"answered on the event; an empty poll after {took:.1f} s"

    # (d) heartbeat and pings keep idle connections through the proxy
    async def idle_sse(self, proxy, base):
        topic = self.topic(proxy, "idle-sse")
        stream = await EventStream.open(base, f"/topics/{topic}/events")
        try:
            expect(stream.status == 200, f"status {stream.status}")
            idle = self.args.proxy_timeout * 2
            await asyncio.sleep(idle)
            expect(not stream.ended.is_set(), f"the proxy ended the idle stream within {idle} s")
            event_id = await publish(base, self.token, topic, "after the silence")
            event = await stream.next(PROMPT + 1)
            expect(event is not None and event.get("id") == event_id, f"got {event}")
            expect(stream.comments >= 2, f"{stream.comments} heartbeat comments in {idle} s")
            return f"idle {idle:g} s (proxy timeout {self.args.proxy_timeout:g} s), {stream.comments} heartbeats"
        finally:
            stream.close()

    async def idle_ws(self, proxy, base):
        topic = self.topic(proxy, "idle-ws")
        # No pings of the client's own: only the server's keep it open.
        async with ws_connect(ws_url(base, f"/topics/{topic}/ws"), open_timeout=5, ping_interval=None) as ws:
            idle = self.args.proxy_timeout * 2
            await asyncio.sleep(idle)
            event_id = await publish(base, self.token, topic, "after the silence")
            try:
                message = await ws_next(ws, PROMPT + 1)
            except ConnectionClosed as closed:
                raise CheckFailed(f"closed while idle: {closed}") from None
            expect(message.get("id") == event_id, f"got {message}")
        return f"idle {idle:g} s (proxy timeout {self.args.proxy_timeout:g} s)"

    # (e) no stickiness
    async def subscriber_node(self, transport):
        """The one node that has a subscriber of this transport."""
        deadline = time.monotonic() + 3
        counts = []
        while time.monotonic() < deadline:
            counts = [await node.subscribers(transport) for node in self.nodes]
            if sorted(counts) == [0, 1]:
                return self.nodes[counts.index(1)]
            await asyncio.sleep(0.1)
        raise CheckFailed(f"{transport} subscribers per node: {counts} (expected one on one node)")

    async def publish_through_failure(self, base, topics, count, half_done, published):
        for i in range(count):
            if i == count // 2:
                half_done.set()
            topic = topics[i % len(topics)]
            data = f"meanwhile {i}"
            # Retried with its key: a publish the proxy sent to the dying
            # node is made once.
            event_id = await publish(base, self.token, topic, data, key=f"k{i}", attempts=30)
            published.append((topic, event_id, data))
            await asyncio.sleep(0.05)

    async def failover(self, proxy, base, transport):
        """A subscriber whose node is killed resumes on the other one from
        its last id: "sse" and "ws" follow one topic, "sse-multi" three on
        one event stream (its ids are cursors of every topic's position).
        Every topic's events arrive once, in order."""
        many = transport == "sse-multi"
        topics = [self.topic(proxy, f"failover-{transport}-{i}") for i in range(3 if many else 1)]
        published = []
        received = []
        reconnects = 0

        async def sse_connect(last_id):
            path = ("/events?" + "&".join(f"topic={t}" for t in topics) if many
                    else f"/topics/{topics[0]}/events")
            stream = await EventStream.open(base, path, last_id)
            if stream.status != 200:
                stream.close()
                raise OSError(f"status {stream.status}")

            async def next_event(timeout):
                event = await stream.next(timeout)
                if event is None:
                    return None, None
                if many:
                    inner = json.loads(event["data"])
                    return (inner["topic"], inner["id"], inner["data"]), event["id"]
                return (topics[0], event["id"], event["data"]), event["id"]
            return stream, next_event

        async def ws_connect_topic(last_id):
            query = f"?lastEventId={last_id}" if last_id else ""
            ws = await ws_connect(ws_url(base, f"/topics/{topics[0]}/ws{query}"), open_timeout=3)

            async def next_event(timeout):
                try:
                    message = await ws_next(ws, timeout)
                except ConnectionClosed:
                    return None, None
                expect("control" not in message, f"control message {message}")
                return (topics[0], message["id"], message["data"]), message["id"]

            class Closer:
                def close(self):
                    asyncio.ensure_future(ws.close())
            return Closer(), next_event

        connect_once = ws_connect_topic if transport == "ws" else sse_connect
        counted_as = "websocket" if transport == "ws" else "sse"

        async def reconnect(last_id):
            deadline = time.monotonic() + 8
            while True:
                try:
                    return await connect_once(last_id)
                # Refused connections, a 502 or 503 from the proxy, a
                # handshake the proxy could not complete: a client retries.
                except Exception as error:
                    if time.monotonic() > deadline:
                        raise CheckFailed(f"could not reconnect through the proxy: {error!r}") from None
                    await asyncio.sleep(0.2)

        async def publish_to(i, data):
            topic = topics[i % len(topics)]
            published.append((topic, await publish(base, self.token, topic, data), data))

        conn, next_event = await reconnect(None)
        last_id = None
        try:
            victim = await self.subscriber_node(counted_as)
            for i in range(2 * len(topics)):
                await publish_to(i, f"before {i}")
                event, last_id = await next_event(PROMPT + 1)
                expect(event == published[-1], f"got {event}, expected {published[-1]}")
                received.append(event)
            victim.kill()
            half_done = asyncio.Event()
            meanwhile = []
            publisher = asyncio.create_task(
                self.publish_through_failure(base, topics, 8 * len(topics), half_done, meanwhile))
            # Read what is left, then the end; once half the events are
            # published (so that some come from the backlog), reconnect
            # with the last id.
            while True:
                event, resume = await next_event(5)
                if event is not None:
                    received.append(event)
                    last_id = resume
                    continue
                conn.close()
                reconnects += 1
                expect(reconnects == 1, "a second disconnection")
                await asyncio.wait_for(half_done.wait(), 10)
                resumed_from = last_id
                missed = len(meanwhile)
                conn, next_event = await reconnect(resumed_from)
                break
            survivor = await self.subscriber_node(counted_as)
            expect(survivor is not victim, "the new subscription is on the killed node")
            await publisher
            published += meanwhile
            for i in range(len(topics)):
                await publish_to(i, "the end")
            ends = 0
            while ends < len(topics):
                event, _ = await next_event(5)
                expect(event is not None, f"the stream ended again after {received[-1]}")
                received.append(event)
                ends += event[2] == "the end"
        finally:
            conn.close()
        for topic in topics:
            got = [e for e in received if e[0] == topic]
            sent = [e for e in published if e[0] == topic]
            expect(got == sent, f"{topic}: received {len(got)} events, published {len(sent)}: {got} vs {sent}")
            ids = [id_key(event_id) for _, event_id, _ in got]
            expect(ids == sorted(set(ids)), f"{topic}: ids not increasing: {got}")
        await victim.start()
        return (f"{victim.name} killed, resumed on {survivor.name} from {resumed_from} "
                f"({missed} published while away): {len(published)} events over {len(topics)} "
                f"topic(s), each once, in order")

    async def run(self):
        for node in self.nodes:
            await node.start()
        for name, base in self.args.proxy:
            await self.wait_for_proxy(name, base)
        await self.check("the nodes send X-Accel-Buffering: no on event streams", self.node_sends_accel_header())
        for name, base in self.args.proxy:
            header_passes = name.startswith("haproxy")
            await self.check(f"{name}: SSE event by event, unbuffered", self.sse_unbuffered(name, base, header_passes))
        for name, base in self.args.proxy:
            if name.endswith("-buffered"):
                continue
            await self.check(f"{name}: WebSocket upgrade, subscribe and publish", self.websocket(name, base))
            await self.check(f"{name}: long poll", self.long_poll(name, base))
            # The two idle checks at once: they wait.
            await asyncio.gather(
                self.check(f"{name}: idle SSE outlives the proxy timeout", self.idle_sse(name, base)),
                self.check(f"{name}: idle WebSocket outlives the proxy timeout", self.idle_ws(name, base)))
            for transport in ("sse", "ws", "sse-multi"):
                await self.check(f"{name}: no stickiness, {transport} resumes on the other node",
                                 self.failover(name, base, transport))
                # The killed node is back; let the proxy see it again.
                await self.wait_for_proxy(name, base)
                await asyncio.sleep(self.args.readmit)
        return self.failed

    async def wait_for_proxy(self, name, base):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                status, _, _ = await http("GET", f"{base}/healthz", timeout=1)
                if status == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.1)
        raise CheckFailed(f"{name} at {base} did not answer /healthz within 10 s")


def proxy_arg(text):
    name, _, url = text.partition("=")
    if not url:
        raise argparse.ArgumentTypeError("expected NAME=URL")
    return name, url.rstrip("/")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tether", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--node-port", type=int, action="append", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--proxy", type=proxy_arg, action="append", required=True)
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--poll-timeout", type=float, default=1.5)
    parser.add_argument("--proxy-timeout", type=float, required=True)
    parser.add_argument("--readmit", type=float, default=1.2,
                        help="seconds for a proxy to take a restarted node back")
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    nodes = [Node(args, i + 1, port) for i, port in enumerate(args.node_port)]
    checks = Checks(args, nodes)
    try:
        failed = await checks.run()
    except CheckFailed as error:
        print(f"FAIL setup: {error}", flush=True)
        failed = 1
    finally:
        for node in nodes:
            node.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
