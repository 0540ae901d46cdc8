// One connection of a client on one transport, carrying every
// subscription of the client that uses that transport: one WebSocket to
// `/ws` (subscribe and unsubscribe messages), one EventSource on
// `/events?topic=A&topic=B...`, or one long poll on `/poll?topic=...`.
// It reconnects by itself while it carries any subscription.

import { backoffDelay } from "./backoff.js";
import { encodeCursor } from "./cursor.js";
import { compareIds, isId } from "./ids.js";
import type { Tether } from "./index.js";
import type { Subscription } from "./subscription.js";
import { TetherError, type Published, type TransportName } from "./types.js";
import { applyTextDelta } from "./fossil.js";
import { parsePoll, parseWsMessage, toEvent, type TetherEvent, type WireEvent } from "./wire.js";

type Subs = Subscription<any>[];
const g: any = globalThis;
const online = () => !(g.navigator && g.navigator.onLine === false);

/** The earliest position of a topic's subscriptions, none if one has none (from its next event). */
function earliest(subs: Subs): string | undefined {
  let id: string | undefined;
  for (const s of subs) {
    if (!isId(s.lastId)) return;
    if (!id || compareIds(s.lastId, id) < 0) id = s.lastId;
  }
  return id;
}

/** @internal */
export class Link {
  subs_ = new Set<Subscription<any>>();
  /** The WebSocket, once open. */
  sock_: any = null;
  private gen_ = 0; // the current connection's number: callbacks of older ones are ignored
  private conn_: { close(): void } | null = null;
  private timer_: any;
  private attempt_ = 0; // failed attempts in a row, for the backoff
  private good_ = false; // the current connection delivered or lasted
  private openedAt_ = 0;
  private waiting_ = false; // for a retry timer or for the network
  private on_ = new Set<string>(); // topics subscribed on the socket
  private cursor_: string[] | null = null; // the stream's last cursor, and the topics it is for
  private pending_ = new Map<string, [string, (m: any) => void]>();
  private calls_ = new Map<number, (m: any) => void>(); // calls out on the socket, by id
  private id_ = 0;
  /** Each topic's last event on this connection, `[id, data]`: what its next delta applies to. */
  private last_ = new Map<string, [string, string]>();
  /** Topics resubscribed after a delta that did not apply: their deltas are dropped until a whole event comes. */
  private resync_ = new Set<string>();

  constructor(
    private c: Tether,
    readonly t: TransportName,
  ) {}

  /** The topics carried, each with its subscriptions, in the order they came. */
  topics_(): Map<string, Subs> {
    const m = new Map<string, Subs>();
    for (const s of this.subs_) m.set(s.topic, [...(m.get(s.topic) || []), s]);
    return m;
  }

  add_(s: Subscription<any>): void {
    this.subs_.add(s);
    // A subscription added since: the stream's last cursor may be ahead of it.
    this.cursor_ = null;
    if (this.waiting_) return;
    if (this.t != "ws" || !this.conn_) return this.soon_();
    const gen = this.gen_;
    // On the open socket, once it knows where to start from (if the head fails: from now).
    if (this.sock_)
      this.c
        .token_()
        .then((t) => s.head_(t))
        .catch(() => {})
        .then(() => gen == this.gen_ && this.subs_.has(s) && this.subscribe_(s.topic));
  }

  remove_(s: Subscription<any>): void {
    if (!this.subs_.delete(s)) return;
    if (!this.subs_.size) return this.stop_();
    if (this.topics_().has(s.topic)) return;
    if (this.t != "ws") !this.waiting_ && this.soon_();
    else if (this.sock_ && this.on_.delete(s.topic)) this.send_({ type: "unsubscribe", topic: s.topic });
  }

  /** The network is back, or the page visible again: reconnect now if waiting. */
  wake(): void {
    if (this.waiting_) {
      this.attempt_ = 0;
      this.connect_();
    }
  }

  /** The network is gone: drop the connection and wait for it. */
  drop(): void {
    if (!this.subs_.size) return;
    this.stop_();
    this.waiting_ = true;
    this.subs_.forEach((s) => s.setState_("resuming"));
  }

