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

from h3_client import TIMEOUT, Checks, Client, client_config, status


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

    # A failed check exits at once: none failed when this is reached.
    check.summary()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
