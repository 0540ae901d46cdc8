"""HTTP/3 requests from aioquic (an independent QUIC and HTTP/3 stack) to
the `tether serve --http3 on` binary, the hub app behind it: a page, an
event stream that receives an event published over HTTP/3, a long poll
answered by a later publish, a WebSocket over an extended CONNECT (RFC
9220) that receives a publish too, presence, 20 requests at once on one
connection, a 404, the Alt-Svc header of the same server's TCP answers,
and WebTransport sessions (`/topics/NAME/wt`): one receives publishes as
JSON lines on the server's stream, a second one on another connection
resumes from `lastEventId` with nothing lost or repeated, the first
publishes over a unidirectional stream (the second, without the right,
gets an error), and a session ends cleanly.

    python serve_client.py PORT CERT_PEM PUBLISH_TOKEN
"""

import asyncio
import json
import socket
import ssl
import sys
import urllib.request

from aioquic.asyncio.client import connect

from h3_client import TIMEOUT, Checks, Client, WebTransportClient, client_config, status


async def main(port, cert, token):
    config = client_config(cert)
    check = Checks("h3-serve")

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

        # Connection migration: the client moves to a new local port (a new
        # socket, the old one closed, a new connection ID) with the event
        # stream open; the events published after it arrive on the new
        # socket, none lost or repeated.
        old_port = client._transport.get_extra_info("sockname")[1]
        old = client._transport
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0, 0, 0))
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: client, sock=sock)
        old.close()
        client._quic.change_connection_id()
        client.transmit()
        new_port = client._transport.get_extra_info("sockname")[1]
        for n in range(5):
            posted = await client.request("POST", "/topics/h3news", f"moved {n}".encode(), auth)
            check(f"publish {n} after the move", status(posted) in (b"200", b"202"), posted)
        got = await client.until(events, lambda r: b"data: moved 4" in r["body"])
        lines = [line.split(b"\n", 1)[0] for line in got["body"].split(b"data: ")[1:]]
        moved = [line for line in lines if line.startswith(b"moved ")]
        check(
            "after a move to a new port the event stream goes on, nothing lost or repeated",
            new_port != old_port and moved == [f"moved {n}".encode() for n in range(5)],
            (old_port, new_port, moved),
        )

    await webtransport(port, config, token, check)

    # A failed check exits at once: none failed when this is reached.
    check.summary()


async def webtransport(port, config, token, check):
    auth = [("authorization", f"Bearer {token}")]
    draft02 = [("sec-webtransport-http3-draft02", "1")]
    data = lambda lines: [json.loads(line).get("data") for line in lines]
    async with connect("localhost", port, configuration=config, create_protocol=WebTransportClient) as a:
        session = a.start("CONNECT", "/topics/h3wt/wt", headers=auth + draft02, end=False, protocol="webtransport")
        await a.until(session, lambda r: r["headers"])
        head = dict(a.responses[session]["headers"])
        check(
            "WebTransport session opens (draft-02 answer)",
            head.get(b":status") == b"200" and head.get(b"sec-webtransport-http3-draft") == b"draft02",
            head,
        )
        for text in (b"wt one", b"wt two"):
            published = await a.request("POST", "/topics/h3wt", text, auth)
            check(f"publish {text.decode()}", status(published) in (b"200", b"202"), published)
        lines = await a.until_lines(session, lambda lines: len(lines) >= 2)
        events = [json.loads(line) for line in lines]
        check(
            "the session receives them as JSON lines",
            [e.get("data") for e in events] == ["wt one", "wt two"] and events[0].get("topic") == "h3wt",
            lines,
        )
        first = events[0]["id"]

        async with connect("localhost", port, configuration=config, create_protocol=WebTransportClient) as b:
            resumed = b.start("CONNECT", f"/topics/h3wt/wt?lastEventId={first}", end=False, protocol="webtransport")
            await b.until(resumed, lambda r: r["headers"])
            check("a second session opens", status(b.responses[resumed]) == b"200", b.responses[resumed])
            a.send_message(session, b"wt three")
            got = await b.until_lines(resumed, lambda lines: b"wt three" in b"".join(lines))
            check("it resumes after lastEventId: nothing lost or repeated", data(got) == ["wt two", "wt three"], got)
            mine = await a.until_lines(session, lambda lines: len(lines) >= 3)
            check(
                "a publish over a unidirectional stream reaches its sender too",
                data(mine) == ["wt one", "wt two", "wt three"] and json.loads(mine[2]).get("event") == "message",
                mine,
            )
            b.send_message(resumed, b"not allowed")
            got = await b.until_lines(resumed, lambda lines: len(lines) >= 3)
            check("a session without the right gets an error", json.loads(got[2]).get("control") == "error", got)

        # The client ends its session: the server ends the session's streams.
        a.h3.send_data(session, b"", end_stream=True)
        a.transmit()
        await a.until(session, lambda r: r["ended"])

        async def events_ended():
            async with a.changed:
                await a.changed.wait_for(lambda: any(s["ended"] for s in a.streams.values()))

        await asyncio.wait_for(events_ended(), TIMEOUT)
        check("the session ends cleanly", True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
