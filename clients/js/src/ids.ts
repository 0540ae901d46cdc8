// Event ids are `epoch-seq`: two unsigned 64-bit decimal numbers, compared
// as numbers, the epoch first. A u64 does not fit a JavaScript number, so
// they are compared as digit strings.

const ID = /^(\d+)-(\d+)$/;

/** Whether `id` has the hub's id shape (`epoch-seq`, decimal digits). */
export function isId(id: unknown): id is string {
  return typeof id == "string" && ID.test(id);
}

function num(a: string, b: string): number {
  a = a.replace(/^0+(?=.)/, "");
  b = b.replace(/^0+(?=.)/, "");
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * Orders two event ids: negative when `a` comes before `b`, 0 when they are
 * the same id, positive when `a` comes after. Throws on a malformed id.
 */
export function compareIds(a: string, b: string): number {
  const x = ID.exec(a);
  const y = ID.exec(b);
  if (!x || !y) throw new TypeError(`not an event id: ${x ? b : a}`);
  return Math.sign(num(x[1], y[1]) || num(x[2], y[2]));
}
