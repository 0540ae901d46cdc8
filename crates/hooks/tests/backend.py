#!/usr/bin/env python3
"""A hook backend for tether-hooks' tests: HTTP/1.1 with keep-alive,
standard library only. Listens on 127.0.0.1 on a free port, prints the
port on the first line of stdout, and serves until killed.

The first path segment picks the behaviour:

  /allow        allow; a connect's subject is "id-<id>/c<connection>/r<request>"
                (connections and requests counted from 1 since start),
                a refresh gets "exp", a connect also a "tether" grant
  /deny         deny, with ?status=N&reason=TEXT if given
  /rewrite      allow a publish with "data" = "<DATA upper-cased>|<id>"
  /chunked      as /allow, the body in the chunked coding
  /close        as /allow, with "Connection: close", then closes
  /idleclose    as /allow (keep-alive), then closes the connection anyway
  /garbage      bytes that are not HTTP, then closes
  /nonjson      200 with a body that is not JSON
  /status500    500 with an allow body
  /status403    403 with an allow body
  /truncated    200 announcing 100 bytes, 10 sent, then closes
  /huge         200 with a 256 KiB chunked body

Whatever the path, a request whose "topic" or "data" starts with
"slow:<ms>" is answered after sleeping that many milliseconds.
"""

import asyncio
import json
import sys
import urllib.parse

connections = 0
requests = 0


def allow_body(req, kind_hint, conn):
    rid = req.get("id")
    body = {"allow": True}
    if "remote" in req:  # connect
        body["subject"] = f"id-{rid}/c{conn}/r{requests}"
        body["tether"] = {"sub": ["chat.*"], "pub": []}
        body["exp"] = 4000000000
    elif "data" in req:  # publish
        pass
    elif "topic" not in req:  # refresh
        body["exp"] = 4000000001
    return body


async def respond(writer, status, body, extra_headers=(), chunked=False):
    reason = {200: "OK", 403: "Forbidden", 500: "Internal Server Error"}.get(status, "X")
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json"]
    head.extend(extra_headers)
    if chunked:
        head.append("Transfer-Encoding: chunked")
        parts = [("\r\n".join(head) + "\r\n\r\n").encode()]
        size = 7 if len(body) < 4096 else 4096
        for i in range(0, len(body), size):
            piece = body[i : i + size]
            parts.append(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        parts.append(b"0\r\n\r\n")
        out = b"".join(parts)
    else:
        head.append(f"Content-Length: {len(body)}")
        out = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    writer.write(out)
    await writer.drain()


async def handle(reader, writer):
    global connections, requests
    connections += 1
    conn = connections
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            raw = await reader.readexactly(length)
            req = json.loads(raw)
            requests += 1
            url = urllib.parse.urlsplit(target)
            mode = url.path.strip("/").split("/")[0]
            query = dict(urllib.parse.parse_qsl(url.query))
            for field in ("topic", "data"):
                value = req.get(field)
                if isinstance(value, str) and value.startswith("slow:"):
                    await asyncio.sleep(int(value[5:].split(":")[0]) / 1000)
            rid = req.get("id")
            if mode == "allow":
                await respond(writer, 200, json.dumps(allow_body(req, mode, conn)).encode())
            elif mode == "deny":
                body = {"allow": False}
                if "status" in query:
                    body["status"] = int(query["status"])
                if "reason" in query:
                    body["reason"] = query["reason"]
                await respond(writer, 200, json.dumps(body).encode())
            elif mode == "rewrite":
                data = f"{req.get('data', '').upper()}|{rid}"
                await respond(writer, 200, json.dumps({"allow": True, "data": data}).encode())
            elif mode == "chunked":
                await respond(writer, 200, json.dumps(allow_body(req, mode, conn)).encode(), chunked=True)
            elif mode == "close":
                await respond(writer, 200, json.dumps(allow_body(req, mode, conn)).encode(), ["Connection: close"])
                return
            elif mode == "idleclose":
                await respond(writer, 200, json.dumps(allow_body(req, mode, conn)).encode())
                return
            elif mode == "garbage":
                writer.write(b"\x00\x01\x02 this is not HTTP\r\n\r\n")
                await writer.drain()
                return
            elif mode == "nonjson":
                await respond(writer, 200, b"allow: yes")
            elif mode == "status500":
                await respond(writer, 500, b'{"allow":true}')
            elif mode == "status403":
                await respond(writer, 403, b'{"allow":true}')
            elif mode == "truncated":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"allow\":")
                await writer.drain()
                return
            elif mode == "huge":
                filler = "x" * (256 * 1024)
                body = json.dumps({"allow": True, "filler": filler}).encode()
                await respond(writer, 200, body, chunked=True)
            else:
                await respond(writer, 404, b"{}")
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
