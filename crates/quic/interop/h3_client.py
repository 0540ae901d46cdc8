"""What the HTTP/3 interop clients share: an aioquic client connection
that sends requests (an extended CONNECT for a WebSocket or a WebTransport
session included) and collects each stream's response as it comes (and,
for WebTransport, each WebTransport stream's bytes), the client
configuration, and a list of checks that stops at the first failure.
"""

import asyncio
import sys

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived, WebTransportStreamDataReceived
from aioquic.quic.configuration import QuicConfiguration

TIMEOUT = 10


class Client(QuicConnectionProtocol):
    # Whether the HTTP/3 connection offers WebTransport (its SETTINGS).
    webtransport = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic, enable_webtransport=self.webtransport)
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

    def start(self, method, path, body=b"", headers=(), end=True, protocol="websocket"):
        stream_id = self._quic.get_next_available_stream_id()
        fields = [(b":method", method.encode())]
        if method == "CONNECT":
            fields.append((b":protocol", protocol.encode()))
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


class WebTransportClient(Client):
    """A client that speaks WebTransport too: each WebTransport stream's
    bytes are kept by stream ID (`self.streams`: session, bytes, ended)."""

    webtransport = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.streams = {}

    def quic_event_received(self, event):
        for ev in self.h3.handle_event(event):
            if isinstance(ev, WebTransportStreamDataReceived):
                s = self.streams.setdefault(ev.stream_id, {"session": ev.session_id, "bytes": b"", "ended": False})
                s["bytes"] += ev.data
                s["ended"] = s["ended"] or ev.stream_ended
                asyncio.ensure_future(self.notify())
            elif isinstance(ev, (HeadersReceived, DataReceived)):
                r = self.responses.setdefault(ev.stream_id, {"headers": [], "body": b"", "ended": False})
                if isinstance(ev, HeadersReceived):
                    r["headers"].extend(ev.headers)
                else:
                    r["body"] += ev.data
                if ev.stream_ended:
                    r["ended"] = True
                asyncio.ensure_future(self.notify())

    def lines(self, session):
        """The lines the server's streams of `session` carried so far."""
        data = b"".join(s["bytes"] for s in self.streams.values() if s["session"] == session)
        return data.split(b"\n")[:-1]

    async def until_lines(self, session, done):
        async def wait():
            async with self.changed:
                await self.changed.wait_for(lambda: done(self.lines(session)))

        await asyncio.wait_for(wait(), TIMEOUT)
        return self.lines(session)

    def send_message(self, session, message):
        """One message on a new WebTransport unidirectional stream."""
        stream_id = self.h3.create_webtransport_stream(session, is_unidirectional=True)
        self._quic.send_stream_data(stream_id, message, end_stream=True)
        self.transmit()


def status(response):
    return dict(response["headers"]).get(b":status")


def client_config(cert):
    """A client configuration for HTTP/3 that trusts `cert` for localhost."""
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536)
    config.load_verify_locations(cert)
    config.server_name = "localhost"
    return config


class Checks:
    """Named checks: each passes or ends the run with its detail."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.passed = 0

    def __call__(self, name, ok, detail=""):
        if not ok:
            print(f"{self.prefix}: FAIL {name} {detail}")
            sys.exit(1)
        self.passed += 1
        print(f"{self.prefix}: ok {name}")

    def summary(self):
        print(f"{self.prefix}: {self.passed} passed, 0 failed")
