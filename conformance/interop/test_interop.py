"""Interoperability tests: tether's server against independent clients.

The WebSocket client is Python's `websockets` package (not tether's own
client); the Server-Sent Events client is `curl -N`, whose output is also
fed to `tether sse-decode`; publishing and long polls are curl too. Run by
`run.sh` beside this file, which builds the binary, provides the venv and
starts the server (with a publish token); by hand:

    TETHER_PUBLISH_TOKEN=t tether serve --port 8080 &
    python test_interop.py --url http://127.0.0.1:8080 --tether target/release/tether --token t

Prints one line per test and finally `interop: N passed, M failed`; exits 1
when anything failed.
"""

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
import traceback
import uuid

import websockets
from websockets.asyncio.client import connect

SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20]

# Generous bounds: the tests run on a shared 2-core machine.
WS_TIMEOUT = 20.0


class Failure(Exception):
    """A check did not hold."""


def check(cond, message):
    if not cond:
        raise Failure(message)


def text_of_size(n, seed):
    """A str whose UTF-8 encoding is exactly n bytes, with 1- to 4-byte
    characters throughout so that frame boundaries fall inside them."""
    rng = random.Random(seed)
    pieces = ["a", "\u00e9", "\u20ac", "\U0001f600", "z", "\u0416"]
    out, size = [], 0
    while size < n:
        c = rng.choice(pieces)
        width = len(c.encode())
        if size + width > n:
            c, width = "x", 1
        out.append(c)
        size += width
    s = "".join(out)
    assert len(s.encode()) == n
    return s


def binary_of_size(n, seed):
    return random.Random(seed).randbytes(n)


def describe(data):
    kind = "text" if isinstance(data, str) else "binary"
    size = len(data.encode()) if isinstance(data, str) else len(data)
    return f"{kind} {size} B"


def id_key(event_id):
    """A hub event id "ms-seq" as a sortable pair."""
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


