"""A WebTransport endpoint that records what a browser sends.

Not tether, and not a test of tether: a stand-in (Python's aioquic) used
to learn what Chromium sends to open a WebTransport session and what it
needs back, and to try `webtransport.mjs` before tether serves
WebTransport. It prints one JSON object a line on standard output:

- `{"listening": PORT}` once it listens;
- `{"connection": {...}}` for each QUIC connection once its HTTP/3 is
  agreed: the client's transport parameters that matter to WebTransport;
- `{"settings": {...}}` when the client's SETTINGS arrive (identifiers in
  hex, as the registries write them);
- `{"request": [[name, value], ...]}` for every request head;
- `{"sent": N}` after answering a session with N events.

A CONNECT with `:protocol` webtransport on `/topics/NAME/wt` is answered
200 (with `sec-webtransport-http3-draft: draft02` when the client's head
asked for that draft) and gets one server-opened unidirectional stream
that carries events in the hub's WebSocket envelope, one JSON object a
line: `{"topic":NAME,"id":"1-N","event":"message","data":"event N"}` for N
after `?lastEventId=1-K` (else from 1) up to `--events`. Other requests
get 404.

    python webtransport_probe.py --cert CERT --key KEY [--port 0] [--events 5]

To find what the browser requires, answers can be made to lack a part:
`--omit-setting 0x2b603742` (repeat; aioquic's SETTINGS with WebTransport
on are 0x1, 0x7, 0x8 ENABLE_CONNECT_PROTOCOL, 0x21 a reserved one, 0x33
H3_DATAGRAM and 0x2b603742 ENABLE_WEBTRANSPORT draft-02),
`--add-setting 0xc671706a=1` (repeat), `--no-draft-header` (never answer
`sec-webtransport-http3-draft`), `--no-datagrams` (no
max_datagram_frame_size transport parameter).
"""

import argparse
import asyncio
import json
import sys
from urllib.parse import parse_qs, urlsplit

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent

# The hub's topic names (README: "The hub").
TOPIC_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-")


def say(record: dict) -> None:
    print(json.dumps(record), flush=True)


class ProbeH3(H3Connection):
    """aioquic's HTTP/3 with the SETTINGS the command line asked for."""

    omit: set[int] = set()
    add: dict[int, int] = {}

    def _get_local_settings(self) -> dict[int, int]:
        settings = {k: v for k, v in super()._get_local_settings().items() if k not in self.omit}
        settings.update(self.add)
        return settings


class Probe(QuicConnectionProtocol):
    events = 5
    draft_header = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._http: H3Connection | None = None
        self._settings_said = False

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._http = ProbeH3(self._quic, enable_webtransport=True)
            say({"connection": {
                "alpn": event.alpn_protocol,
                "max_datagram_frame_size": self._quic._remote_max_datagram_frame_size,
            }})
        if self._http is None:
            return
        for h3_event in self._http.handle_event(event):
            self._h3_event_received(h3_event)
        if not self._settings_said and self._http.received_settings is not None:
            self._settings_said = True
            say({"settings": {hex(k): v for k, v in self._http.received_settings.items()}})

    def _h3_event_received(self, event: H3Event) -> None:
        if not isinstance(event, HeadersReceived) or self._http is None:
            return
        head = [(k.decode(), v.decode()) for k, v in event.headers]
        say({"request": head})
        fields = dict(head)
        path = urlsplit(fields.get(":path", ""))
        parts = path.path.split("/")
        is_session = (
            fields.get(":method") == "CONNECT"
            and fields.get(":protocol") == "webtransport"
            and len(parts) == 4
            and parts[:2] == ["", "topics"]
            and parts[3] == "wt"
            and parts[2]
            and set(parts[2]) <= TOPIC_CHARS
        )
        if not is_session:
            self._http.send_headers(event.stream_id, [(b":status", b"404")], end_stream=True)
            self.transmit()
            return
        answer = [(b":status", b"200")]
        if self.draft_header and fields.get("sec-webtransport-http3-draft02") == "1":
            answer.append((b"sec-webtransport-http3-draft", b"draft02"))
        self._http.send_headers(event.stream_id, answer)
        after = parse_qs(path.query).get("lastEventId", ["1-0"])[0]
        first = int(after.rsplit("-", 1)[-1]) + 1 if after.rsplit("-", 1)[-1].isdigit() else 1
        stream = self._http.create_webtransport_stream(event.stream_id, is_unidirectional=True)
        lines = b"".join(
            json.dumps({"topic": parts[2], "id": f"1-{n}", "event": "message", "data": f"event {n}"},
                       separators=(",", ":")).encode() + b"\n"
            for n in range(first, self.events + 1)
        )
        self._quic.send_stream_data(stream, lines, end_stream=False)
        self.transmit()
        say({"sent": max(0, self.events - first + 1)})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--omit-setting", action="append", default=[], metavar="ID")
    parser.add_argument("--add-setting", action="append", default=[], metavar="ID=VALUE")
    parser.add_argument("--no-draft-header", action="store_true")
    parser.add_argument("--no-datagrams", action="store_true")
    args = parser.parse_args()
    Probe.events = args.events
    Probe.draft_header = not args.no_draft_header
    ProbeH3.omit = {int(x, 0) for x in args.omit_setting}
    ProbeH3.add = {int(k, 0): int(v, 0) for k, v in (x.split("=", 1) for x in args.add_setting)}
    config = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN,
                               max_datagram_frame_size=None if args.no_datagrams else 65536)
    config.load_cert_chain(args.cert, args.key)
    server = await serve("127.0.0.1", args.port, configuration=config, create_protocol=Probe)
    say({"listening": server._transport.get_extra_info("sockname")[1]})
    await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
