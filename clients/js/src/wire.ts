// What the hub sends, as this client reads it: WebSocket messages and
// long-poll answers. The hub's README ("Formats") is the reference.

/** An event of a topic, as the application gets it. */
export interface TetherEvent<T = string> {
  topic: string;
  /** The hub's id, `epoch-seq`: it orders the topic's events. */
  id: string;
  /** The event type (`message` unless the publisher gave one). */
  type: string;
  /** The data, decoded by the subscription's `decode` (else the text). */
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

/** One WebSocket message from the hub, classified. */
export type WsMessage =
  | { kind: "event"; event: TetherEvent }
  | { kind: "gap"; gap: Gap }
  | { kind: "presence"; change: PresenceChange }
  | { kind: "auth-ok"; expiresIn?: number }
  | { kind: "auth-expiring"; in: number }
  | { kind: "published"; id: string; key?: string; duplicate: boolean }
  | { kind: "error"; error: string; key?: string }
  | { kind: "unknown" };

const str = (v: unknown): v is string => typeof v == "string";

/** The JSON form of an event (WebSocket message, long-poll item), or null. */
export function toEvent(m: any): TetherEvent | null {
  return m && str(m.id) && str(m.data)
    ? { topic: m.topic, id: m.id, type: str(m.event) ? m.event : "message", data: m.data, ...(str(m.key) && { key: m.key }) }
    : null;
}

/** Classifies a JSON WebSocket message; malformed JSON throws. */
export function parseWsMessage(text: string): WsMessage {
  const m = JSON.parse(text);
  if (!m || typeof m != "object") return { kind: "unknown" };
  if (m.type == "auth-ok") return { kind: "auth-ok", expiresIn: m.expires_in };
  if (m.type == "auth-expiring") return { kind: "auth-expiring", in: m.in };
  if (m.control == "gap") {
    const { control, ...gap } = m;
    return { kind: "gap", gap };
  }
  if (m.control == "published") return { kind: "published", id: m.id, key: m.key, duplicate: !!m.duplicate };
  if (m.control == "error") return { kind: "error", error: String(m.error), key: m.key };
  if (str(m.member) && m.id === undefined && (m.event == "join" || m.event == "leave"))
    return { kind: "presence", change: { event: m.event, member: m.member } };
  const event = toEvent(m);
  return event ? { kind: "event", event } : { kind: "unknown" };
}

/** A long poll's answer: `{"topic","events":[...],"next":"ID","gap":null|{...}}`. */
export interface PollAnswer {
  events: TetherEvent[];
  next: string;
  gap: Gap | null;
}

/** Reads a long poll's answer (already parsed from JSON); throws when it is not one. */
export function parsePoll(m: any): PollAnswer {
  if (!m || !Array.isArray(m.events) || !str(m.next)) throw new TypeError("not a long-poll answer");
  return { events: m.events.map(toEvent).filter(Boolean), next: m.next, gap: m.gap || null };
}
