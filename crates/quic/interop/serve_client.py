"""HTTP/3 requests from aioquic (an independent QUIC and HTTP/3 stack) to
the `tether serve --http3 on` binary, the hub app behind it: a page, an
event stream that receives an event published over HTTP/3, a long poll
answered by a later publish, a WebSocket over an extended CONNECT (RFC
9220) that receives a publish too, presence, 20 requests at once on one
connection, a 404, and the Alt-Svc header of the same server's TCP
answers.

    python serve_client.py PORT CERT_PEM PUBLISH_TOKEN
"""

import asyncio
import json
import ssl
import sys
import urllib.request

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration

TIMEOUT = 10


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.responses = {}
        self.ended = {}
        self.changed = asyncio.Condition()

    def quic_event_received(self, event):
        for ev in self.h3.handle_event(event):
            if isinstance(ev, (HeadersReceived, DataReceived)):
                r = self.responses.setdefault(ev.stream_id, {"headers": [], "body": b"", "ended": False})
                if isinstance(ev, HeadersReceived):
                    r["headers"].extend(ev.headers)
                else:
                    r["body"] += ev.data
                if ev.stream_ended:
                    r["ended"] = True
                asyncio.ensure_future(self.notify())

    async def notify(self):
        async with self.changed:
            self.changed.notify_all()

    def start(self, method, path, body=b"", headers=(), end=True):
        stream_id = self._quic.get_next_available_stream_id()
        fields = [(b":method", method.encode())]
        if method == "CONNECT":
            fields.append((b":protocol", b"websocket"))
        fields += [
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", path.encode()),
            (b"user-agent", b"aioquic interop"),
        ] + [(n.encode(), v.encode()) for n, v in headers]
        if body:
            fields.append((b"content-length", str(len(body)).encode()))
        self.responses[stream_id] = {"headers": [], "body": b"", "ended": False}
        self.h3.send_headers(stream_id, fields, end_stream=end and not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=end)
        self.transmit()
        return stream_id

    async def until(self, stream_id, done):
        async def wait():
            async with self.changed:
                await self.changed.wait_for(lambda: done(self.responses[stream_id]))

        await asyncio.wait_for(wait(), TIMEOUT)
        return self.responses[stream_id]

    async def request(self, method, path, body=b"", headers=()):
        stream_id = self.start(method, path, body, headers)
        return await self.until(stream_id, lambda r: r["ended"])


def status(response):
    return dict(response["headers"]).get(b":status")


async def main(port, cert, token):
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    config.load_verify_locations(cert)
    config.server_name = "localhost"
    passed = 0

    def check(name, ok, detail=""):
        nonlocal passed
        if not ok:
            print(f"h3-serve: FAIL {name} {detail}")
            sys.exit(1)
        passed += 1
        print(f"h3-serve: ok {name}")

    context = ssl.create_default_context(cafile=cert)
    with urllib.request.urlopen(f"https://localhost:{port}/healthz", context=context, timeout=TIMEOUT) as tcp:
        alt_svc = tcp.headers.get("Alt-Svc")
    check("Alt-Svc over TCP", alt_svc == f'h3=":{port}"', alt_svc)

    auth = [("authorization", f"Bearer {token}")]
    async with connect("localhost", port, configuration=config, create_protocol=Client) as client:
        page = await client.request("GET", "/healthz")
        check("GET /healthz", status(page) == b"200" and page["body"] == b"ok\n", page)

        events = client.start("GET", "/topics/h3news/events")
        await client.until(events, lambda r: r["headers"])
        head = dict(client.responses[events]["headers"])
        check("event stream opens", head.get(b":status") == b"200" and head.get(b"content-type") == b"text/event-stream", head)

        published = await client.request("POST", "/topics/h3news?event=update", b"hello over h3", auth)
        check("publish over HTTP/3", status(published) in (b"200", b"202"), published)
        got = await client.until(events, lambda r: b"data: hello over h3" in r["body"])
        check("event stream receives it", b"event: update" in got["body"], got["body"])

        since = json.loads(published["body"])["id"]
        poll = client.start("GET", f"/topics/h3news/poll?since={since}")
        await asyncio.sleep(0.3)
        check("long poll waits", not client.responses[poll]["ended"], client.responses[poll])
        await client.request("POST", "/topics/h3news", b"second", auth)
        polled = await client.until(poll, lambda r: r["ended"])
        check("long poll answered by a publish", status(polled) == b"200" and b"second" in polled["body"], polled)

        # RFC 9220: a WebSocket on an extended CONNECT, fed by a publish.
        ws = client.start("CONNECT", "/topics/h3news/ws", headers=[("sec-websocket-version", "13")], end=False)
        await client.until(ws, lambda r: r["headers"])
        check("WebSocket over an extended CONNECT opens", status(client.responses[ws]) == b"200", client.responses[ws])
        await client.request("POST", "/topics/h3news?event=update", b"ws over h3", auth)
        got = await client.until(ws, lambda r: b"ws over h3" in r["body"])
        check("the WebSocket receives it (a text frame)", got["body"][:1] == b"\x81", got["body"][:40])

        presence = await client.request("GET", "/topics/h3news/presence")
        check("presence", status(presence) == b"200", presence)

        many = await asyncio.gather(*(client.request("GET", "/healthz") for _ in range(20)))
        check("20 requests at once", all(r["body"] == b"ok\n" for r in many))

        missing = await client.request("GET", "/nothing/here")
        check("404", status(missing) == b"404", missing)

    # A failed check exits at once: none failed when this is reached.
    print(f"h3-serve: {passed} passed, 0 failed")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
