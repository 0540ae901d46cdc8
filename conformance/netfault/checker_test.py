"""The checker shown to catch each kind of anomaly: a clean history
passes, and each history below, with one fault of its own, fails with
exactly that kind. Prints `netfault-checker: N passed, M failed`.

    python3 checker_test.py
"""

import sys

from checker import KINDS, check


def pub(t, data, outcome="ok", event_id=None, topic="a", status=None):
    return {"t": t, "type": "publish", "topic": topic, "data": data, "outcome": outcome,
            "id": event_id, "status": status or (200 if outcome == "ok" else 503)}


def deliver(t, sub, event_id, data, topic="a"):
    return {"t": t, "type": "deliver", "sub": sub, "topic": topic, "id": event_id, "data": data}


def connect(t, sub, topic="a"):
    return {"t": t, "type": "connect", "sub": sub, "topic": topic}


def gap(t, sub, requested, first, topic="a", lost=None):
    record = {"t": t, "type": "gap", "sub": sub, "topic": topic,
              "gap": {"topic": topic, "requested": requested, "first": first, "resume": "0-0"}}
    if lost:
        record["gap"]["lost"] = lost
    return record


def clean():
    return [
        connect(0.0, "s1"), connect(0.0, "s2"),
        pub(1.0, "a-0", event_id="100-0"), pub(1.1, "a-1", event_id="101-0"),
        pub(1.2, "a-2", outcome="unknown"), pub(1.3, "a-3", outcome="unknown"),
        pub(1.4, "a-4", outcome="fail", status=403),
        deliver(1.5, "s1", "100-0", "a-0"), deliver(1.5, "s1", "101-0", "a-1"),
        deliver(1.6, "s1", "102-0", "a-2"),  # an indeterminate publish that was added
        deliver(1.5, "s2", "100-0", "a-0"),
        {"t": 2.0, "type": "disconnect", "sub": "s2", "topic": "a", "why": "ended"},
        connect(2.5, "s2"),
        deliver(2.6, "s2", "101-0", "a-1"), deliver(2.6, "s2", "102-0", "a-2"),
    ]


CASES = {
    # s2 never gets 101-0, and no gap names it.
    "lost": lambda h: [r for r in h if not (r.get("sub") == "s2" and r.get("id") == "101-0")],
    "duplicate": lambda h: h + [deliver(2.7, "s2", "102-0", "a-2")],
    "order": lambda h: [deliver(1.45, "s1", "101-0", "a-1") if r.get("sub") == "s1" and r.get("id") == "100-0"
                        else deliver(1.5, "s1", "100-0", "a-0") if r.get("sub") == "s1" and r.get("id") == "101-0"
                        else r for r in h],
    "id-reused": lambda h: [dict(r, data="a-9") if r.get("sub") == "s2" and r.get("id") == "102-0" else r
                            for r in h] + [pub(1.35, "a-9", outcome="unknown")],
    # Acknowledged as 100-7, delivered as 100-0: the acknowledged id is
    # then also lost (see EXTRA).
    "ack-mismatch": lambda h: [dict(r, id="100-7") if r["type"] == "publish" and r["data"] == "a-0" else r
                               for r in h],
    "refused-delivered": lambda h: h + [deliver(2.8, "s2", "103-0", "a-4")],
    "phantom": lambda h: h + [deliver(2.8, "s1", "103-0", "nobody-0")],
    "late": lambda h: h + [pub(5.0, "a-8", event_id="200-0"), deliver(5.1, "s2", "200-0", "a-8"),
                           deliver(40.0, "s1", "200-0", "a-8")],
    # A node 120 s ahead accepted a token that expired 45 s after it was
    # minted (30 s of leeway).
    "identity": lambda h: h + [identity(3.0, "n2", 120, 200)],
}


def identity(t, node, skew, status, op="publish"):
    return {"t": t, "type": "identity", "op": op, "node": node, "skew": skew, "nbf": int(t) - 1,
            "exp": int(t) - 1 + 45, "leeway": 30, "topic": "a", "status": status}

