"""HTTP/2 checks against a running tether server with Python's `h2`:
an event stream that receives a publish made on another stream of the same
connection, and a WebSocket over an extended CONNECT (RFC 8441) that echoes.

    h2_client.py HOST PORT TOKEN

Prints one line per check, "ok NAME" or "FAIL NAME: why"; exits non-zero
if any failed.
"""

import os
import socket
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings


class Client:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.flush()
        self.data = {}
        self.heads = {}
        self.ended = set()
        self.reset = {}
        self.connect_protocol = False

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.sock.sendall(out)

    def pump(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("the server closed the connection")
        for event in self.conn.receive_data(chunk):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                setting = event.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
                if setting is not None and setting.new_value == 1:
                    self.connect_protocol = True
            elif isinstance(event, h2.events.ResponseReceived):
                self.heads[event.stream_id] = dict(event.headers)
            elif isinstance(event, h2.events.DataReceived):
                self.data.setdefault(event.stream_id, bytearray()).extend(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.ended.add(event.stream_id)
            elif isinstance(event, h2.events.StreamReset):
                self.reset[event.stream_id] = event.error_code
        self.flush()

    def until(self, condition):
        while not condition():
            self.pump()

    def send_all(self, stream, data):
        """DATA within the server's windows, waiting for it to open them."""
        while data:
            room = min(self.conn.local_flow_control_window(stream), self.conn.max_outbound_frame_size)
            if room <= 0:
                self.pump()
                continue
            self.conn.send_data(stream, data[:room])
            self.flush()
            data = data[room:]

    def request(self, method, path, headers=(), body=None):
        stream = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "localhost")]
        fields += list(headers)
        self.conn.send_headers(stream, fields, end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream, body, end_stream=True)
        self.flush()
        return stream


def ws_frame(opcode, payload):
    """A masked client frame."""
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_parse(data):
    """(opcode, payload, rest) of the first whole server frame, or None."""
    if len(data) < 2:
        return None
    opcode, n = data[0] & 0x0F, data[1] & 0x7F
    at = 2
    if n == 126:
        if len(data) < 4:
            return None
        n, at = struct.unpack("!H", data[2:4])[0], 4
    elif n == 127:
        if len(data) < 10:
            return None
        n, at = struct.unpack("!Q", data[2:10])[0], 10
    if len(data) < at + n:
        return None
    return opcode, bytes(data[at : at + n]), data[at + n :]


def check_sse(host, port, token):
    c = Client(host, port)
    events = c.request("GET", "/topics/python-h2/events")
    c.until(lambda: b"retry:" in c.data.get(events, b""))
    assert c.heads[events].get(":status") == "200", c.heads[events]
    assert c.heads[events].get("content-type") == "text/event-stream", c.heads[events]
    publish = c.request(
        "POST", "/topics/python-h2", [("authorization", "Bearer " + token)], b"from python h2"
    )
    c.until(lambda: publish in c.ended)
    assert c.heads[publish].get(":status") == "200", c.heads[publish]
    c.until(lambda: b"data: from python h2\n" in c.data.get(events, b""))


def check_websocket(host, port):
    c = Client(host, port)
    c.until(lambda: c.connect_protocol)
    stream = c.conn.get_next_available_stream_id()
    c.conn.send_headers(
        stream,
        [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", "/echo"),
            (":authority", "localhost"),
            ("sec-websocket-version", "13"),
        ],
    )
    c.flush()
    c.until(lambda: stream in c.heads)
    assert c.heads[stream].get(":status") == "200", c.heads[stream]
    for message in [b"hello over RFC 8441", bytes(range(256)) * 300]:
        opcode = 1 if message.startswith(b"hello") else 2
        c.send_all(stream, ws_frame(opcode, message))
        c.until(lambda: ws_parse(c.data.get(stream, b"")) is not None)
        got, payload, rest = ws_parse(c.data[stream])
        c.data[stream] = bytearray(rest)
        assert (got, payload) == (opcode, message), (got, len(payload))
    c.send_all(stream, ws_frame(8, struct.pack("!H", 1000)))
    c.until(lambda: ws_parse(c.data.get(stream, b"")) is not None)
    got, payload, _ = ws_parse(c.data[stream])
    assert got == 8 and payload[:2] == struct.pack("!H", 1000), (got, payload)
    c.until(lambda: stream in c.ended)


def main():
    host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    failed = 0
    for name, check in [
        ("python-h2 event stream gets a publish from the same connection", lambda: check_sse(host, port, token)),
        ("python-h2 RFC 8441 WebSocket echo", lambda: check_websocket(host, port)),
    ]:
        try:
            check()
            print(f"ok {name}")
        except Exception as e:  # noqa: BLE001 - any failure is reported
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
