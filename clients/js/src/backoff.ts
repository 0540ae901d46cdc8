/** How long to wait before reconnecting, in milliseconds. */
export interface BackoffOptions {
  /** The first ceiling (default 500 ms). */
  initial?: number;
  /** The largest ceiling (default 30 000 ms). */
  max?: number;
  /** How much the ceiling grows per failed attempt (default 2). */
  factor?: number;
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry):
 * "full jitter", a uniform draw between 0 and the ceiling
 * `min(max, initial * factor ** attempt)`, so that many clients cut off at
 * once do not come back at once. `random` is `Math.random` unless a test
 * gives its own.
 */
export function backoffDelay(attempt: number, o: BackoffOptions = {}, random: () => number = Math.random): number {
  const ceiling = Math.min(o.max ?? 30_000, (o.initial ?? 500) * (o.factor ?? 2) ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}