def multiplexed():
    """Topics a and b, whose ids are alike (each topic numbers its own),
    followed by one subscriber each (sa, sb) and by wsmux0, one socket
    for both, whose deliveries of the two interleave."""
    return [
        connect(0.0, "sa"), connect(0.0, "sb", topic="b"), connect(0.0, "wsmux0"), connect(0.0, "wsmux0", topic="b"),
        pub(1.0, "a-0", event_id="100-0"), pub(1.0, "b-0", event_id="100-0", topic="b"),
        pub(1.1, "b-1", event_id="100-5", topic="b"), pub(1.2, "a-1", event_id="101-0"),
        deliver(1.5, "sa", "100-0", "a-0"), deliver(1.5, "sa", "101-0", "a-1"),
        deliver(1.5, "sb", "100-0", "b-0", topic="b"), deliver(1.5, "sb", "100-5", "b-1", topic="b"),
        deliver(1.50, "wsmux0", "100-0", "a-0"), deliver(1.51, "wsmux0", "100-0", "b-0", topic="b"),
        deliver(1.52, "wsmux0", "100-5", "b-1", topic="b"), deliver(1.53, "wsmux0", "101-0", "a-1"),
    ]


def without(history, sub, topic, event_id):
    return [r for r in history if not (r.get("sub") == sub and r.get("topic") == topic and r.get("id") == event_id)]


# What a case's fault also is, by its nature.
EXTRA = {"ack-mismatch": {"lost"}}


