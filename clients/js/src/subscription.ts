// One topic's subscription: its own position, dedupe, gaps, state and
// fallback between transports; the connection it rides on is its client's
// one for that transport (link.ts), shared with the client's other
// subscriptions.

import { backoffDelay } from "./backoff.js";
import { compareIds, isId } from "./ids.js";
import type { Tether } from "./index.js";
import type { Link } from "./link.js";
import { TRANSPORTS, TetherError, type State, type SubscribeOptions, type TransportName } from "./types.js";
import { parsePoll, type Gap, type PresenceChange, type Refusal, type TetherEvent } from "./wire.js";

/** The hub's topic names: 1-128 of `A-Z a-z 0-9 . _ : -`, not `.` or `..`. */
const TOPIC = /^(?!\.\.?$)[\w.:-]{1,128}$/;

/**
 * The transports of `order` that this environment can open: `ws` needs a
 * WebSocket constructor, `sse` an EventSource; `poll` needs only fetch.
 */
export function availableTransports(order: readonly TransportName[], env: { WebSocket?: unknown; EventSource?: unknown }): TransportName[] {
  return order.filter((t) => (t == "ws" ? env.WebSocket : t == "sse" ? env.EventSource : true));
}

/** One topic's subscription: reconnects, resumes and falls back by itself until closed. */
export class Subscription<T = string> {
  /** The subscription's state. */
  state: State = "connecting";
  /** The transport of the current (or last) connection. */
  transport: TransportName | null = null;
  /** The id of the last event delivered (or where a gap left it): where the next connection resumes. */
  lastId?: string;
  private link_?: Link;
  private order_: TransportName[];
  private ti_ = 0; // the current transport's index in `order`
  private fails_ = 0; // failed connections in a row on it
  private attempt_ = 0; // refusals in a row, for the backoff
  private proven_ = new Set<TransportName>();
  private timer_: any;
  private told_ = ""; // the state and transport onState heard of last

  constructor(
    private c: Tether,
    readonly topic: string,
    /** @internal */ readonly o: SubscribeOptions<T>,
  ) {
    const co = c.options;
    this.order_ = availableTransports(o.transports || co.transports || TRANSPORTS, co);
    if (o.since != null && !isId(o.since)) throw new TypeError(`since: not an event id: ${o.since}`);
    this.lastId = o.since;
    // A bad name would make the hub refuse the whole multi-topic request it is in.
    Promise.resolve().then(() => (TOPIC.test(topic) ? this.attach_() : this.fatal_(new TetherError("http", `400 invalid topic name: ${topic}`, 400))));
  }

  /** Stops: nothing more is delivered; the connection goes on for the client's other subscriptions. */
  close(): void {
    if (this.state == "closed") return;
    clearTimeout(this.timer_);
    this.link_?.remove_(this);
    this.c.forget_(this);
    this.setState_("closed");
  }

  /** Joins the client's connection for its current transport. */
  private attach_(): void {
    const t = this.order_[this.ti_];
    if (this.state == "closed") return;
    if (!t) return this.fatal_(new TetherError("network", "no transport"));
    this.transport = t;
    (this.link_ = this.c.link_(t)).add_(this);
  }

  /**
   * @internal Without an id to resume from, asks the topic's head first (a
   * long poll that answers at once), so that a reconnect misses nothing
   * even before an event came. A topic whose namespace replays its latest
   * event (`latest=on`) answers with that event: delivered here, first.
   * Refused (long polls blocked on the way, say), it starts from whenever
   * its connection opens and asks again at the next; a bad topic (400)
   * ends it.
   */
  async head_(token?: string): Promise<void> {
    if (this.lastId == null)
      try {
        const a = parsePoll(await (await this.c.request_("GET", this.topic, "/poll", { timeout: "0" }, token)).json());
        a.events.forEach((e) => this.event(e, 1));
        this.lastId ??= a.next;
      } catch (e: any) {
        if (e.status == 400) this.fatal_(e);
        else if (!e.status) throw e;
      }
  }

  /** @internal */
  setState_(state: State): void {
    this.state = state;
    if (this.told_ == state + this.transport) return;
    this.told_ = state + this.transport;
    this.o.onState?.(state, this.transport);
  }

  /** @internal */
  error_(e: TetherError): void {
    this.o.onError?.(e);
  }

  /** @internal */
  fatal_(e: TetherError): void {
    this.error_(e);
    this.close();
  }

  /** @internal Its connection (on transport `t`) is being made, or it waits for one. */
  connecting_(t = this.transport): void {
    this.transport = t;
    this.setState_(this.proven_.size ? "resuming" : "connecting");
  }

  /** @internal Its connection works on transport `t`. */
  works_(t: TransportName): void {
    this.proven_.add(t);
    this.fails_ = 0;
  }

  /** @internal The hub took the subscription (or its connection is open). */
  subscribed(): void {
    this.attempt_ = 0;
    this.setState_("open");
  }

  /** @internal Its connection ended (`good`: after it worked), with `e` if it failed. */
  ended_(good: boolean, e?: TetherError): void {
    if (e) {
      // A bad topic or a route that does not exist will not get better.
      if (e.status == 400 || e.status == 404 || e.status == 405) return this.fatal_(e);
      this.error_(e);
    }
    const t = this.transport!;
    if (!good && ++this.fails_ >= (this.proven_.has(t) ? 8 : this.c.options.maxFailures || 2) && this.order_.length > 1) {
      this.ti_ = (this.ti_ + 1) % this.order_.length;
      this.fails_ = 0;
      this.link_!.remove_(this);
      this.attach_();
    }
    this.connecting_();
  }

  /** @internal The hub did not take the subscription: its own error; asked again after a backoff (a bad topic, 400, ends it). */
  refused(r: Refusal): void {
    const s = r.status;
    const e = new TetherError(s == 401 ? "auth" : s == 403 ? "forbidden" : "http", `${s} ${r.error}`, s, this.transport!);
    if (s == 400) return this.fatal_(e);
    this.error_(e);
    this.link_!.remove_(this);
    this.connecting_();
    this.timer_ = setTimeout(() => this.attach_(), backoffDelay(this.attempt_++, this.c.options.backoff));
  }

  /** @internal The hub ended it (the server API, a token that no longer grants it); without a reason, the answer to an unsubscribe. */
  unsubscribed(m: { reason?: string }): void {
    if (m.reason) this.fatal_(new TetherError("policy", m.reason, undefined, "ws"));
  }

  /** @internal `early`: before its connection opened (the head's answer), which is not open yet. */
  event(e: TetherEvent | null, early?: 1): void {
    if (!e) return;
    // Ids only grow within a topic: anything at or before the last one
    // was delivered already (a replay overlapping what came live).
    if (isId(e.id)) {
      if (isId(this.lastId) && compareIds(e.id, this.lastId) <= 0) return;
      this.lastId = e.id;
    }
    if (!early) this.subscribed();
    const d = this.o.decode;
    this.o.onEvent?.(d ? { ...e, data: d(e.data) } : (e as any));
  }

  /** @internal */
  gap(gap: Gap): void {
    // The gap of the topic's subscription on the connection, which asked
    // from its subscriptions' earliest position: one already past that had
    // what it missed.
    if (isId(this.lastId) && isId(gap.requested) && compareIds(this.lastId, gap.requested) > 0) return;
    // Continuity is broken: the hub's resume point is where we are now.
    this.lastId = gap.resume;
    this.subscribed();
    this.o.onGap?.(gap);
  }

  /** @internal */
  presence(change: PresenceChange): void {
    if (this.o.presence) this.o.onPresence?.(change);
  }
}
