#!/usr/bin/env python3
"""Writes the SSE conformance vectors: vectors/NAME.stream (the bytes of an
event stream) and vectors/NAME.jsonl (what `tether sse-decode` must print for
it). Every expected output here is written by hand from the WHATWG HTML
spec, "Parsing an event stream" and "Interpreting an event stream"; none is
produced by running the parser. Edit this file and rerun it to change the
corpus: python3 make_vectors.py
"""

import json
import pathlib

BOM = b"\xef\xbb\xbf"
U64_MAX = 2**64 - 1


def ev(data, last_event_id="", type="message"):
    return {"type": type, "data": data, "last_event_id": last_event_id}


def retry(ms):
    return {"retry": ms}


VECTORS = {}


def vector(name, stream, *expected):
    assert name not in VECTORS, name
    VECTORS[name] = (stream, list(expected))


# The spec's own examples.
vector(
    "spec-example-three-messages",
    b"data: This is the first message.\n\n"
    b"data: This is the second message, it\n"
    b"data: has two lines.\n\n"
    b"data: This is the third message.\n\n",
    ev("This is the first message."),
    ev("This is the second message, it\nhas two lines."),
    ev("This is the third message."),
)
vector(
    "spec-example-add-remove",
    b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
    ev("73857293", type="add"),
    ev("2153", type="remove"),
    ev("113411", type="add"),
)
vector(
    "spec-example-stock",
    b"data: YHOO\ndata: +2\ndata: 10\n\n",
    ev("YHOO\n+2\n10"),
)
vector(
    "spec-example-test-stream",
    b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
    ev("first event", "1"),
    ev("second event", ""),
    ev(" third event", ""),
)
vector(
    "spec-example-test-stream-unterminated",
    b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
    ev("first event", "1"),
    ev("second event", ""),
)
vector(
    "spec-example-empty-data",
    b"data\n\ndata\ndata\n\ndata:",
    ev(""),
    ev("\n"),
)
vector(
    "spec-example-space-after-colon",
    b"data:test\n\ndata: test\n\n",
    ev("test"),
    ev("test"),
)

# Byte order mark: the UTF-8 decoder drops one at the very start.
vector("bom-leading-stripped", BOM + b"data: a\n\n", ev("a"))
vector("bom-only", BOM)
vector("bom-second-kept", BOM + BOM + b"data: a\n\ndata: b\n\n", ev("b"))
vector(
    "bom-later-line-kept",
    BOM + b"data: 1\n\n" + BOM + b"data: 2\n\ndata: 3\n\n",
    ev("1"),
    ev("3"),
)
vector("bom-in-data-kept", b"data: " + BOM + b"x\n\n", ev("\ufeffx"))
vector("bom-partial-not-stripped", b"\xef\xbbdata: a\n\ndata: b\n\n", ev("b"))
vector("bom-utf16le-not-used", b"\xff\xfedata: 1\n\ndata: 2\n\n", ev("2"))

# Line ends.
vector("eol-lf", b"data: a\ndata: b\n\n", ev("a\nb"))
vector("eol-crlf", b"data: a\r\ndata: b\r\n\r\n", ev("a\nb"))
vector("eol-cr", b"data: a\rdata: b\r\r", ev("a\nb"))
vector("eol-mixed", b"data: a\r\ndata: b\rdata: c\ndata: d\n\r\n", ev("a\nb\nc\nd"))
vector("eol-lf-cr-is-two", b"data: a\n\rdata: b\n\n", ev("a"), ev("b"))
vector("eol-cr-then-crlf", b"data: a\r\r\n", ev("a"))
vector("eol-cr-at-end-of-stream", b"data: a\n\r", ev("a"))
vector("eol-single-cr-at-end", b"data: a\r")

# Comments.
vector("comment-only", b":hello\n\n")
vector("comment-inside-event", b"data: a\n: c\ndata: b\n:x: y\n\n", ev("a\nb"))
vector("comment-looks-like-field", b": data: x\n:id: 5\n\ndata: y\n\n", ev("y"))
vector("comment-heartbeats", b":\n:\n: keepalive\n\n:\ndata: tick\n\n:\n", ev("tick"))