  /** Publishes on the open WebSocket, acknowledged. */
  publish_(topic: string, data: string, event: string | undefined, id: string): Promise<Published> {
    return new Promise((yes, no) => {
      // The hub's published message, or the error.
      const done = (m: any) => {
        clearTimeout(timer);
        this.pending_.delete(id);
        m.kind ? yes({ id: m.id, ...(m.duplicate && { duplicate: true }) }) : no(m);
      };
      const timer = setTimeout(() => done(new TetherError("network", "no acknowledgement")), 10_000);
      this.pending_.set(id, [topic, done]);
      this.send_({ type: "publish", topic, data, id, ...(event && { event }) });
    });
  }

  /** Calls `method` on the open WebSocket: its result, or a TetherError (`rpc`, `timeout`, `network`). */
  rpc_(method: string, data: unknown, ms: number): Promise<unknown> {
    return new Promise((yes, no) => {
      const id = ++this.id_;
      // The hub's rpc-result or rpc-error, or the error.
      const done = (m: any) => {
        clearTimeout(timer);
        this.calls_.delete(id);
        m.kind == "rpc-result" ? yes(m.data) : no(m.kind ? new TetherError("rpc", m.reason, m.code, "ws") : m);
      };
      const timer = setTimeout(() => done(new TetherError("timeout", `${method}: no answer`)), ms);
      this.calls_.set(id, done);
      this.send_({ type: "rpc", id, method, data });
    });
  }

  private send_(m: object): void {
    this.sock_.send(JSON.stringify(m));
  }

  /** Ends the current connection, if any, and forgets its callbacks. */
  private stop_(): void {
    this.gen_++;
    clearTimeout(this.timer_);
    this.conn_?.close();
    this.conn_ = this.sock_ = null;
    this.on_.clear();
    // A new connection starts each topic with a whole event.
    this.last_.clear();
    this.resync_.clear();
    this.waiting_ = false;
    // Neither publishes nor calls are sent again: the application decides.
    const lost = new TetherError("network", "connection lost");
    this.pending_.forEach(([, done]) => done(lost));
    this.calls_.forEach((done) => done(lost));
  }

  /** (Re)connects once the current task is done: subscriptions made together share one connection. */
  private soon_(): void {
    this.stop_();
    const gen = this.gen_;
    Promise.resolve().then(() => void (gen == this.gen_ && this.connect_()));
  }

  private async connect_(): Promise<void> {
    this.stop_();
    const gen = this.gen_;
    this.good_ = false;
    this.openedAt_ = 0;
    if (!this.subs_.size) return;
    if (!online()) return this.drop();
    this.subs_.forEach((s) => s.connecting_(this.t));
    try {
      const token = await this.c.token_();
      if (gen != this.gen_) return;
      await Promise.all([...this.subs_].map((s) => s.head_(token)));
      if (gen == this.gen_) await (this as any)[this.t](gen, token);
    } catch (e: any) {
      this.ended_(gen, e instanceof TetherError ? e : new TetherError("protocol", String(e?.message || e)));
    }
  }

  /** The current connection works: it delivered something. */
  private works_(): void {
    this.openedAt_ ||= Date.now();
    if (this.good_) return;
    this.good_ = true;
    this.attempt_ = 0;
    this.subs_.forEach((s) => s.works_(this.t));
  }

  /** The connection `gen` ended (with `e` if it failed): each subscription hears of it, then a reconnect. */
  private ended_(gen: number, e?: TetherError): void {
    if (gen != this.gen_) return;
    // A connection that opened and lasted counts as working, even with nothing to say.
    if (this.openedAt_ && Date.now() - this.openedAt_ > 3000) this.works_();
    const good = this.good_;
    this.stop_();
    this.waiting_ = true;
    if (e) e.transport ||= this.t;
    // Each may give up, or move to its next transport.
    [...this.subs_].forEach((s) => s.ended_(good, e));
    if (this.subs_.size) this.timer_ = setTimeout(() => this.connect_(), backoffDelay(good ? 0 : this.attempt_++, this.c.options.backoff));
  }

  /** Where a stream or poll of `topics` resumes: its last cursor if it is for them, else one of each topic's position. */
  private since_(topics: string[]): string {
    const key = topics.join("\n");
    const t = this.topics_();
    return this.cursor_?.[0] == key ? this.cursor_[1] : encodeCursor(topics, topics.map((x) => earliest(t.get(x)!)));
  }

