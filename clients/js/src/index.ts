// tether-client: subscribe to the tether hub's topics from a browser (or
// Node), over WebSocket, EventSource or long polling, resuming exactly
// where the last connection left off. No runtime dependencies.

import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { compareIds, isId } from "./ids.js";
import { parsePoll, parseWsMessage, toEvent, type Gap, type PresenceChange, type TetherEvent } from "./wire.js";

export { backoffDelay, compareIds, isId, parsePoll, parseWsMessage, toEvent };
export type { BackoffOptions, Gap, PresenceChange, TetherEvent };
export type { PollAnswer, WsMessage } from "./wire.js";

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
  | "policy" // the hub closed the WebSocket for another reason
  | "refused" // the hub refused a publish
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
  /** EventSource only: event types to listen for besides `message` (an EventSource cannot listen to all). */
  types?: string[];
  presence?: boolean;
  /** Turns an event's text into the application's type (e.g. `JSON.parse`). */
  decode?: (data: string) => T;
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

const g: any = globalThis;

/**
 * The transports of `order` that this environment can open: `ws` needs a
 * WebSocket constructor, `sse` an EventSource; `poll` needs only fetch.
 */
export function availableTransports(order: readonly TransportName[], env: { WebSocket?: unknown; EventSource?: unknown }): TransportName[] {
  return order.filter((t) => (t == "ws" ? env.WebSocket : t == "sse" ? env.EventSource : true));
}

