"""The checker: reads a fault run's history (JSON lines, workload.py and
run.py) and tells what the hub promised and what it kept.

    checker.py HISTORY.jsonl [--late-bound SECONDS] [--json]

Operations are counted as Jepsen counts them: a publish is `ok`
(acknowledged, with its id), `fail` (refused for what it is: it must
never be delivered) or `unknown` (a 503, a timeout or a reset: it may or
may not have been added, and either is correct, once). Every subscriber
follows each of its topics (one, or several on one connection) from the
start, so the promise for each stream, a subscriber and one of its
topics, is: every acknowledged event of the topic, once, in id order, or
a gap signal of that topic that covers what it did not get. The
anomalies:

  lost               an acknowledged event a stream never got, with no
                     gap signal of the stream covering its id
  duplicate          an id delivered twice on one stream, or one
                     publish delivered under two ids
  order              a stream's ids not increasing
  id-reused          one id carrying two different events
  ack-mismatch       an event delivered under another id than the one its
                     publisher was given
  refused-delivered  a publish answered with a refusal (4xx) delivered
  phantom            a delivered event that nobody published
  late               an acknowledged event that reached a stream more
                     than --late-bound seconds after its acknowledgement
                     while that stream stayed connected (silence the
                     client was not told about)
  identity           a token refused (401, 403) by a node whose clock has
                     it within its nbf and exp and the leeway, or accepted
                     by one whose clock has it outside them (`identity`
                     lines: the node's clock offset is recorded); a try
                     within IDENTITY_MARGIN seconds of an edge, or
                     answered otherwise (503, no answer), is not judged

A refused publish is a failed operation, never a lost one. Presence
(`presence` lines: a node's count of a topic's members beside the
subscribers connected) is reported, not judged: how many nodes listed
every member once the faults had healed.

Prints one line per anomaly kind, `ok KIND: ...` or `FAIL KIND: ...`
with examples, and exits 1 if any was found.
"""

import argparse
import json
import sys

KINDS = ["lost", "duplicate", "order", "id-reused", "ack-mismatch", "refused-delivered", "phantom", "late",
         "identity"]
IDENTITY_MARGIN = 5.0


def id_key(event_id):
    ms, _, seq = str(event_id).partition("-")
    return (int(ms), int(seq or 0))


def load(paths):
    records = []
    for path in paths:
        with open(path) as lines:
            for line in lines:
                line = line.strip()
                if line:
                    records.append(json.loads(line))
    records.sort(key=lambda r: r.get("t", 0))
    return records


def covered(event_id, gaps):
    """Whether a gap signal names EVENT_ID among what was missed: after
    the id the subscriber asked from and before the first one held (or
    inside the ids it says were lost)."""
    key = id_key(event_id)
    for gap in gaps:
        if not isinstance(gap, dict):
            continue
        lost = gap.get("lost")
        if isinstance(lost, dict) and lost.get("first") and lost.get("last"):
            if id_key(lost["first"]) <= key <= id_key(lost["last"]):
                return True
        requested, first = gap.get("requested"), gap.get("first")
        if requested is None:
            continue
        if id_key(requested) < key and (first is None or key < id_key(first)):
            return True
    return False


