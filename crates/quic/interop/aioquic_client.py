"""HTTP/3 requests from aioquic (an independent QUIC and HTTP/3 stack,
with a QPACK encoder that uses the dynamic table) to tether-quic's
example server: a GET, an event stream, an echoed body, a 404, several
requests at once on one connection.

    python aioquic_client.py PORT CERT_PEM
"""

import asyncio
import sys

from aioquic.asyncio.client import connect

from h3_client import Checks, Client, client_config, status


async def main(port, cert):
    config = client_config(cert)
    check = Checks("h3-interop")

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
    check.summary()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