# Fields without a colon, and colons inside values.
vector("field-no-colon-data", b"data\n\n", ev(""))
vector("field-no-colon-event", b"event: x\nevent\ndata: y\n\n", ev("y"))
vector("field-no-colon-id", b"id: 1\ndata: a\n\nid\ndata: b\n\n", ev("a", "1"), ev("b", ""))
vector("field-no-colon-retry", b"retry\n")
vector("field-first-colon-only", b"data: a:b: c\n\ndata::x\n\n", ev("a:b: c"), ev(":x"))
vector("field-colon-in-event-and-id", b"event:a:b\nid:c:d\ndata\n\n", ev("", "c:d", "a:b"))

# The one leading space.
vector("space-one-stripped", b"data: x\n\n", ev("x"))
vector("space-second-kept", b"data:  x\n\n", ev(" x"))
vector("space-tab-kept", b"data:\tx\n\n", ev("\tx"))
vector("space-only", b"data: \n\ndata:   \n\n", ev(""), ev("  "))
vector("space-trailing-kept", b"data: x \n\n", ev("x "))
vector("space-in-id-and-event", b"id:  7\nevent:  t\ndata\n\n", ev("", " 7", " t"))

# Field names are exact.
vector("name-unknown-ignored", b"foo: bar\ndata: x\nfoo\n\n", ev("x"))
vector("name-case-sensitive", b"Data: x\nDATA: y\nEvent: e\nID: 3\nRetry: 5\ndata: z\n\n", ev("z"))
vector("name-space-before-colon", b"data : x\n\n")
vector("name-leading-space", b" data: x\n\n")
vector("name-prefixes", b"dat: x\ndatax: y\nd: z\nids: 5\nretryx: 6\ndata\n\n", ev(""))

# The data buffer.
vector("data-lines-joined", b"data: a\ndata: b\ndata: c\n\n", ev("a\nb\nc"))
vector("data-one-trailing-lf-removed", b"data: a\ndata\n\n", ev("a\n"))
vector("data-empty-lines", b"data\ndata\ndata\n\n", ev("\n\n"))
vector("data-empty-buffer-no-dispatch", b"\n\n\nevent: x\n\n")
vector("data-nul-kept", b"data: a\x00b\n\n", ev("a\x00b"))

# The event type buffer.
vector("event-empty-is-message", b"event:\ndata: x\n\nevent: \ndata: y\n\n", ev("x"), ev("y"))
vector("event-explicit-message", b"event: message\ndata: x\n\n", ev("x"))
vector("event-last-wins", b"event: a\nevent: b\ndata\n\n", ev("", type="b"))
vector("event-type-resets", b"event: a\ndata: 1\n\ndata: 2\n\n", ev("1", type="a"), ev("2"))
vector("event-type-resets-without-dispatch", b"event: a\n\ndata: 2\n\n", ev("2"))
vector("event-nul-kept", b"event: a\x00\ndata\n\n", ev("", type="a\x00"))