  /** Subscribes `topic` on the socket, from the earliest position of its subscriptions (again, if it was). */
  private subscribe_(topic: string): void {
    const subs = this.topics_().get(topic) || [];
    const since = earliest(subs);
    if (this.on_.has(topic)) this.send_({ type: "unsubscribe", topic });
    this.on_.add(topic);
    this.send_({
      type: "subscribe",
      topic,
      ...(since && { since }),
      ...(subs.some((s) => s.o.presence) && { presence: true }),
      ...(subs.some((s) => s.o.delta) && { delta: true }),
    });
  }

  /**
   * The event whole: a delta applied to its topic's last event on this
   * connection. A delta whose base is not that event, or that does not
   * apply (its checksum, say), gives null: the topic is resubscribed from
   * its subscriptions' position (the socket's subscribe, the stream
   * reconnected), whole again, rather than a wrong value shown.
   */
  private whole_(e: WireEvent | null): TetherEvent | null {
    if (!e) return null;
    const { delta_, ...whole } = e;
    const t = e.topic;
    if (delta_) {
      if (this.resync_.has(t)) return null;
      const last = this.last_.get(t);
      try {
        if (last?.[0] != delta_[1]) throw 0;
        whole.data = applyTextDelta(last[1], delta_[0]);
      } catch {
        this.last_.delete(t);
        this.resync_.add(t);
        if (this.t == "ws") this.subscribe_(t);
        else this.soon_();
        return null;
      }
    }
    this.resync_.delete(t);
    this.last_.set(t, [whole.id, whole.data]);
    return whole;
  }

  /**
   * Hands what the hub said about `topic` to its subscriptions, whatever
   * the transport: `kind` is the name of the subscriptions' method
   * (`event`, `gap`, `presence`, `subscribed`, `refused`, `unsubscribed`).
   */
  private route_(kind: string, topic: string, x?: any): void {
    if (kind[0] == "r" || kind[0] == "u") this.on_.delete(topic);
    else if (kind != "presence") this.works_();
    this.topics_()
      .get(topic)
      ?.forEach((s: any) => s[kind](x));
  }

  // The transports, each called as this[t] by connect.

  private ws(gen: number, token?: string): void {
    const ws = new this.c.options.WebSocket(this.c.href_("", "ws", {}, true));
    let renew: any;
    const all = (e: TetherError) => this.subs_.forEach((s) => s.error_(e));
    const refresh = async () => {
      try {
        const fresh = await this.c.token_();
        if (fresh && gen == this.gen_) this.send_({ type: "auth", token: fresh });
      } catch (e: any) {
        all(e);
      }
    };
    this.conn_ = { close: () => (clearTimeout(renew), ws.close(1000)) };
    ws.onopen = () => {
      if (gen != this.gen_) return;
      this.sock_ = ws;
      this.openedAt_ = Date.now();
      if (token) this.send_({ type: "auth", token });
      for (const topic of this.topics_().keys()) this.subscribe_(topic);
    };
    ws.onmessage = (m: { data: unknown }) => {
      if (gen != this.gen_) return;
      let msg;
      try {
        msg = parseWsMessage(String(m.data));
      } catch {
        return all(new TetherError("protocol", "not JSON", undefined, "ws"));
      }
      const k = msg.kind;
      const subs = this.topics_().get(msg.topic!) || [];
      switch (k) {
        case "event": {
          const e = this.whole_(msg.event!);
          return e && this.route_(k, msg.topic!, e);
        }
        case "gap":
        case "presence":
          return this.route_(k, msg.topic!, msg[k]);
        case "subscribed":
        case "refused":
        case "unsubscribed":
          return this.route_(k, msg.topic!, msg);
        case "auth-ok":
          // Refresh in place (the hub takes another auth message at any
          // time) after two thirds of the token's life, or when warned.
          clearTimeout(renew);
          if (msg.expires_in != null) renew = setTimeout(refresh, Math.max(1, (msg.expires_in * 2) / 3) * 1000);
          return this.works_();
        case "auth-expiring":
          return refresh();
        case "rpc-result":
        case "rpc-error":
          return this.calls_.get(msg.id)?.(msg);
        case "published":
        case "error": {
          // A publish's answer names its key, or at least its topic.
          const p = this.pending_.get(msg.key) || [...this.pending_.values()].find((q) => q[0] == msg.topic);
          const e = new TetherError("refused", msg.error, undefined, "ws");
          return p ? p[1](k == "error" ? e : msg) : msg.topic ? subs.forEach((s) => s.error_(e)) : all(e);
        }
      }
    };
    ws.onclose = (c: { code: number; reason: string }) => {
      const e =
        c.code == 1000 || c.code == 1001 || c.code == 1012
          ? undefined
          : new TetherError(c.code == 1008 ? (/token|auth/.test(c.reason) ? "auth" : "policy") : "network", `WebSocket closed ${c.code} ${c.reason || ""}`.trim(), c.code);
      this.ended_(gen, e);
    };
  }