def check(records, late_bound=30.0):
    """(summary, {kind: [example, ...]}) of a history."""
    anomalies = {kind: [] for kind in KINDS}
    publishes = [r for r in records if r["type"] == "publish"]
    by_data = {p["data"]: p for p in publishes}
    acked = {}  # topic -> {id: publish}
    for p in publishes:
        if p["outcome"] == "ok":
            acked.setdefault(p["topic"], {})[p["id"]] = p
    # A stream is one topic of one subscriber: a multiplexed subscriber
    # has one per topic it follows, each with its own ids, order and gaps
    # (ids are a topic's own: two topics may both have 5-0). A line of a
    # subscriber that names no topic (a message about its connection
    # alone) is no stream's.
    subs = {}
    for r in records:
        if "sub" in r and r.get("topic") is not None:
            key = (r["sub"], r["topic"])
            subs.setdefault(key, {"topic": r["topic"], "records": []})["records"].append(r)

    seen_data_by_id = {}
    delivered_ids_of = {}  # data -> set of ids it came under
    delivered_unknown = set()
    for (sub_name, topic), sub in sorted(subs.items()):
        name = f"{sub_name} on {topic}"
        deliveries = [r for r in sub["records"] if r["type"] == "deliver"]
        gaps = [r.get("gap") for r in sub["records"] if r["type"] == "gap"]
        got = {}
        previous = None
        for d in deliveries:
            if d["id"] in got:
                anomalies["duplicate"].append(f"{name}: {d['id']} delivered twice")
            got[d["id"]] = d
            if previous is not None and id_key(d["id"]) < id_key(previous):
                anomalies["order"].append(f"{name}: {d['id']} after {previous}")
            previous = d["id"]
            # Ids are a topic's own: two topics may both have 5-0.
            other = seen_data_by_id.setdefault((sub["topic"], d["id"]), d["data"])
            if other != d["data"]:
                anomalies["id-reused"].append(f"{d['id']} carried {other!r} and {d['data']!r}")
            delivered_ids_of.setdefault(d["data"], set()).add(d["id"])
            published = by_data.get(d["data"])
            if published is None:
                anomalies["phantom"].append(f"{name}: {d['id']} {d['data']!r} was never published")
            elif published["outcome"] == "fail":
                anomalies["refused-delivered"].append(
                    f"{name}: {d['data']!r} was refused ({published['status']}) and delivered as {d['id']}")
            elif published["outcome"] == "ok" and published["id"] != d["id"]:
                anomalies["ack-mismatch"].append(
                    f"{name}: {d['data']!r} acknowledged as {published['id']}, delivered as {d['id']}")
            elif published["outcome"] == "unknown":
                delivered_unknown.add(d["data"])
        for event_id, p in sorted(acked.get(sub["topic"], {}).items(), key=lambda kv: id_key(kv[0])):
            if event_id in got:
                d = got[event_id]
                lag = d["t"] - p["t"]
                if lag > late_bound and not disconnected_between(sub["records"], p["t"], d["t"]):
                    anomalies["late"].append(
                        f"{name}: {event_id} came {lag:.1f} s after its acknowledgement, "
                        "on a connection that stayed open")
            elif not covered(event_id, gaps):
                anomalies["lost"].append(f"{name}: {event_id} ({p['data']!r}) never delivered, no gap covers it")
    for data, ids in delivered_ids_of.items():
        if len(ids) > 1:
            anomalies["duplicate"].append(f"{data!r} delivered under {len(ids)} ids {sorted(ids)[:3]}")

    identity = [r for r in records if r["type"] == "identity"]
    judged = 0
    for r in identity:
        expected = token_valid(r)
        if expected is None or r.get("status") not in (200, 401, 403):
            continue
        judged += 1
        accepted = r["status"] == 200
        if accepted != expected:
            anomalies["identity"].append(
                f"{r['node']} (clock {r.get('skew', 0):+d} s) {'accepted' if accepted else 'refused'} "
                f"a {r.get('op')} token good from {r['nbf']} to {r['exp']} (leeway {r.get('leeway', 0)} s) "
                f"at {r['t']:.0f}: status {r['status']}")
    presence = [r for r in records if r["type"] == "presence"]

    outcomes = {"ok": 0, "fail": 0, "unknown": 0}
    for p in publishes:
        outcomes[p["outcome"]] += 1
    lags = []
    for sub in subs.values():
        for d in sub["records"]:
            if d["type"] == "deliver" and d["id"] in acked.get(sub["topic"], {}):
                lags.append(d["t"] - acked[sub["topic"]][d["id"]]["t"])
    lags.sort()
    summary = {
        "publishes": len(publishes),
        **outcomes,
        "unknown_delivered": len(delivered_unknown),
        "subscribers": len({sub for sub, _ in subs}),
        "streams": len(subs),
        "deliveries": sum(1 for r in records if r["type"] == "deliver"),
        "reconnections": sum(reconnections(s["records"]) for s in subs.values()),
        "kinds": kinds(subs),
        "gaps": sum(1 for r in records if r["type"] == "gap"),
        "faults": sum(1 for r in records if r["type"] == "fault" and r.get("phase") == "start"),
        "lag_p50": round(lags[len(lags) // 2], 3) if lags else None,
        "lag_max": round(lags[-1], 3) if lags else None,
        "identity_tries": len(identity),
        "identity_judged": judged,
        "identity_refused": sum(1 for r in identity if r.get("status") in (401, 403)),
        "presence_reads": len(presence),
        "presence_complete": sum(1 for r in presence if r.get("count") is not None
                                 and r.get("count") == r.get("connected")),
        "presence": [f"{r['node']} {r['topic']} {r.get('count')}/{r.get('connected')}" for r in presence],
    }
    return summary, anomalies


def kind_of(sub):
    """A subscriber's kind, its name's leading letters: sse, ws, wsmux,
    ssemux, rust, js."""
    letters = ""
    for c in sub:
        if not c.isalpha():
            break
        letters += c
    return letters or sub


def reconnections(records):
    return max(0, sum(1 for r in records if r["type"] == "connect") - 1)


def kinds(subs):
    """Per kind of subscriber: how many, their streams (subscriber and
    topic), deliveries, gap signals and reconnections."""
    out = {}
    for (sub, _), stream in sorted(subs.items()):
        kind = out.setdefault(kind_of(sub), {"subscribers": set(), "streams": 0, "deliveries": 0, "gaps": 0,
                                             "reconnections": 0})
        kind["subscribers"].add(sub)
        kind["streams"] += 1
        kind["deliveries"] += sum(1 for r in stream["records"] if r["type"] == "deliver")
        kind["gaps"] += sum(1 for r in stream["records"] if r["type"] == "gap")
        kind["reconnections"] += reconnections(stream["records"])
    for kind in out.values():
        kind["subscribers"] = len(kind["subscribers"])
    return out


def describe_kinds(summary):
    """The per-kind counts as one line's text."""
    return "; ".join(f"{name}: {k['subscribers']} subscribers, {k['streams']} streams, {k['deliveries']} deliveries, "
                     f"{k['gaps']} gaps, {k['reconnections']} reconnections"
                     for name, k in summary["kinds"].items())


def token_valid(r):
    """Whether the node, by its clock, had to accept the token of an
    `identity` line (None: too near an edge to say). The try happened
    between the token's minting (its nbf) and the line's time."""
    try:
        skew, leeway = r.get("skew", 0), r.get("leeway", 0)
        start, end = r["nbf"] - leeway, r["exp"] + leeway
        times = (r["nbf"] + skew, r["t"] + skew)
    except (KeyError, TypeError):
        return None
    inside = [min(at - start, end - at) for at in times]
    if all(m > IDENTITY_MARGIN for m in inside):
        return True
    if all(m < -IDENTITY_MARGIN for m in inside):
        return False
    return None


def disconnected_between(records, start, end):
    return any(r["type"] in ("disconnect", "connect") and start <= r["t"] <= end for r in records)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("history", nargs="+")
    parser.add_argument("--late-bound", type=float, default=30.0)
    parser.add_argument("--json", action="store_true", help="the summary as one JSON object")
    parser.add_argument("--label", default="", help="put before each check's name")
    args = parser.parse_args()
    summary, anomalies = check(load(args.history), args.late_bound)
    if args.json:
        print(json.dumps({"summary": summary, "anomalies": {k: len(v) for k, v in anomalies.items()}}))
    else:
        print(f"history: {summary['publishes']} publishes: {summary['ok']} ok, {summary['fail']} failed, "
              f"{summary['unknown']} indeterminate ({summary['unknown_delivered']} of them delivered); "
              f"{summary['subscribers']} subscribers ({summary['streams']} streams of a subscriber and a topic), "
              f"{summary['deliveries']} deliveries, "
              f"{summary['reconnections']} reconnections, {summary['gaps']} gap signals; "
              f"{summary['faults']} faults; delivery after acknowledgement p50 {summary['lag_p50']} s, "
              f"max {summary['lag_max']} s")
        print(f"by kind: {describe_kinds(summary)}")
        print(f"identity: {summary['identity_tries']} tries, {summary['identity_judged']} judged, "
              f"{summary['identity_refused']} refused; presence: {summary['presence_complete']} of "
              f"{summary['presence_reads']} readings listed every member connected")
        for kind in KINDS:
            found = anomalies[kind]
            label = f"{args.label}{kind}"
            if found:
                print(f"FAIL {label}: {len(found)}: " + "; ".join(found[:3]))
            else:
                print(f"ok {label}: none")
    return 1 if any(anomalies.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
