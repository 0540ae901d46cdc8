"""HTTP/3 requests from aioquic (an independent QUIC and HTTP/3 stack,
with a QPACK encoder that uses the dynamic table) to tether-quic's
example server: a GET, an event stream, an echoed body, a 404, several
requests at once on one connection.

    python aioquic_client.py PORT CERT_PEM
"""

import asyncio
import sys

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.responses = {}
        self.waiters = {}

    def quic_event_received(self, event):
        for ev in self.h3.handle_event(event):
            if isinstance(ev, (HeadersReceived, DataReceived)):
                r = self.responses.setdefault(ev.stream_id, {"headers": [], "body": b""})
                if isinstance(ev, HeadersReceived):
                    r["headers"].extend(ev.headers)
                else:
                    r["body"] += ev.data
                if ev.stream_ended and ev.stream_id in self.waiters:
                    self.waiters.pop(ev.stream_id).set_result(r)

    async def request(self, method, path, body=b""):
        stream_id = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", b"localhost"),
            (b":path", path.encode()),
            (b"user-agent", b"aioquic interop"),
        ]
        if body:
            headers.append((b"content-length", str(len(body)).encode()))
        self.h3.send_headers(stream_id, headers, end_stream=not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=True)
        waiter = self._loop.create_future()
        self.waiters[stream_id] = waiter
        self.transmit()
        return await asyncio.wait_for(waiter, 10)


def status(response):
    return dict(response["headers"])[b":status"]


async def main(port, cert):
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    config.load_verify_locations(cert)
    config.server_name = "localhost"
    passed = 0

    def check(name, ok, detail=""):
        nonlocal passed
        if not ok:
            print(f"h3-interop: FAIL {name} {detail}")
            sys.exit(1)
        passed += 1
        print(f"h3-interop: ok {name}")

    async with connect("127.0.0.1", port, configuration=config, create_protocol=Client) as client:
        hello = await client.request("GET", "/hello")
        check("GET /hello", status(hello) == b"200" and hello["body"] == b"hello over h3", hello)

        events = await client.request("GET", "/events")
        headers = dict(events["headers"])
        check(
            "event stream",
            headers.get(b"content-type") == b"text/event-stream"
            and events["body"] == b"id: 1\ndata: one\n\nid: 2\ndata: two\n\nid: 3\ndata: three\n\n",
            events,
        )

        body = bytes(range(256)) * 200
        echo = await client.request("POST", "/echo", body)
        check("POST /echo (51 200 bytes)", status(echo) == b"200" and echo["body"] == body, len(echo["body"]))

        missing = await client.request("GET", "/nothing")
        check("404", status(missing) == b"404", missing)

        many = await asyncio.gather(*(client.request("GET", "/hello") for _ in range(20)))
        check("20 requests at once", all(r["body"] == b"hello over h3" for r in many))

    # A failed check exits at once: none failed when this is reached.
    print(f"h3-interop: {passed} passed, 0 failed")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
