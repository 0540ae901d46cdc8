"""Delay and reordering of a host's packets, for kernels without netem.

    delayer.py --queue N --delay-ms 200 --jitter-ms 50 [--reorder-pct 0]

Run inside the host's namespace, with iptables sending what the host
sends and receives to NFQUEUE N (nemesis.py adds the rules, with
--queue-bypass, so that traffic flows again the moment this process
ends). Each packet is held for the delay, plus or minus a uniform
jitter, then accepted; with --reorder-pct P, P % of the packets are
accepted at once, ahead of those held, which reorders them as netem's
`reorder` does. Stops on SIGTERM, accepting whatever it still holds.
"""

import argparse
import heapq
import itertools
import random
import select
import signal
import time

from netfilterqueue import NetfilterQueue


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--reorder-pct", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    held = []  # (release time, order, packet)
    order = itertools.count()
    stopping = False

    def on_packet(packet):
        if rng.uniform(0, 100) < args.reorder_pct:
            packet.accept()
            return
        delay = max(0.0, args.delay_ms + rng.uniform(-args.jitter_ms, args.jitter_ms)) / 1000
        heapq.heappush(held, (time.monotonic() + delay, next(order), packet))

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    queue = NetfilterQueue()
    queue.bind(args.queue, on_packet, max_len=100000)
    fd = queue.get_fd()
    try:
        while not stopping:
            wait = 0.05
            if held:
                wait = max(0.0, min(wait, held[0][0] - time.monotonic()))
            ready, _, _ = select.select([fd], [], [], wait)
            if ready:
                queue.run(block=False)
            now = time.monotonic()
            while held and held[0][0] <= now:
                heapq.heappop(held)[2].accept()
    finally:
        while held:
            heapq.heappop(held)[2].accept()
        queue.unbind()


if __name__ == "__main__":
    main()
