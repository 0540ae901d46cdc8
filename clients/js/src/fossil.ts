// Fossil deltas (the format tether's hub sends for topics with delta=on):
// the applier alone, with every number checked, copies kept inside the
// base, the output bounded and the checksum matched, so that a delta
// against a base it was not made from is an error, never a wrong value.

const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";

/** Builds the target of `delta` from `base` (the event it was made against); throws a RangeError when the delta is malformed, over `max` bytes, or not of this base. */
export function applyDelta(base: Uint8Array, delta: Uint8Array, max = 64 << 20): Uint8Array {
  let at = 0;
  let n = 0;
  let sum = 0;
  const fail = (): never => {
    throw new RangeError("bad delta");
  };
  // A number of 1 to 8 digits (under 2^48: lengths, offsets, the checksum).
  const int = (): number => {
    let v = 0;
    let i = at;
    for (let d; (d = DIGITS.indexOf(String.fromCharCode(delta[i]))) >= 0; i++) v = v * 64 + d;
    if (i == at || i - at > 8) fail();
    at = i;
    return v;
  };
  // The command after a number, checked to be `c`.
  const is = (c: string) => String.fromCharCode(delta[at]) == c && ++at;
  const len = int();
  if (!is("\n") || len > max) fail();
  const out = new Uint8Array(len);
  for (;;) {
    const count = int();
    const copy = is("@");
    let from = copy ? int() : at;
    if (!copy && is(";")) {
      // Fossil's checksum: the 32-bit sum of the output's big-endian words, the last padded with zeros.
      for (let i = 0; i < len; i += 4) sum = (sum + ((out[i] << 24) | (out[i + 1] << 16) | (out[i + 2] << 8) | out[i + 3])) >>> 0;
      if (at < delta.length || n < len || count != sum) fail();
      return out;
    }
    if (!(copy ? is(",") : is(":")) || count > len - n) fail();
    const src = copy ? base : delta;
    if (!copy) from = at, (at += count);
    if (from + count > src.length) fail();
    out.set(src.subarray(from, from + count), n);
    n += count;
  }
}

/** `applyDelta` on text: the base and the delta as UTF-8, the result decoded (invalid UTF-8 throws). */
export function applyTextDelta(base: string, delta: string): string {
  const enc = new TextEncoder();
  return new TextDecoder("utf-8", { fatal: true }).decode(applyDelta(enc.encode(base), enc.encode(delta)));
}
