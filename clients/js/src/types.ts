// The client's public types: transports, states, errors and options.

import type { BackoffOptions } from "./backoff.js";
import type { Gap, PresenceChange, TetherEvent } from "./wire.js";

/** A transport: `ws` (WebSocket), `sse` (EventSource), `poll` (long polling). */
export type TransportName = "ws" | "sse" | "poll";
/** A subscription's state. */
export type State = "connecting" | "open" | "resuming" | "closed";
/** Why something failed. */
export type Reason =
  | "network" // the connection failed or was cut
  | "auth" // 401, a token refused or expired (WebSocket close 1008)
  | "forbidden" // 403: the credential does not grant the topic
  | "http" // another HTTP status
  | "token" // getToken() threw
  | "policy" // the hub closed the WebSocket for another reason, or ended the subscription
  | "refused" // the hub refused a publish
  | "rpc" // the backend refused a call, or could not answer it (`status`: the hub's code)
  | "timeout" // a call was not answered in time
  | "protocol"; // the hub sent something this client cannot read

/** An error with the reason it happened, and the HTTP status or WebSocket close code. */
export class TetherError extends Error {
  constructor(
    readonly reason: Reason,
    message: string,
    readonly status?: number,
    public transport?: TransportName,
  ) {
    super(message);
    this.name = "TetherError";
  }
}

/** The default order: WebSocket, then EventSource, then long polling. */
export const TRANSPORTS: readonly TransportName[] = ["ws", "sse", "poll"];

/** The client's options. */
export interface TetherOptions {
  /** Transports to try, in order (default {@link TRANSPORTS}); one alone forces it. */
  transports?: TransportName[];
  /** A JSON Web Token (or the hub's publish token), or a function that gives one; called before each connection and when the hub says it expires. */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /** Send cookies on EventSource and fetch requests to another origin (a trusted one). */
  withCredentials?: boolean;
  /** The WebSocket constructor (default the global one; Node 20 has none). */
  WebSocket?: any;
  /** The EventSource constructor (default the global one). */
  EventSource?: any;
  /** `fetch` (default the global one). */
  fetch?: typeof fetch;
  /** Reconnect delays. */
  backoff?: BackoffOptions;
  /** Failed attempts on a transport that never worked before moving to the next (default 2). */
  maxFailures?: number;
  /** A long poll's wait, in seconds (default 25). */
  pollTimeout?: number;
}

/** What a subscription tells the application. */
export interface SubscribeOptions<T = string> {
  onEvent?: (event: TetherEvent<T>) => void;
  /** Events were missed (too old to replay, or lost); what follows resumes from `gap.resume`. */
  onGap?: (gap: Gap) => void;
  onState?: (state: State, transport: TransportName | null) => void;
  onError?: (error: TetherError) => void;
  /** Join and leave events (with `presence: true`; not over long polling). */
  onPresence?: (change: PresenceChange) => void;
  /** Resume after this id (`"0-0"`: everything the hub holds); default: from now. */
  since?: string;
  /** EventSource only: event types to listen for besides `message` (an EventSource cannot listen to all); the client's one stream listens for those of all its subscriptions. */
  types?: string[];
  presence?: boolean;
  /**
   * Ask for deltas (WebSocket and EventSource; topics whose namespace has
   * `delta=on`): the hub sends an event as a Fossil delta against the one
   * before it, applied here; the application gets whole events. A delta
   * that does not apply resubscribes the topic from its last event, whole.
   */
  delta?: boolean;
  /** Turns an event's data (its text, or a binary event's bytes as a `Uint8Array`) into the application's type (e.g. `JSON.parse`). */
  decode?: (data: string | Uint8Array) => T;
  /** This subscription's transports, in order (default the client's). */
  transports?: TransportName[];
}

/** What `publish` answers: the event's id, and whether its key was seen already. */
export interface Published {
  id: string;
  duplicate?: boolean;
}

/** A topic's members (`GET /topics/NAME/presence`). */
export interface Presence {
  topic: string;
  members: string[];
  count: number;
  truncated?: boolean;
}
