// What the hub sends, as this client reads it: WebSocket messages and
// long-poll answers. The hub's README ("Formats") is the reference.

/** An event of a topic, as the application gets it. */
export interface TetherEvent<T = string> {
  topic: string;
  /** The hub's id, `epoch-seq`: it orders the topic's events. */
  id: string;
  /** The event type (`message` unless the publisher gave one). */
  type: string;
  /** The data, decoded by the subscription's `decode` (else the text, or a `Uint8Array` for a binary event). */
  data: T;
  /** The publish key, when the publisher gave one (WebSocket and long poll only). */
  key?: string;
}

/** The hub's "you missed events" signal. */
export interface Gap {
  topic: string;
  /** The id the client asked to resume from. */
  requested: string;
  /** The oldest event still held, if any. */
  first: string | null;
  /** Where the client is once it has the signal; what follows is delivered. */
  resume: string;
  /** Events lost from the server's durable log, when known. */
  lost?: { first: string; last: string };
}

/** A member joining or leaving a topic (`presence: true`). */
export interface PresenceChange {
  event: "join" | "leave";
  member: string;
}

/** A subscription the hub did not take: `status` is the one the per-topic route would answer. */
export interface Refusal {
  topic: string;
  status: number;
  error: string;
}

/**
 * One WebSocket message from the hub, classified by `kind`, with `topic`
 * when it is about one: `event` (with `event`), `gap` (with `gap`),
 * `presence` (with `presence`), and the hub's own messages as they come
 * with their `kind` added: `subscribed`, `refused` (`status`, `error`),
 * `unsubscribed` (`reason` when the hub ended it), `published` (`id`,
 * `key`, `duplicate`), `error` (`error`, `key`), `auth-ok`
 * (`expires_in`), `auth-expiring` (`in`); else `unknown`.
 */
export type WsMessage = { kind: string; topic?: string; event?: TetherEvent; gap?: Gap; presence?: PresenceChange; [field: string]: any };

const str = (v: unknown): v is string => typeof v == "string";

/** @internal An event as the hub sent it: its data, or a delta (`[delta, base id]`) against the topic's event before it. */
export type WireEvent = TetherEvent & { delta_?: [string, string] };

/** The bytes of standard base64 `s` (a binary event's data as text transports carry it). */
export const fromBase64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** The JSON form of an event (WebSocket message, long-poll item; a delta in place of the data for `delta: true`; a binary event's data, marked `"encoding":"base64"`, as a `Uint8Array`), or null. */
export function toEvent(m: any): WireEvent | null {
  const delta = m && str(m.delta) && str(m.base);
  return m && str(m.id) && (str(m.data) || delta)
    ? {
        topic: m.topic,
        id: m.id,
        type: str(m.event) ? m.event : "message",
        data: delta ? "" : m.encoding == "base64" ? (fromBase64(m.data) as any) : m.data,
        ...(delta && { delta_: [m.delta, m.base] as [string, string] }),
        ...(str(m.key) && { key: m.key }),
      }
    : null;
}

/** Classifies a JSON WebSocket message (of `/ws` or a per-topic socket); malformed JSON throws. */
export function parseWsMessage(text: string): WsMessage {
  const m = JSON.parse(text);
  if (!m || typeof m != "object") return { kind: "unknown" };
  const { control: c, type: t, topic } = m;
  if (t == "auth-ok" || t == "auth-expiring") return { ...m, kind: t };
  if (c == "gap") {
    const { control, ...gap } = m;
    return { kind: c, topic, gap };
  }
  if (str(c)) return { ...m, kind: c };
  if (str(m.member) && m.id === undefined && (m.event == "join" || m.event == "leave"))
    return { kind: "presence", topic, presence: { event: m.event, member: m.member } };
  const event = toEvent(m);
  return event ? { kind: "event", topic, event } : { kind: "unknown" };
}

/**
 * A long poll's answer: a multi-topic one (`{"events","next":"CURSOR","gaps":[...],"refused":[...]}`),
 * or a per-topic one (`{"topic","events","next":"ID","gap"}`: its `gap` is not read).
 */
export interface PollAnswer {
  events: TetherEvent[];
  /** The `since` of the next poll: an id, or a multi-topic poll's cursor. */
  next: string;
  gaps: Gap[];
  refused: Refusal[];
}

/** Reads a long poll's answer (already parsed from JSON); throws when it is not one. */
export function parsePoll(m: any): PollAnswer {
  if (!m || !Array.isArray(m.events) || !str(m.next)) throw new TypeError("not a long-poll answer");
  return { events: m.events.map(toEvent).filter(Boolean), next: m.next, gaps: m.gaps || [], refused: m.refused || [] };
}
