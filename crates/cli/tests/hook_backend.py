#!/usr/bin/env python3
"""An application backend for the `tether serve --hook-*` end-to-end test:
standard library only, HTTP/1.1 with keep-alive. Listens on 127.0.0.1 on
a free port, prints the port on the first line of stdout, and serves until
killed.

POST /connect: the `session` cookie names the user; `alice` may read
`chat.*` and `room.*` and publish to `chat.*`; `slow` is answered after
3 seconds; without one, the `x-user` header field names the user (no
rights); with neither, a deny 401 "sign in first".

POST /subscribe: `room.secret` is denied 403 "members only", any other
topic allowed.

POST /publish: data starting "deny" is denied 403 "not that", "shout ..."
goes out in capitals, anything else as it is.

POST /refresh: ten more minutes.

POST /rpc: the caller's subject and the call's data, as the result.

POST /latest: `score.cup` is 0-0 (an object, as an event of type
`score`); any other topic has no value.

Each request's JSON body is appended, one line each, to the file named by
the second argument, for the test to read.
"""

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Backend(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(length))
        with open(sys.argv[1], "a") as seen:
            seen.write(json.dumps({"path": self.path, "body": req}) + "\n")
        if self.path == "/connect":
            user = req["cookies"].get("session")
            if user == "slow":
                time.sleep(3)
            if user == "alice":
                self.answer({"allow": True, "subject": "alice",
                             "tether": {"sub": ["chat.*", "room.*"], "pub": ["chat.*"]},
                             "exp": int(time.time()) + 600})
            elif user is None and "x-user" in req["headers"]:
                self.answer({"allow": True, "subject": req["headers"]["x-user"]})
            else:
                self.answer({"allow": False, "status": 401, "reason": "sign in first"})
        elif self.path == "/subscribe":
            if req["topic"] == "room.secret":
                self.answer({"allow": False, "reason": "members only"})
            else:
                self.answer({"allow": True})
        elif self.path == "/publish":
            data = req["data"]
            if data.startswith("deny"):
                self.answer({"allow": False, "reason": "not that"})
            elif data.startswith("shout"):
                self.answer({"allow": True, "data": data.upper()})
            else:
                self.answer({"allow": True})
        elif self.path == "/refresh":
            self.answer({"allow": True, "exp": int(time.time()) + 600})
        elif self.path == "/latest":
            if req["topic"] == "score.cup":
                self.answer({"allow": True, "data": {"home": 0, "away": 0}, "event": "score"})
            else:
                self.answer({"allow": True})
        elif self.path == "/rpc":
            self.answer({"allow": True, "data": {"subject": req["subject"], "echo": req["data"]}})
        else:
            self.send_error(404)


server = ThreadingHTTPServer(("127.0.0.1", 0), Backend)
print(server.server_address[1], flush=True)
server.serve_forever()
