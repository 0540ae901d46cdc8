// The cursor of a multi-topic event stream or long poll: every topic's
// position in one id, as the hub's `Cursor` (tether-hub) writes it. The
// client builds one when the topics it follows change, so that the new
// stream resumes each topic from its own last event.

import { isId } from "./ids.js";

const varint = (out: number[], v: bigint) => {
  for (; v > 127n; v >>= 7n) out.push(Number(v & 127n) | 128);
  out.push(Number(v));
};

/**
 * The cursor (`~` and base64url) of a stream of `topics`, in this order,
 * each at the id of the same index in `ids` (not an id: from its next
 * event): a version byte, the count, the FNV-1a of the topics joined by
 * `\n`, then per topic the zigzagged difference of its epoch to the
 * previous one's (plus one; 0 for none) and its sequence, as varints.
 */
export function encodeCursor(topics: string[], ids: (string | undefined)[]): string {
  let f = 0x811c9dc5;
  for (const c of topics.join("\n")) f = Math.imul(f ^ c.charCodeAt(0), 0x01000193);
  const b = [1];
  varint(b, BigInt(topics.length));
  for (let i = 0; i < 32; i += 8) b.push((f >>> i) & 255);
  let prev = 0n;
  for (const id of ids) {
    if (!isId(id)) {
      b.push(0);
      continue;
    }
    const [ms, seq] = id.split("-").map(BigInt);
    const d = BigInt.asIntN(64, ms - prev);
    varint(b, BigInt.asUintN(64, (d << 1n) ^ (d >> 63n)) + 1n);
    varint(b, seq);
    prev = ms;
  }
  return "~" + btoa(String.fromCharCode(...b)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}