class Interop:
    def __init__(self, url, tether, curl, token):
        self.http = url.rstrip("/")
        scheme, rest = self.http.split("://", 1)
        self.ws = ("wss://" if scheme == "https" else "ws://") + rest
        self.tether = tether
        self.curl = curl
        self.token = token
        self.results = []

    # -- running ---------------------------------------------------------

    async def run(self, name, coro_fn, timeout=60.0):
        start = time.monotonic()
        try:
            await asyncio.wait_for(coro_fn(), timeout)
        except Failure as e:
            self.report(name, False, start, str(e))
        except asyncio.TimeoutError:
            waited = time.monotonic() - start
            self.report(name, False, start, f"timed out after {waited:.0f} s (nothing came)")
        except Exception as e:  # noqa: BLE001 - any error fails the test
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            self.report(name, False, start, detail)
        else:
            self.report(name, True, start, "")

    def report(self, name, ok, start, detail):
        ms = (time.monotonic() - start) * 1000
        self.results.append((name, ok))
        line = f"{'PASS' if ok else 'FAIL'} {name} ({ms:.0f} ms)"
        if detail:
            line += f": {detail}"
        print(line, flush=True)

    # -- WebSocket -------------------------------------------------------

    async def echo_one(self, ws, message):
        await ws.send(message)
        got = await asyncio.wait_for(ws.recv(), WS_TIMEOUT)
        check(
            type(got) is type(message),
            f"sent {describe(message)}, got a {'text' if isinstance(got, str) else 'binary'}"
            " message back",
        )
        if got != message:
            raw_sent = message.encode() if isinstance(message, str) else message
            raw_got = got.encode() if isinstance(got, str) else got
            raise Failure(
                f"sent {describe(message)}, got {describe(got)} back, first difference at"
                f" byte {first_difference(raw_sent, raw_got)}"
            )

    async def test_echo_sizes(self, compression):
        """Every size, text and binary, on one connection (a new one after a
        failure, so that one failure does not take the rest with it)."""
        label = "no extension offered" if compression is None else "permessage-deflate offered"
        state = {"ws": None, "extensions": None}

        async def connection():
            if state["ws"] is None:
                state["ws"] = await connect(
                    self.ws + "/echo",
                    compression=compression,
                    max_size=4 << 20,
                    open_timeout=WS_TIMEOUT,
                    close_timeout=WS_TIMEOUT,
                )
                ext = state["ws"].response.headers.get("Sec-WebSocket-Extensions")
                state["extensions"] = ext or "none"
            return state["ws"]

        for kind in ("text", "binary"):
            for n in SIZES:
                message = text_of_size(n, n) if kind == "text" else binary_of_size(n, n)

                async def one(message=message):
                    await self.echo_one(await connection(), message)

                before = len(self.results)
                await self.run(f"ws echo {kind} {n} B ({label})", one)
                if not self.results[before][1] and state["ws"] is not None:
                    ws, state["ws"] = state["ws"], None
                    await ws.close()
        if state["ws"] is not None:
            await state["ws"].close()
        print(f"     negotiated extensions ({label}): {state['extensions']}", flush=True)

    async def test_deflate_negotiated(self):
        """`tether serve` enables permessage-deflate by default: websockets'
        default offer is accepted, and an offer-less client gets none."""
        async with connect(self.ws + "/echo", open_timeout=WS_TIMEOUT) as ws:
            ext = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
            check(ext.split(";")[0].strip() == "permessage-deflate",
                  f"websockets offered {ws.request.headers.get('Sec-WebSocket-Extensions')!r};"
                  f" the server answered Sec-WebSocket-Extensions {ext!r}")
            big = "tether " * 100_000  # compresses well: exercises inflate on both sides
            await self.echo_one(ws, big)
        async with connect(self.ws + "/echo", compression=None, open_timeout=WS_TIMEOUT) as ws:
            ext = ws.response.headers.get("Sec-WebSocket-Extensions")
            check(ext is None, f"no offer, yet the server answered with extensions {ext!r}")

    async def test_fragmented(self):
        async with connect(self.ws + "/echo", compression=None, open_timeout=WS_TIMEOUT) as ws:
            parts = [text_of_size(n, n + 7) for n in (3, 1000, 0, 70000, 1)]
            await ws.send(parts)  # an iterable is sent as one fragmented message
            got = await asyncio.wait_for(ws.recv(), WS_TIMEOUT)
            check(got == "".join(parts), f"fragmented text came back as {describe(got)}")
            bparts = [binary_of_size(n, n + 9) for n in (1, 65536, 5)]
            await ws.send(bparts)
            got = await asyncio.wait_for(ws.recv(), WS_TIMEOUT)
            check(got == b"".join(bparts), f"fragmented binary came back as {describe(got)}")

    async def test_ping(self):
        async with connect(self.ws + "/echo", compression=None, open_timeout=WS_TIMEOUT) as ws:
            waiter = await ws.ping(b"are you there")
            latency = await asyncio.wait_for(waiter, WS_TIMEOUT)
            check(latency >= 0, "no pong")
            # The connection still carries messages after the ping.
            await self.echo_one(ws, "after ping")

    async def test_close(self, code, reason):
        ws = await connect(self.ws + "/echo", compression=None, open_timeout=WS_TIMEOUT,
                           close_timeout=WS_TIMEOUT)
        await self.echo_one(ws, "before close")
        await ws.close(code, reason)
        check(ws.protocol.close_sent is not None, "the client did not send its close frame")
        check(
            ws.protocol.close_rcvd is not None,
            "the server did not answer the close frame (the TCP connection just ended)",
        )
        check(
            ws.close_code == code,
            f"client closed with {code} {reason!r}; server's close frame had code"
            f" {ws.close_code} reason {ws.close_reason!r}, expected code {code}",
        )
        print(f"     close {code} {reason!r} answered with {ws.close_code} {ws.close_reason!r}",
              flush=True)

    async def ws_event(self, ws):
        """The next hub message on a WebSocket, as JSON."""
        got = await asyncio.wait_for(ws.recv(), WS_TIMEOUT)
        check(isinstance(got, str), f"expected a JSON text message, got {describe(got)}")
        return json.loads(got)

    async def test_chat(self):
        """The demo's chat: a topic chat.ROOM that WebSocket clients publish to."""
        room = "interop-" + uuid.uuid4().hex[:8]
        kwargs = dict(compression=None, open_timeout=WS_TIMEOUT, close_timeout=WS_TIMEOUT)
        async with connect(f"{self.ws}/topics/chat.{room}/ws", **kwargs) as a, \
                connect(f"{self.ws}/topics/chat.{room}/ws", **kwargs) as b, \
                connect(f"{self.ws}/topics/chat.{room}-other/ws", **kwargs) as other:
            last = None
            for sender, name in ((a, "A"), (b, "B")):
                text = f"hello from {name} \u2713 {uuid.uuid4().hex[:6]}"
                await sender.send(text)
                ids = set()
                for receiver, rname in ((a, "A"), (b, "B")):
                    got = await self.ws_event(receiver)
                    check(got.get("data") == text and got.get("topic") == f"chat.{room}"
                          and got.get("event") == "message",
                          f"{name} sent {text!r}; {rname} got {got!r}")
                    ids.add(got["id"])
                check(len(ids) == 1, f"A and B saw different ids for one message: {ids}")
                new = ids.pop()
                check(last is None or id_key(new) > id_key(last), f"ids not increasing: {last}, {new}")
                last = new
            # A binary message is a binary event: both get it as its base64, marked.
            await a.send(b"\x00binary")
            for receiver, rname in ((a, "A"), (b, "B")):
                got = await self.ws_event(receiver)
                check(got.get("data") == "AGJpbmFyeQ==" and got.get("encoding") == "base64",
                      f"after a binary message {rname} got {got!r}")
            await a.send("after binary")
            got = await self.ws_event(b)
            check(got.get("data") == "after binary", f"expected 'after binary' at B, got {got!r}")
            await self.ws_event(a)
            # Another room hears nothing.
            try:
                leaked = await asyncio.wait_for(other.recv(), 0.5)
            except asyncio.TimeoutError:
                pass
            else:
                raise Failure(f"a socket in another room received {leaked!r}")

    async def test_chat_sse_bridge(self):
        """A chat message reaches the topic's event stream (curl), with the same ids."""
        room = "interop-sse-" + uuid.uuid4().hex[:8]
        curl = subprocess.Popen(
            [self.curl, "-sN", "--max-time", "10", f"{self.http}/topics/chat.{room}/events"],
            stdout=subprocess.PIPE,
        )
        ids = []
        try:
            # Subscribed once the stream's first bytes (the retry hint) arrive.
            first = await asyncio.wait_for(asyncio.to_thread(curl.stdout.readline), WS_TIMEOUT)
            check(first.startswith(b"retry:"), f"the event stream began with {first!r}")
            async with connect(f"{self.ws}/topics/chat.{room}/ws", compression=None,
                               open_timeout=WS_TIMEOUT) as ws:
                for text in ("one", "two\nlines"):
                    await ws.send(text)
                    ids.append((await self.ws_event(ws))["id"])
        finally:
            await asyncio.sleep(0.3)
            curl.terminate()
            rest = await asyncio.to_thread(curl.stdout.read)
            curl.wait()
        events = [e for e in self.sse_decode(first + rest) if "type" in e]
        got = [(e["type"], e["data"], e["last_event_id"]) for e in events]
        want = [("message", "one", ids[0]), ("message", "two\nlines", ids[1])]
        check(got == want, f"the event stream delivered {got}, expected {want}")

    # -- the hub over HTTP: publish, replay, gap, long poll, auth, metrics

    def curl_http(self, *args):
        """curl with the status code appended; (status, body text)."""
        out = subprocess.run([self.curl, "-sS", "--max-time", "20", "-w", "\n%{http_code}", *args],
                             capture_output=True, timeout=40)
        check(out.returncode == 0, f"curl {args} exited {out.returncode}: "
              f"{out.stderr.decode(errors='replace').strip()}")
        body, _, code = out.stdout.decode().rpartition("\n")
        return int(code), body

    def publish(self, topic, data, event=None, token=None):
        url = f"{self.http}/topics/{topic}" + (f"?event={event}" if event else "")
        status, body = self.curl_http("-X", "POST", "-H",
                                      f"Authorization: Bearer {token or self.token}",
                                      "--data-binary", data, url)
        check(status == 200, f"POST {url}: {status} {body!r}")
        return json.loads(body)["id"]

    def curl_stream(self, target, seconds, headers=()):
        """`curl -N` on an event stream for `seconds`, decoded by sse-decode."""
        cmd = [self.curl, "-sN", "--max-time", str(seconds)]
        for header in headers:
            cmd += ["-H", header]
        out = subprocess.run(cmd + [self.http + target], capture_output=True, timeout=seconds + 15)
        check(out.returncode == 28, f"curl exited {out.returncode}, expected 28 (--max-time)")
        return [e for e in self.sse_decode(out.stdout) if "type" in e]

    async def test_hub_replay(self):
        """curl publishes; curl -N resumes with Last-Event-ID (header and query): exactly the rest."""
        topic = "interop-replay-" + uuid.uuid4().hex[:8]
        sent = [("update", f"item {i}\nline two") for i in range(3)]
        ids = [await asyncio.to_thread(self.publish, topic, data, event) for event, data in sent]
        check(len(set(ids)) == 3 and sorted(ids, key=id_key) == ids, f"ids {ids}")
        want = [(e, d, i) for (e, d), i in zip(sent[1:], ids[1:])]
        for target, headers in ((f"/topics/{topic}/events", [f"Last-Event-ID: {ids[0]}"]),
                                (f"/topics/{topic}/events?lastEventId={ids[0]}", [])):
            events = await asyncio.to_thread(self.curl_stream, target, 1.5, headers)
            got = [(e["type"], e["data"], e["last_event_id"]) for e in events]
            check(got == want, f"{target} {headers}: {got}, expected {want}")
        # The same over WebSocket with ?lastEventId=.
        async with connect(f"{self.ws}/topics/{topic}/ws?lastEventId={ids[0]}", compression=None,
                           open_timeout=WS_TIMEOUT) as ws:
            got = [await self.ws_event(ws) for _ in range(2)]
            got = [(e["event"], e["data"], e["id"]) for e in got]
            check(got == want, f"WebSocket resume: {got}, expected {want}")

    async def test_hub_gap(self):
        """An unknown Last-Event-ID gets a gap event, then what is held."""
        topic = "interop-gap-" + uuid.uuid4().hex[:8]
        first = await asyncio.to_thread(self.publish, topic, "kept")
        events = await asyncio.to_thread(self.curl_stream, f"/topics/{topic}/events", 1.5,
                                         ["Last-Event-ID: 1-1"])
        check(len(events) == 2 and events[0]["type"] == "gap",
              f"expected a gap then one event, got {events}")
        gap = json.loads(events[0]["data"])
        check(gap == {"topic": topic, "requested": "1-1", "first": first, "resume": "0-0"},
              f"gap data {gap}")
        check(events[0]["last_event_id"] == "0-0", f"the gap's id {events[0]['last_event_id']!r}")
        check(events[1]["data"] == "kept" and events[1]["last_event_id"] == first, f"{events[1]}")

    async def test_hub_poll(self):
        """Long polls with curl: at once when there is something, else until the timeout."""
        topic = "interop-poll-" + uuid.uuid4().hex[:8]
        one = await asyncio.to_thread(self.publish, topic, "one")
        two = await asyncio.to_thread(self.publish, topic, "two")
        status, body = await asyncio.to_thread(self.curl_http, f"{self.http}/topics/{topic}/poll?since={one}")
        answer = json.loads(body)
        check(status == 200 and [e["data"] for e in answer["events"]] == ["two"]
              and answer["next"] == two and answer["gap"] is None, f"poll since one: {status} {body}")
        status, body = await asyncio.to_thread(
            self.curl_http, f"{self.http}/topics/{topic}/poll?since={two}&timeout=0.5")
        answer = json.loads(body)
        check(status == 200 and answer["events"] == [] and answer["next"] == two,
              f"an up-to-date poll's timeout: {status} {body}")
        # Held until a publish, which answers it.
        poll = asyncio.create_task(asyncio.to_thread(
            self.curl_http, f"{self.http}/topics/{topic}/poll?since={two}"))
        await asyncio.sleep(0.5)
        three = await asyncio.to_thread(self.publish, topic, "three")
        status, body = await asyncio.wait_for(poll, WS_TIMEOUT)
        answer = json.loads(body)
        check([e["id"] for e in answer["events"]] == [three], f"the held poll got {body}")

    async def test_hub_auth(self):
        """Publishing needs the token; tickets are single use."""
        url = f"{self.http}/topics/interop-auth"
        status, _ = await asyncio.to_thread(self.curl_http, "-X", "POST", "--data-binary", "x", url)
        check(status == 401, f"no token: {status}")
        status, _ = await asyncio.to_thread(self.curl_http, "-X", "POST", "-H", "Authorization: Bearer wrong",
                                            "--data-binary", "x", url)
        check(status == 401, f"a wrong token: {status}")
        status, _ = await asyncio.to_thread(self.curl_http, "-X", "POST", f"{self.http}/tickets")
        check(status == 401, f"a ticket without the token: {status}")
        status, body = await asyncio.to_thread(self.curl_http, "-X", "POST", "-H",
                                               f"Authorization: Bearer {self.token}",
                                               f"{self.http}/tickets?topic=interop-auth")
        check(status == 200, f"a ticket: {status} {body}")
        ticket = json.loads(body)["ticket"]
        target = f"{self.ws}/topics/interop-auth/ws?ticket={ticket}"
        async with connect(target, compression=None, open_timeout=WS_TIMEOUT):
            pass
        try:
            async with connect(target, compression=None, open_timeout=WS_TIMEOUT):
                pass
        except websockets.exceptions.InvalidStatus as e:
            check(e.response.status_code == 403, f"a used ticket: {e.response.status_code}")
        else:
            raise Failure("a used ticket opened a WebSocket")

    async def test_hub_metrics(self):
        status, body = await asyncio.to_thread(self.curl_http, f"{self.http}/metrics")
        check(status == 200, f"/metrics: {status}")
        samples = {}
        for line in body.splitlines():
            if line.startswith("#") or not line:
                continue
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
        check(samples.get("tether_broker_up") == 1.0, "tether_broker_up is not 1")
        published = samples.get('tether_hub_publishes_total{result="ok"}', 0)
        check(published >= 6, f"publishes counted: {published}")
        check(samples.get('tether_hub_gaps_total', 0) >= 1, "the gap was not counted")

    async def test_hub_compressed(self):
        """A websockets subscriber (permessage-deflate by default) gets a hub
        event as the frame compressed once and shared (counted in /metrics);
        one without the extension gets the same event plain."""
        topic = "interop-deflate-" + uuid.uuid4().hex[:8]
        data = json.dumps([{"symbol": f"SYM{i}", "bid": 100.25 + i, "ask": 100.5 + i, "venue": "main"}
                           for i in range(16)])

        def deflated_sent():
            status, body = self.curl_http(f"{self.http}/metrics")
            check(status == 200, f"/metrics: {status}")
            for line in body.splitlines():
                if line.startswith("tether_ws_deflated_sent_total "):
                    return float(line.split()[1])
            raise Failure("/metrics has no tether_ws_deflated_sent_total")

        before = await asyncio.to_thread(deflated_sent)
        async with connect(f"{self.ws}/topics/{topic}/ws", open_timeout=WS_TIMEOUT) as compressed, \
                connect(f"{self.ws}/topics/{topic}/ws", compression=None, open_timeout=WS_TIMEOUT) as plain:
            ext = compressed.response.headers.get("Sec-WebSocket-Extensions") or ""
            check("server_no_context_takeover" in ext, f"the server answered {ext!r}")
            event_id = await asyncio.to_thread(self.publish, topic, data)
            for ws in (compressed, plain):
                event = await self.ws_event(ws)
                check((event["id"], event["data"]) == (event_id, data), f"got {event}")
        after = await asyncio.to_thread(deflated_sent)
        check(after - before == 1, f"compressed deliveries counted: {after - before}, expected 1")

    # -- Server-Sent Events through curl ---------------------------------

    def sse_decode(self, raw, chunk=None):
        cmd = [self.tether, "sse-decode"] + (["--chunk", str(chunk)] if chunk else [])
        out = subprocess.run(cmd, input=raw, capture_output=True, timeout=30)
        check(out.returncode == 0,
              f"tether sse-decode exited {out.returncode}: {out.stderr.decode(errors='replace')}")
        lines = out.stdout.decode().splitlines()
        try:
            return [json.loads(line) for line in lines]
        except json.JSONDecodeError as e:
            raise Failure(f"sse-decode printed a line that is not JSON: {e}") from None

    def curl_clock(self, seconds, last_event_id=None):
        """`curl -N` on /clock for `seconds`; (status, headers, body)."""
        cmd = [self.curl, "-sSN", "--max-time", str(seconds), "-D", "-"]
        if last_event_id is not None:
            cmd += ["-H", f"Last-Event-ID: {last_event_id}"]
        out = subprocess.run(cmd + [self.http + "/clock"], capture_output=True,
                             timeout=seconds + 15)
        # 28: the --max-time we asked for ended the endless stream.
        check(out.returncode == 28,
              f"curl exited {out.returncode}, expected 28 (--max-time):"
              f" {out.stderr.decode(errors='replace').strip()} {out.stdout[:120]!r}")
        head, sep, body = out.stdout.partition(b"\r\n\r\n")
        check(sep, f"no complete response head from /clock: {out.stdout[:200]!r}")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return lines[0], headers, body

    def check_clock_events(self, events, resumed_from, first_tick=None):
        """JSON Lines from sse-decode: retry, welcome, then ticks in order."""
        check(events and events[0] == {"retry": 3000},
              f"first decoded item {events[:1]}, expected {{'retry': 3000}}")
        rest = events[1:]
        check(rest and rest[0].get("type") == "welcome",
              f"expected a welcome event after the retry, got {rest[:1]}")
        welcome = json.loads(rest[0]["data"])
        check(welcome == {"resumed_from": resumed_from},
              f"welcome data {welcome}, expected resumed_from {resumed_from!r}")
        # The welcome has no id field: the stream's last event id stays empty
        # (the decoder starts afresh; it does not know the request's header).
        check(rest[0]["last_event_id"] == "",
              f"welcome's last_event_id {rest[0]['last_event_id']!r}, expected no id")
        ticks = rest[1:]
        check(all(t.get("type") == "tick" for t in ticks),
              f"expected only tick events after the welcome, got {ticks}")
        check(len(ticks) >= 2, f"expected at least two ticks, got {len(ticks)}")
        ids = [int(t["last_event_id"]) for t in ticks]
        for t, i in zip(ticks, ids):
            data = json.loads(t["data"])
            check(data["n"] == i, f"tick id {i} carries n={data['n']}")
            check(abs(data["unix_ms"] / 1000 - time.time()) < 60,
                  f"tick unix_ms {data['unix_ms']} is not about now")
        check(ids == list(range(ids[0], ids[0] + len(ids))),
              f"tick ids are not consecutive and increasing: {ids}")
        if first_tick is not None:
            check(ids[0] == first_tick, f"first tick id {ids[0]}, expected {first_tick}")
        return ids

    async def test_clock(self):
        status, headers, body = await asyncio.to_thread(self.curl_clock, 3.5)
        check(status.startswith("HTTP/1.1 200"), f"status line {status!r}")
        ctype = headers.get("content-type", "")
        check(ctype.split(";")[0].strip() == "text/event-stream", f"Content-Type {ctype!r}")
        text = body.decode()
        check(text.startswith("retry: 3000\n"), f"stream did not begin with the retry hint: "
              f"{text[:60]!r}")
        raw_ids = [int(line[4:]) for line in text.split("\n") if line.startswith("id: ")]
        check(text.count("event: tick\n") >= 2 and len(raw_ids) >= 2,
              f"fewer than two tick events in 3.5 s: {text!r}")
        check(all(b > a for a, b in zip(raw_ids, raw_ids[1:])), f"ids not increasing: {raw_ids}")
        ids = self.check_clock_events(self.sse_decode(body), None)
        check(ids == raw_ids, f"sse-decode ids {ids} differ from the raw ids {raw_ids}")
        one = self.sse_decode(body, chunk=1)
        check(one == self.sse_decode(body), "sse-decode --chunk 1 decoded differently")
        print(f"     fresh /clock: ticks {ids}", flush=True)

    async def test_clock_resume(self):
        """`curl -N -H 'Last-Event-ID: 41' | tether sse-decode`, a real pipe."""
        curl = subprocess.Popen(
            [self.curl, "-sN", "--max-time", "2.5", "-H", "Last-Event-ID: 41",
             self.http + "/clock"],
            stdout=subprocess.PIPE,
        )
        decode = subprocess.Popen([self.tether, "sse-decode"], stdin=curl.stdout,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        curl.stdout.close()
        out, err = await asyncio.to_thread(decode.communicate, None, 30)
        curl_rc = curl.wait(15)
        check(curl_rc == 28, f"curl exited {curl_rc}, expected 28 (--max-time)")
        check(decode.returncode == 0, f"sse-decode exited {decode.returncode}: {err!r}")
        events = [json.loads(line) for line in out.decode().splitlines()]
        # Ticks are once a second: 2.5 s brings at least two, the first being 42.
        ids = self.check_clock_events(events, "41", first_tick=42)
        print(f"     /clock with Last-Event-ID 41: ticks {ids}", flush=True)

    async def test_healthz(self):
        out = await asyncio.to_thread(
            subprocess.run, [self.curl, "-sS", "--max-time", "10", self.http + "/healthz"],
            capture_output=True)
        check(out.returncode == 0 and out.stdout.strip() == b"ok",
              f"/healthz: curl exit {out.returncode}, body {out.stdout[:100]!r}")

    # -- all -------------------------------------------------------------

    async def all(self):
        await self.run("GET /healthz", self.test_healthz)
        # The clock's count is shared by all subscribers and only moves
        # forward: the fresh feed (ids from 1) comes before the resume at 41.
        await self.run("curl -N /clock: retry hint, >= 2 ticks, sse-decode", self.test_clock)
        await self.run("curl -N -H 'Last-Event-ID: 41' /clock | sse-decode: resumed, tick 42",
                       self.test_clock_resume)
        await self.test_echo_sizes(None)
        await self.test_echo_sizes("deflate")
        await self.run("ws permessage-deflate negotiated when offered, not otherwise",
                       self.test_deflate_negotiated)
        await self.run("ws echo fragmented text and binary", self.test_fragmented)
        await self.run("ws ping answered by pong", self.test_ping)
        await self.run("ws close 1000 'bye' answered with 1000",
                       lambda: self.test_close(1000, "bye"))
        await self.run("ws close 4000 'custom' answered with 4000",
                       lambda: self.test_close(4000, "custom"))
        await self.run("hub chat: a topic two WebSocket clients publish to, rooms kept apart",
                       self.test_chat)
        await self.run("hub chat message reaches the topic's event stream (curl)",
                       self.test_chat_sse_bridge)
        await self.run("hub: curl publishes, curl -N and websockets resume exactly",
                       self.test_hub_replay)
        await self.run("hub: an unknown Last-Event-ID gets a gap event", self.test_hub_gap)
        await self.run("hub: long polls with curl", self.test_hub_poll)
        await self.run("hub: publish token, single-use tickets", self.test_hub_auth)
        await self.run("hub: /metrics counts", self.test_hub_metrics)
        await self.run("hub: a websockets subscriber gets events compressed once and shared",
                       self.test_hub_compressed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="the server, http://127.0.0.1:PORT")
    ap.add_argument("--tether", required=True, help="the tether binary (for sse-decode)")
    ap.add_argument("--curl", default="curl")
    ap.add_argument("--token", required=True, help="the server's publish token")
    args = ap.parse_args()
    print(f"websockets {websockets.version.version}, python {sys.version.split()[0]}", flush=True)
    suite = Interop(args.url, args.tether, args.curl, args.token)
    try:
        asyncio.run(suite.all())
    except Exception:  # noqa: BLE001 - a bug here must still fail the run
        traceback.print_exc()
        suite.results.append(("the suite itself", False))
    passed = sum(1 for _, ok in suite.results if ok)
    failed = len(suite.results) - passed
    if failed:
        print("failed:", flush=True)
        for name, ok in suite.results:
            if not ok:
                print(f"  {name}", flush=True)
    print(f"interop: {passed} passed, {failed} failed", flush=True)
    return 1 if failed or not suite.results else 0


if __name__ == "__main__":
    sys.exit(main())