# The last event ID.
vector("id-committed-without-data", b"id: 5\n\ndata: x\n\n", ev("x", "5"))
vector("id-persists", b"id: 1\ndata: a\n\ndata: b\n\nid: 2\n\ndata: c\n\n", ev("a", "1"), ev("b", "1"), ev("c", "2"))
vector("id-nul-ignored", b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\nid: \x00\ndata: c\n\n", ev("a", "1"), ev("b", "1"), ev("c", "1"))
vector("id-empty-resets", b"id: 1\ndata: a\n\nid:\ndata: b\n\nid: 2\ndata: c\n\nid: \ndata: d\n\n",
       ev("a", "1"), ev("b", ""), ev("c", "2"), ev("d", ""))
vector("id-of-incomplete-event-not-committed", b"id: 1\ndata: a\n\nid: 2\ndata: b\n", ev("a", "1"))
vector("id-set-after-data-in-same-event", b"data: a\nid: 9\n\n", ev("a", "9"))

# retry.
vector("retry-valid", b"retry: 1000\n", retry(1000))
vector("retry-leading-zeros", b"retry: 0001\nretry:0\n", retry(1), retry(0))
vector(
    "retry-invalid-values",
    b"retry: 1000x\nretry: +5\nretry: -1\nretry:\nretry: \nretry:  5\nretry: 5 \n"
    b"retry: 1_000\nretry: 1.5\nretry: 0x10\nretry: \xef\xbc\x95\n",
)
vector("retry-in-stream-order", b"data: a\nretry: 5\ndata: b\n\nretry: 6\n", retry(5), ev("a\nb"), retry(6))
vector("retry-in-incomplete-event-applies", b"data: x\nretry: 7\n", retry(7))
vector("retry-unterminated-line-ignored", b"retry: 7")
vector(
    "retry-too-large-saturates",
    b"retry: 18446744073709551615\nretry: 18446744073709551616\nretry: 99999999999999999999999999\n",
    retry(U64_MAX), retry(U64_MAX), retry(U64_MAX),
)

# Decoding: invalid UTF-8 is U+FFFD, maximal subparts as the Encoding spec says.
vector("utf8-invalid-byte", b"data: \xffab\n\n", ev("\ufffdab"))
vector("utf8-truncated-sequence", b"data: \xe2\x82\n\ndata: \xe2\x82x\n\n", ev("\ufffd"), ev("\ufffdx"))
vector("utf8-sequence-cut-by-line-end", b"data: \xe2\x82\ndata: \xac\n\n", ev("\ufffd\n\ufffd"))
vector("utf8-surrogate", b"data: \xed\xa0\x80\n\n", ev("\ufffd\ufffd\ufffd"))
vector("utf8-overlong", b"data: \xc0\x80\n\n", ev("\ufffd\ufffd"))
vector("utf8-multibyte", b"data: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n\n", ev("caf\u00e9 \u20ac \U0001F600"))
vector("utf8-in-id-and-event", b"id: \xc3\xa9\xff\nevent: \xfex\ndata\n\n", ev("", "\u00e9\ufffd", "\ufffdx"))
vector("utf8-invalid-in-field-name", b"d\xffata: x\n\n")
vector("utf8-line-separators-are-not-line-ends", b"data: a\xe2\x80\xa8b\xc2\x85c\n\n", ev("a\u2028b\u0085c"))

# End of stream.
vector("eof-incomplete-event", b"data: a\n\ndata: b\n", ev("a"))
vector("eof-incomplete-line", b"data: a\n\ndata: b", ev("a"))
vector("eof-empty-stream", b"")

# Streams as servers send them.
vector(
    "realistic-json-tokens",
    b": connected\n\nretry: 2500\n\n"
    b'id: 101\nevent: token\ndata: {"text":"Hel"}\n\n'
    b'id: 102\nevent: token\ndata: {"text":"lo, \\u00e9"}\n\n'
    b":\n\n"
    b"id: 103\nevent: done\ndata: [DONE]\n\n",
    retry(2500),
    ev('{"text":"Hel"}', "101", "token"),
    ev('{"text":"lo, \\u00e9"}', "102", "token"),
    ev("[DONE]", "103", "done"),
)
vector(
    "realistic-crlf-server",
    BOM + b"retry: 10000\r\n\r\nid: a1\r\nevent: update\r\ndata: line 1\r\ndata: line 2\r\n\r\n"
    b": ping\r\n\r\nid: a2\r\ndata: last\r\n\r\n",
    retry(10000),
    ev("line 1\nline 2", "a1", "update"),
    ev("last", "a2"),
)
big = bytes(ord("a") + i % 26 for i in range(20000))
vector(
    "large-event-two-20k-lines",
    b"id: big\ndata: " + big + b"\ndata: " + big + b"\n\n",
    ev(big.decode() + "\n" + big.decode(), "big"),
)


def main():
    out = pathlib.Path(__file__).resolve().parent / "vectors"
    out.mkdir(exist_ok=True)
    for old in out.glob("*"):
        old.unlink()
    for name, (stream, expected) in sorted(VECTORS.items()):
        (out / f"{name}.stream").write_bytes(stream)
        lines = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in expected)
        (out / f"{name}.jsonl").write_text(lines, encoding="utf-8")
    print(f"{len(VECTORS)} vectors in {out}")


if __name__ == "__main__":
    main()
