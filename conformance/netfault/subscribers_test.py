"""What the subscribers make of the hub's messages, without a hub: the
cursor a multi-topic event stream starts from (the design page's
example, byte for byte), the history lines, per subscriber and topic,
that a multi-topic stream's events become, and a multiplexed WebSocket
against a scripted `/ws` on a real socket: a refusal the hub answers
to one subscribe, which is asked again alone, and a socket closed,
after which each topic is asked again from its own last id (the fault
runs seldom bring a refusal). Prints
`netfault-subscribers: N passed, M failed`.

    .venv/bin/python subscribers_test.py
"""

import asyncio
import base64
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proxy"))

from subscribers import MultiEventStreamSubscriber, MultiWebSocketSubscriber, encode_cursor  # noqa: E402
from websockets.asyncio.server import serve as serve_ws  # noqa: E402


def binary(cursor):
    return base64.urlsafe_b64decode(cursor[1:] + "=" * (-len(cursor[1:]) % 4))


class Lines:
    def __init__(self):
        self.records = []

    def record(self, kind, **fields):
        self.records.append({"type": kind, **fields})


async def multiplexed_socket():
    """A MultiWebSocketSubscriber of A and B against a scripted `/ws` on
    a real socket: the first connection takes A, refuses B (503) and
    takes it when asked again, then closes (1012); the second takes
    both. What the server was asked ((connection, topic, since)) and the
    subscriber's lines."""
    asked = []
    connections = 0
    done = asyncio.Event()

    async def subscribes(ws, count):
        for _ in range(count):
            message = json.loads(await ws.recv())
            asked.append((connections, message["topic"], message.get("since")))
            yield message["topic"]

    async def serve(ws):
        nonlocal connections
        connections += 1
        if connections == 1:
            async for topic in subscribes(ws, 3):
                if topic == "A":
                    await ws.send(json.dumps({"control": "subscribed", "topic": "A"}))
                    await ws.send(json.dumps({"topic": "A", "id": "5-0", "data": "a0"}))
                elif len(asked) == 2:
                    await ws.send(json.dumps({"control": "refused", "topic": "B", "status": 503, "error": "away"}))
                else:
                    await ws.send(json.dumps({"control": "subscribed", "topic": "B"}))
                    await ws.send(json.dumps({"topic": "B", "id": "7-0", "data": "b0"}))
            await ws.close(1012)
        else:
            async for topic in subscribes(ws, 2):
                await ws.send(json.dumps({"control": "subscribed", "topic": topic}))
            await ws.send(json.dumps({"topic": "A", "id": "8-0", "data": "a1"}))
            done.set()
            await ws.wait_closed()

    lines = Lines()
    async with serve_ws(serve, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        subscriber = MultiWebSocketSubscriber("wsmux0", f"http://127.0.0.1:{port}", ["A", "B"], lines)
        task = asyncio.create_task(subscriber.run())

        async def resumed():
            await done.wait()
            while subscriber.last_id["A"] != "8-0":
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(resumed(), 10)
        except asyncio.TimeoutError:
            pass  # what it was asked tells what went wrong
        subscriber.stopping = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return asked, lines


def main():
    passed = failed = 0

    def expect(ok, name, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}: {detail}")

    example = encode_cursor(["A", "B"], ["1718000000000-8", "1718000004521-3"])
    expect(example == "~AQLQ9A6sgfC8jIBkCNNGAw", "cursor: the design page's example", example)
    # Each topic at 0-0: h = zigzag(0) + 1 = 1, seq 0.
    start = binary(encode_cursor(["A", "B"], ["0-0", "0-0"]))
    expect(start == bytes.fromhex("0102d0f40eac") + b"\x01\x00\x01\x00", "cursor: every topic at 0-0", start.hex())
    # B 4521 ms behind A: h = zigzag(-4521) + 1 = 9042, the varint d2 46.
    behind = binary(encode_cursor(["A", "B"], ["1718000004521-3", "1718000000000-8"]))
    expect(behind.endswith(bytes.fromhex("03d24608")), "cursor: a topic behind the one before it", behind.hex())
    empty = binary(encode_cursor(["A", "B"], [None, None]))
    expect(empty == bytes.fromhex("0102d0f40eac0000"), "cursor: topics with no position", empty.hex())

    lines = Lines()
    stream = MultiEventStreamSubscriber("ssemux0", "http://127.0.0.1:1", ["A", "B"], lines)
    events = [
        {"event": "message", "data": json.dumps({"topic": "A", "id": "5-0", "data": "a0"}), "id": "~c1"},
        {"event": "gap", "data": json.dumps({"topic": "B", "requested": "0-0", "first": "7-0", "resume": "6-0"}),
         "id": "~c2"},
        {"event": "message", "data": json.dumps({"topic": "B", "id": "7-0", "data": "b0"}), "id": "~c3"},
        {"event": "message", "data": json.dumps({"topic": "C", "id": "1-0", "data": "c0"}), "id": "~c4"},
    ]
    answers = [stream.take_multi(e) for e in events]
    got = [(r["type"], r["topic"], r.get("id")) for r in lines.records]
    expect(got == [("deliver", "A", "5-0"), ("gap", "B", None), ("deliver", "B", "7-0"), ("control", None, None)]
           and answers == [None] * 4, "multi-topic stream: each line names its topic", got)
    expect(stream.last_id == {"A": "5-0", "B": "7-0"} and stream.cursor == "~c3",
           "multi-topic stream: each topic's last id, and the cursor of the last event of its topics",
           (stream.last_id, stream.cursor))
    why = stream.take_multi({"event": "refused", "data": json.dumps({"topic": "B", "status": 503, "error": "x"})})
    expect(why == "refused B 503", "multi-topic stream: a refused topic ends the stream, to be asked again", why)

    asked, lines = asyncio.run(multiplexed_socket())
    expect(asked == [(1, "A", "0-0"), (1, "B", "0-0"), (1, "B", "0-0"), (2, "A", "5-0"), (2, "B", "7-0")],
           "multiplexed socket: a refused topic asked again alone, each topic resumed from its own last id", asked)
    got = [(r["type"], r["topic"], r.get("id") or r.get("status") or r.get("why")) for r in lines.records
           if r["type"] != "control"]
    expect(got[:6] == [("connect", "A", 101), ("deliver", "A", "5-0"), ("disconnect", "B", "refused 503"),
                       ("connect", "B", 101), ("deliver", "B", "7-0"), ("disconnect", "A", "closed 1012")]
           and got[6] == ("disconnect", "B", "closed 1012") and ("deliver", "A", "8-0") in got,
           "multiplexed socket: each topic's lines, a refusal ending that topic alone", got)

    print(f"netfault-subscribers: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