def main():
    passed = failed = 0

    def expect(ok, name, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name}: {detail}")

    summary, anomalies = check(clean())
    found = {k: v for k, v in anomalies.items() if v}
    expect(not found, "a clean history has no anomaly", found)
    expect(summary["ok"] == 2 and summary["fail"] == 1 and summary["unknown"] == 2
           and summary["unknown_delivered"] == 1, "operations counted ok / failed / indeterminate", summary)

    for kind, make in CASES.items():
        _, anomalies = check(sorted(make(clean()), key=lambda r: r["t"]))
        found = sorted(k for k, v in anomalies.items() if v)
        expect(kind in found, f"{kind}: caught", f"found {found}")
        others = [k for k in found if k != kind and k not in EXTRA.get(kind, ())]
        expect(not others, f"{kind}: nothing else reported", f"also {others}")

    # A gap that names the missing id covers it; one that does not, does not.
    missing = CASES["lost"](clean())
    _, anomalies = check(missing + [gap(2.55, "s2", "100-0", "102-0")])
    expect(not anomalies["lost"], "lost: a gap from 100-0 to 102-0 covers 101-0", anomalies["lost"])
    _, anomalies = check(missing + [gap(2.55, "s2", "101-0", "102-0")])
    expect(anomalies["lost"], "lost: a gap from 101-0 does not cover 101-0")
    _, anomalies = check(missing + [gap(2.55, "s2", "100-0", "102-0", lost={"first": "101-0", "last": "101-0"})])
    expect(not anomalies["lost"], "lost: a gap's lost range covers its ids", anomalies["lost"])
    # A client resumes from an event the bus acknowledged, delivered and
    # then lost (101-0): the gap goes from that id to the next one held,
    # and covers another acknowledged event lost in between (101-5), not
    # the one it names first.
    resumed = clean() + [pub(1.15, "a-5", event_id="101-5")]
    _, anomalies = check(sorted(resumed + [gap(2.55, "s2", "101-0", "102-0"), gap(1.55, "s1", "101-0", "102-0")],
                                key=lambda r: r["t"]))
    expect(not anomalies["lost"], "lost: a gap from a lost id covers what was lost after it", anomalies["lost"])
    _, anomalies = check(missing + [gap(2.55, "s2", "100-0", "101-0")])
    expect(len(anomalies["lost"]) == 1 and "101-0" in anomalies["lost"][0],
           "lost: a gap does not cover the first id it names", anomalies["lost"])
    # Refusals by a node whose clock is off, and acceptances by one whose
    # clock is true, are what the identity checks must do; a refused
    # publish is a failure, never a loss.
    judged = clean() + [identity(3.0, "n1", 0, 200), identity(3.0, "n2", 120, 401), identity(3.0, "n2", -120, 401),
                        identity(3.0, "n2", 20, 200, op="subscribe"), identity(3.0, "n2", -40, 401),
                        pub(3.0, "id.n2-0", outcome="fail", status=401)]
    summary, anomalies = check(sorted(judged, key=lambda r: r["t"]))
    found = {k: v for k, v in anomalies.items() if v}
    expect(not found and summary["identity_judged"] == 5, "identity: refusals outside the window are no anomaly",
           (found, summary["identity_judged"]))
    _, anomalies = check(clean() + [identity(3.0, "n1", 0, 401)])
    expect(anomalies["identity"], "identity: a refusal by a node with a true clock is caught")
    _, anomalies = check(clean() + [identity(3.0, "n2", 77, 401), identity(3.0, "n2", 72, 200)])
    expect(not anomalies["identity"], "identity: a try near an edge of the window is not judged", anomalies["identity"])
    # A late event on a connection that was dropped and resumed is no
    # silence the client was left in.
    late = CASES["late"](clean())
    late.append({"t": 20.0, "type": "disconnect", "sub": "s1", "topic": "a", "why": "ended"})
    late.append(connect(20.5, "s1"))
    _, anomalies = check(sorted(late, key=lambda r: r["t"]))
    expect(not anomalies["late"], "late: not counted across a reconnection", anomalies["late"])

    # A multiplexed subscriber is checked per topic: two topics' ids
    # alike and interleaved are neither duplicates nor out of order, and
    # what one topic misses is reported on that topic alone.
    summary, anomalies = check(multiplexed())
    found = {k: v for k, v in anomalies.items() if v}
    expect(not found, "multiplexed: two topics with alike ids, interleaved on one subscriber, are no anomaly", found)
    wsmux = summary["kinds"].get("wsmux", {})
    expect(summary["subscribers"] == 3 and summary["streams"] == 4 and wsmux.get("streams") == 2
           and wsmux.get("deliveries") == 4 and summary["kinds"]["sa"]["deliveries"] == 2,
           "multiplexed: streams and deliveries counted per subscriber and topic, by kind", summary)
    missing = without(multiplexed(), "wsmux0", "b", "100-5")
    _, anomalies = check(missing)
    found = sorted(k for k, v in anomalies.items() if v)
    expect(found == ["lost"] and len(anomalies["lost"]) == 1 and anomalies["lost"][0].startswith("wsmux0 on b: 100-5"),
           "multiplexed: a loss on one topic is caught, on that topic alone", anomalies)
    _, anomalies = check(missing + [gap(1.6, "wsmux0", "100-0", "101-0")])
    expect(len(anomalies["lost"]) == 1, "multiplexed: a gap of its other topic does not cover a loss", anomalies["lost"])
    _, anomalies = check(missing + [gap(1.6, "wsmux0", "100-0", "101-0", topic="b")])
    expect(not anomalies["lost"], "multiplexed: a gap of the topic covers its loss", anomalies["lost"])
    swapped = without(without(multiplexed(), "wsmux0", "b", "100-5"), "wsmux0", "b", "100-0")
    swapped += [deliver(1.51, "wsmux0", "100-5", "b-1", topic="b"), deliver(1.52, "wsmux0", "100-0", "b-0", topic="b")]
    _, anomalies = check(sorted(swapped, key=lambda r: r["t"]))
    found = sorted(k for k, v in anomalies.items() if v)
    expect(found == ["order"] and anomalies["order"][0].startswith("wsmux0 on b: 100-0 after 100-5"),
           "multiplexed: one topic's ids out of order are caught on that topic", anomalies)
    twice = multiplexed() + [deliver(1.6, "wsmux0", "101-0", "a-1")]
    _, anomalies = check(twice)
    found = sorted(k for k, v in anomalies.items() if v)
    expect(found == ["duplicate"] and anomalies["duplicate"][0].startswith("wsmux0 on a: 101-0"),
           "multiplexed: an id of one topic delivered twice is caught on that topic", anomalies)

    expect(sorted(CASES) == sorted(KINDS), "every kind the checker knows has a case", sorted(set(KINDS) ^ set(CASES)))
    print(f"netfault-checker: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