  private async sse(gen: number, token?: string): Promise<void> {
    const topics = [...this.topics_().keys()];
    const subs = [...this.subs_];
    // EventSource cannot send headers: a token goes as single-use tickets, one per topic.
    const ticket =
      token && (await Promise.all(topics.map(async (topic) => (await (await this.c.request_("POST", "", "tickets", { topic }, token)).json()).ticket)));
    if (gen != this.gen_) return;
    const es = new this.c.options.EventSource(
      this.c.href_("", "events", {
        topic: topics,
        lastEventId: this.since_(topics),
        ticket,
        presence: subs.some((s) => s.o.presence) ? "1" : undefined,
        delta: subs.some((s) => s.o.delta) ? "1" : undefined,
      }),
      { withCredentials: !!this.c.options.withCredentials },
    );
    this.conn_ = es;
    let expired = false;
    const on = (type: string, kind = type) =>
      es.addEventListener(type, (e: { data: string; lastEventId: string }) => {
        if (gen != this.gen_) return;
        const m = JSON.parse(e.data);
        const event = kind == "event" && this.whole_(toEvent(m));
        // A delta that did not apply: the stream reconnects, from before it.
        if (kind == "event" && !event) return;
        // The id of a multi-topic stream is a cursor: every topic's position.
        if (e.lastEventId?.[0] == "~") this.cursor_ = [topics.join("\n"), e.lastEventId];
        this.route_(kind, m.topic, event || (kind == "presence" ? { event: type, member: m.member } : m));
      });
    for (const type of new Set(["message", ...subs.flatMap((s) => s.o.types || [])])) on(type, "event");
    on("gap");
    on("refused");
    on("join", "presence");
    on("leave", "presence");
    es.addEventListener("auth-expired", () => (expired = true));
    es.onopen = () => {
      if (gen != this.gen_) return;
      this.openedAt_ ||= Date.now();
      this.subs_.forEach((s) => s.subscribed());
    };
    es.onerror = () => {
      // The browser would reconnect by itself (with the last cursor, which
      // is right), but with a used ticket: this client reconnects instead,
      // from the same cursor.
      es.close();
      this.ended_(gen, new TetherError(expired ? "auth" : "network", expired ? "token expired" : "stream failed", undefined, "sse"));
    };
  }

  private async poll(gen: number, token?: string): Promise<void> {
    const abort = new AbortController();
    this.conn_ = { close: () => abort.abort() };
    // The first poll answers at once: the transport works (or not) now.
    let timeout = "0";
    for (;;) {
      const topics = [...this.topics_().keys()];
      let a;
      try {
        a = parsePoll(
          await (await this.c.request_("GET", "", "poll", { topic: topics, since: this.since_(topics), timeout }, token, { signal: abort.signal })).json(),
        );
      } catch (e: any) {
        if (gen != this.gen_) return;
        throw e;
      }
      if (gen != this.gen_) return;
      for (const r of a.refused) this.route_("refused", r.topic, r);
      this.works_();
      this.subs_.forEach((s) => s.subscribed());
      for (const gap of a.gaps) this.route_("gap", gap.topic, gap);
      for (const e of a.events) this.route_("event", e.topic, e);
      if (gen != this.gen_) return;
      this.cursor_ = [topics.join("\n"), a.next];
      token = await this.c.token_();
      timeout = String(this.c.options.pollTimeout ?? 25);
    }
  }
}