function randomKey(): string {
  const b = new Uint8Array(12);
  g.crypto?.getRandomValues ? g.crypto.getRandomValues(b) : b.forEach((_, i) => (b[i] = Math.random() * 256));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const online = () => !(g.navigator && g.navigator.onLine === false);

/** A client of one tether server. */
export class Tether {
  readonly url: URL;
  readonly options: TetherOptions;
  private subs = new Set<Subscription<any>>();
  private off: () => void = () => {};

  /** `url`: the server (`https://push.example.com`, or a path on the page's own origin). */
  constructor(url: string | URL, options: TetherOptions = {}) {
    this.url = new URL(url, g.location?.href);
    this.url.pathname = this.url.pathname.replace(/\/?$/, "/");
    this.options = { WebSocket: g.WebSocket, EventSource: g.EventSource, ...options };
    // Browsers only: Node has no window events nor document.
    if (g.window?.addEventListener) {
      const wake = () => this.subs.forEach((s) => s.wake());
      const drop = () => this.subs.forEach((s) => s.drop());
      const seen = () => g.document?.visibilityState == "visible" && wake();
      addEventListener("online", wake);
      addEventListener("offline", drop);
      g.document?.addEventListener("visibilitychange", seen);
      this.off = () => {
        removeEventListener("online", wake);
        removeEventListener("offline", drop);
        g.document?.removeEventListener("visibilitychange", seen);
      };
    }
  }

  /** Subscribes to `topic`; events come to `options.onEvent` in order, each once. */
  subscribe<T = string>(topic: string, options: SubscribeOptions<T> = {}): Subscription<T> {
    const sub = new Subscription<T>(this, topic, options);
    this.subs.add(sub);
    return sub;
  }

  /**
   * Publishes `data` (a string as it is, anything else as JSON) to
   * `topic`. Over this client's open WebSocket on the topic if there is
   * one (an envelope, acknowledged), else with `POST /topics/NAME`; each
   * publish carries a key, so that a retry after a lost answer publishes
   * once.
   */
  async publish(topic: string, data: unknown, options: { type?: string; key?: string; via?: "http" | "ws" } = {}): Promise<Published> {
    const text = typeof data == "string" ? data : JSON.stringify(data);
    const key = options.key || randomKey();
    if (options.via != "http")
      for (const s of this.subs)
        if (s.topic == topic && s.transport == "ws" && s.state == "open")
          try {
            return await s.wsPublish(text, options.type, key);
          } catch {
            // Not published on the socket (not allowed there, or cut): over HTTP, with the same key.
          }
    for (let attempt = 0; ; attempt++) {
      const q: Record<string, string> = {};
      if (options.type) q.event = options.type;
      try {
        return await (
          await this.request("POST", topic, "", q, await this.token(), {
            body: text,
            headers: { "Tether-Publish-Id": key, "Content-Type": "text/plain;charset=UTF-8" },
          })
        ).json();
      } catch (e: any) {
        const retry = e.reason == "network" || e.status == 503 || e.status == 504;
        if (!retry || attempt >= 3) throw e;
        await new Promise((r) => setTimeout(r, backoffDelay(attempt + 1, this.options.backoff)));
      }
    }
  }

  /** Who is subscribed to `topic`. */
  async presence(topic: string): Promise<Presence> {
    return (await this.request("GET", topic, "/presence", {}, await this.token())).json();
  }

  /** Closes every subscription and stops listening to the page's events. */
  close(): void {
    this.subs.forEach((s) => s.close());
    this.off();
  }

  /** @internal */
  forget(sub: Subscription<any>): void {
    this.subs.delete(sub);
  }

  /** @internal The token for the next connection, if any. */
  async token(): Promise<string | undefined> {
    try {
      return (await this.options.getToken?.()) || undefined;
    } catch (e) {
      throw new TetherError("token", `getToken failed: ${e}`);
    }
  }

  /** @internal A URL under the server for `topic` (or `/tickets` when topic is ""). */
  href(topic: string, suffix: string, query: Record<string, string | undefined>, ws?: boolean): string {
    const u = new URL(topic ? `topics/${encodeURIComponent(topic)}${suffix}` : suffix, this.url);
    for (const k in query) if (query[k] != null) u.searchParams.set(k, query[k]!);
    if (ws) u.protocol = u.protocol.replace("http", "ws");
    return u.href;
  }

  /** @internal A request to the hub; a TetherError unless it answers 2xx. */
  async request(
    method: string,
    topic: string,
    suffix: string,
    query: Record<string, string | undefined>,
    token?: string,
    init: RequestInit & { headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const headers = { ...init.headers, ...(token && { Authorization: `Bearer ${token}` }) };
    let r: Response;
    try {
      r = await (this.options.fetch || fetch)(this.href(topic, suffix, query), {
        ...init,
        method,
        headers,
        credentials: this.options.withCredentials ? "include" : "same-origin",
        cache: "no-store",
      });
    } catch (e: any) {
      if (e?.name == "AbortError") throw e;
      throw new TetherError("network", `${method} ${suffix || topic}: ${e?.message || e}`);
    }
    if (r.ok) return r;
    const s = r.status;
    const why = (await r.text().catch(() => "")).trim();
    throw new TetherError(s == 401 ? "auth" : s == 403 ? "forbidden" : "http", `${s} ${why}`, s);
  }
}

type Conn = { close(): void; ws?: any };

/** One topic's subscription: reconnects, resumes and falls back by itself until closed. */
export class Subscription<T = string> {
  /** The subscription's state. */
  state: State = "connecting";
  /** The transport of the current (or last) connection. */
  transport: TransportName | null = null;
  /** The id of the last event delivered (or where a gap left it): where the next connection resumes. */
  lastId?: string;
  private order: TransportName[];
  private ti = 0; // the current transport's index in `order`
  private fails = 0; // failed attempts on it in a row
  private attempt = 0; // failed attempts in a row, for the backoff
  private proven = new Set<TransportName>();
  private gen = 0; // the current connection's number: callbacks of older ones are ignored
  private conn: Conn | null = null;
  private timer: any;
  private waiting = false; // for a retry timer or for the network
  private good = false; // the current connection delivered or lasted
  private openedAt = 0; // when it opened, if it did
  private told = ""; // the state and transport onState heard of last
  private pending = new Map<string, [(p: Published) => void, (e: any) => void]>();

  constructor(
    private client: Tether,
    readonly topic: string,
    private o: SubscribeOptions<T>,
  ) {
    const c = client.options;
    this.order = availableTransports(o.transports || c.transports || TRANSPORTS, c);
    if (o.since != null && !isId(o.since)) throw new TypeError(`since: not an event id: ${o.since}`);
    this.lastId = o.since;
    Promise.resolve().then(() => this.connect());
  }

  /** Stops: closes the connection; nothing more is delivered. */
  close(): void {
    if (this.state == "closed") return;
    this.gen++;
    clearTimeout(this.timer);
    this.conn?.close();
    this.conn = null;
    this.client.forget(this);
    this.pending.forEach(([, no]) => no(new TetherError("network", "subscription closed")));
    this.setState("closed");
  }

  /** @internal The network is back, or the page visible again: reconnect now if waiting. */
  wake(): void {
    if (this.waiting && this.state != "closed") {
      this.attempt = 0;
      this.connect();
    }
  }

  /** @internal The network is gone: drop the connection and wait for it. */
  drop(): void {
    if (this.state == "closed") return;
    this.gen++;
    clearTimeout(this.timer);
    this.conn?.close();
    this.conn = null;
    this.waiting = true;
    this.setState("resuming");
  }

  /** @internal Publishes over this subscription's WebSocket, as an acknowledged envelope. */
  wsPublish(data: string, type: string | undefined, key: string): Promise<Published> {
    return new Promise((yes, no) => {
      const timer = setTimeout(() => fail(new TetherError("network", "no acknowledgement")), 10_000);
      const fail = (e: any) => (clearTimeout(timer), this.pending.delete(key), no(e));
      this.pending.set(key, [(p) => (clearTimeout(timer), this.pending.delete(key), yes(p)), fail]);
      this.conn!.ws.send(JSON.stringify({ data, id: key, ...(type && { event: type }) }));
    });
  }

  private setState(state: State): void {
    this.state = state;
    if (this.told == state + this.transport) return;
    this.told = state + this.transport;
    this.o.onState?.(state, this.transport);
  }

  private error(e: TetherError): void {
    this.o.onError?.(e);
  }

  private async connect(): Promise<void> {
    const gen = ++this.gen;
    clearTimeout(this.timer);
    this.waiting = false;
    this.good = false;
    this.openedAt = 0;
    if (!online()) return this.drop();
    const t = (this.transport = this.order[this.ti]);
    this.setState(this.proven.size ? "resuming" : "connecting");
    if (!t) return this.fatal(new TetherError("network", "no transport available here"));
    try {
      const token = await this.client.token();
      if (gen != this.gen) return;
      // Without an id to resume from, the topic's head is asked first
      // (a long poll that answers at once), so that the first reconnect
      // misses nothing even before an event came.
      // Refused (long polls blocked on the way, say), the subscription
      // starts from whenever its connection opens; a bad topic (400) ends it.
      if (this.lastId == null) {
        try {
          this.lastId = parsePoll(await (await this.client.request("GET", this.topic, "/poll", { timeout: "0" }, token)).json()).next;
        } catch (e: any) {
          if (!e.status || e.status == 400) throw e;
        }
        if (gen != this.gen) return;
      }
      if (t == "ws") this.ws(gen, token);
      else if (t == "sse") await this.sse(gen, token);
      else await this.poll(gen, token);
    } catch (e: any) {
      this.ended(gen, e instanceof TetherError ? e : new TetherError("protocol", String(e?.message || e), undefined, t));
    }
  }

  /** The current connection works: it opened and delivered, or it opened. */
  private opened(gen: number, delivered = true): void {
    if (gen != this.gen) return;
    this.openedAt ||= Date.now();
    if (delivered && !this.good) {
      this.good = true;
      this.fails = this.attempt = 0;
      this.proven.add(this.transport!);
    }
    this.setState("open");
  }

  private fatal(e: TetherError): void {
    this.error(e);
    this.close();
  }

  /** The connection `gen` ended (with `e` if it failed): reconnect, perhaps on the next transport. */
  private ended(gen: number, e?: TetherError): void {
    if (gen != this.gen || this.state == "closed") return;
    const conn = this.conn;
    this.conn = null;
    conn?.close();
    this.pending.forEach(([, no]) => no(new TetherError("network", "connection lost")));
    // A connection that opened and lasted counts as working, even with nothing to say.
    if (this.openedAt && Date.now() - this.openedAt > 3000) this.opened(gen);
    this.gen++;
    if (e) {
      e.transport ||= this.transport!;
      // A bad topic or a route that does not exist will not get better.
      if (e.status == 400 || e.status == 404 || e.status == 405) return this.fatal(e);
      this.error(e);
    }
    let delay = 0;
    if (!this.good) {
      const t = this.transport!;
      if (++this.fails >= (this.proven.has(t) ? 8 : this.client.options.maxFailures || 2) && this.order.length > 1) {
        this.ti = (this.ti + 1) % this.order.length;
        this.fails = 0;
      } else delay = backoffDelay(this.attempt++, this.client.options.backoff);
    } else delay = backoffDelay(0, this.client.options.backoff);
    this.waiting = true;
    this.setState(this.proven.size ? "resuming" : "connecting");
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private deliver(gen: number, e: TetherEvent | null): void {
    if (gen != this.gen || !e) return;
    // Ids only grow within a topic: anything at or before the last one
    // was delivered already (a replay overlapping what came live).
    if (isId(e.id)) {
      if (isId(this.lastId) && compareIds(e.id, this.lastId) <= 0) return;
      this.lastId = e.id;
    }
    this.opened(gen);
    const d = this.o.decode;
    this.o.onEvent?.(d ? { ...e, data: d(e.data) } : (e as any));
  }

  private gap(gen: number, gap: Gap): void {
    if (gen != this.gen) return;
    // Continuity is broken: the hub's resume point is where we are now.
    this.lastId = gap.resume;
    this.opened(gen);
    this.o.onGap?.(gap);
  }

  private ws(gen: number, token?: string): void {
    const WS = this.client.options.WebSocket;
    const o = this.o;
    const ws = new WS(
      this.client.href(
        this.topic,
        "/ws",
        { lastEventId: this.lastId, envelope: "1", auth: token && "1", presence: o.presence ? "1" : undefined },
        true,
      ),
    );
    let renew: any;
    const refresh = async () => {
      try {
        const fresh = await this.client.token();
        if (fresh && gen == this.gen) ws.send(JSON.stringify({ type: "auth", token: fresh }));
      } catch (e: any) {
        this.error(e);
      }
    };
    this.conn = { close: () => (clearTimeout(renew), ws.close(1000)), ws };
    ws.onopen = () => {
      if (token) ws.send(JSON.stringify({ type: "auth", token }));
      this.opened(gen, false);
    };
    ws.onmessage = (m: { data: unknown }) => {
      if (gen != this.gen) return;
      let msg;
      try {
        msg = parseWsMessage(String(m.data));
      } catch {
        return this.error(new TetherError("protocol", "a message that is not JSON", undefined, "ws"));
      }
      switch (msg.kind) {
        case "event":
          return this.deliver(gen, msg.event);
        case "gap":
          return this.gap(gen, msg.gap);
        case "presence":
          return o.onPresence?.(msg.change);
        case "auth-ok":
          // Refresh in place (the hub takes another auth message at any
          // time) after two thirds of the token's life, or when warned.
          clearTimeout(renew);
          if (msg.expiresIn != null) renew = setTimeout(refresh, Math.max(1, (msg.expiresIn * 2) / 3) * 1000);
          return this.opened(gen);
        case "auth-expiring":
          return refresh();
        case "published":
          return msg.key && this.pending.get(msg.key)?.[0]({ id: msg.id, ...(msg.duplicate && { duplicate: true }) });
        case "error": {
          const e = new TetherError("refused", msg.error, undefined, "ws");
          const p = msg.key && this.pending.get(msg.key);
          return p ? p[1](e) : this.error(e);
        }
      }
    };
    ws.onclose = (c: { code: number; reason: string }) => {
      const e =
        c.code == 1000 || c.code == 1001 || c.code == 1012
          ? undefined
          : new TetherError(c.code == 1008 ? (/token|auth/.test(c.reason) ? "auth" : "policy") : "network", `WebSocket closed ${c.code} ${c.reason || ""}`.trim(), c.code);
      this.ended(gen, e);
    };
  }

  private async sse(gen: number, token?: string): Promise<void> {
    const o = this.o;
    // EventSource cannot send headers: a token goes as a single-use ticket.
    const ticket = token
      ? (await (await this.client.request("POST", "", "tickets", { topic: this.topic }, token)).json()).ticket
      : undefined;
    if (gen != this.gen) return;
    const es = new this.client.options.EventSource(
      this.client.href(this.topic, "/events", { lastEventId: this.lastId, ticket, presence: o.presence ? "1" : undefined }),
      { withCredentials: !!this.client.options.withCredentials },
    );
    this.conn = es;
    let expired = false;
    const on = (type: string, f: (e: { data: string; lastEventId: string }) => void) => es.addEventListener(type, f);
    for (const type of ["message", ...(o.types || [])])
      on(type, (e) => this.deliver(gen, { topic: this.topic, id: e.lastEventId, type, data: e.data }));
    on("gap", (e) => this.gap(gen, JSON.parse(e.data)));
    on("auth-expired", () => (expired = true));
    for (const type of ["join", "leave"] as const)
      on(type, (e) => gen == this.gen && o.onPresence?.({ event: type, member: JSON.parse(e.data).member }));
    es.onopen = () => this.opened(gen, false);
    es.onerror = () => {
      // The browser would reconnect by itself, but with a used ticket and
      // the id of its own choosing: this client reconnects instead.
      es.close();
      this.ended(gen, new TetherError(expired ? "auth" : "network", expired ? "token expired" : "event stream failed", undefined, "sse"));
    };
  }

  private async poll(gen: number, token?: string): Promise<void> {
    const abort = new AbortController();
    this.conn = { close: () => abort.abort() };
    // The first poll answers at once: the transport works (or not) now.
    let timeout = "0";
    for (;;) {
      let answer;
      try {
        const r = await this.client.request("GET", this.topic, "/poll", { since: this.lastId, timeout }, token, { signal: abort.signal });
        answer = parsePoll(await r.json());
      } catch (e: any) {
        if (gen != this.gen) return;
        throw e;
      }
      if (gen != this.gen) return;
      this.opened(gen);
      if (answer.gap) this.gap(gen, answer.gap);
      for (const e of answer.events) this.deliver(gen, e);
      if (gen != this.gen) return;
      if (isId(answer.next) && (!isId(this.lastId) || compareIds(answer.next, this.lastId!) > 0)) this.lastId = answer.next;
      token = await this.client.token();
      timeout = String(this.client.options.pollTimeout ?? 25);
    }
  }
}
