// tether-client: subscribe to the tether hub's topics from a browser (or
// Node), over WebSocket, EventSource or long polling, resuming exactly
// where the last connection left off. A client carries all its
// subscriptions over one connection per transport. No runtime
// dependencies. Members whose names end in `_` are internal: the build
// shortens them (build.mjs).

import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { encodeCursor } from "./cursor.js";
import { applyDelta, applyTextDelta } from "./fossil.js";
import { compareIds, isId } from "./ids.js";
import { Link } from "./link.js";
import { availableTransports, Subscription } from "./subscription.js";
import {
  TetherError,
  TRANSPORTS,
  type Presence,
  type Published,
  type Reason,
  type State,
  type SubscribeOptions,
  type TetherOptions,
  type TransportName,
} from "./types.js";
import { parsePoll, parseWsMessage, toEvent, type Gap, type PresenceChange, type TetherEvent } from "./wire.js";

export { applyDelta, applyTextDelta, availableTransports, backoffDelay, compareIds, encodeCursor, isId, parsePoll, parseWsMessage, Subscription, TetherError, toEvent, TRANSPORTS };
export type { BackoffOptions, Gap, Presence, PresenceChange, Published, Reason, State, SubscribeOptions, TetherEvent, TetherOptions, TransportName };
export type { PollAnswer, Refusal, WsMessage } from "./wire.js";

const g: any = globalThis;

// Browsers (secure context or not) and Node 20 have crypto.getRandomValues.
function randomKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (x) => x.toString(16).padStart(2, "0")).join("");
}

/** A client of one tether server. */
export class Tether {
  readonly url: URL;
  readonly options: TetherOptions;
  private subs_ = new Set<Subscription<any>>();
  private links_: Record<string, Link> = {};
  private off_: () => void = () => {};

  /** `url`: the server (`https://push.example.com`, or a path on the page's own origin). */
  constructor(url: string | URL, options: TetherOptions = {}) {
    this.url = new URL(url, g.location?.href);
    this.url.pathname = this.url.pathname.replace(/\/?$/, "/");
    this.options = { WebSocket: g.WebSocket, EventSource: g.EventSource, ...options };
    // Browsers only: Node has no window events nor document.
    if (g.window?.addEventListener) {
      const each = (k: "wake" | "drop") => () => Object.values(this.links_).forEach((l) => l[k]());
      const wake = each("wake");
      const drop = each("drop");
      const seen = () => g.document?.visibilityState == "visible" && wake();
      addEventListener("online", wake);
      addEventListener("offline", drop);
      g.document?.addEventListener("visibilitychange", seen);
      this.off_ = () => {
        removeEventListener("online", wake);
        removeEventListener("offline", drop);
        g.document?.removeEventListener("visibilitychange", seen);
      };
    }
  }

  /**
   * Subscribes to `topic`; events come to `options.onEvent` in order, each
   * once. Every subscription of the client on one transport shares one
   * connection: one WebSocket to `/ws`, one EventSource, one long poll.
   */
  subscribe<T = string>(topic: string, options: SubscribeOptions<T> = {}): Subscription<T> {
    const sub = new Subscription<T>(this, topic, options);
    this.subs_.add(sub);
    return sub;
  }

  /**
   * Publishes `data` (a string as it is, anything else as JSON) to
   * `topic`. Over this client's open WebSocket if there is one (a publish
   * message, acknowledged), else with `POST /topics/NAME`; each publish
   * carries a key, so that a retry after a lost answer publishes once.
   */
  async publish(topic: string, data: unknown, options: { type?: string; key?: string; via?: "http" | "ws" } = {}): Promise<Published> {
    const text = typeof data == "string" ? data : JSON.stringify(data);
    const key = options.key || randomKey();
    const ws = this.links_.ws;
    if (options.via != "http" && ws?.sock_)
      try {
        return await ws.publish_(topic, text, options.type, key);
      } catch {
        // Not published on the socket (not allowed there, or cut): over HTTP, with the same key.
      }
    for (let attempt = 0; ; attempt++) {
      const q: Record<string, string> = {};
      if (options.type) q.event = options.type;
      try {
        return await (
          await this.request_("POST", topic, "", q, await this.token_(), {
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

  /**
   * Calls `method` of the application's backend (the hub's rpc hook) with
   * `data` (any JSON value): its result, which only this caller gets. Over
   * this client's open WebSocket if there is one, else `POST /rpc`.
   * Rejected with a TetherError: `rpc` (the backend refused, or could not
   * answer; `status` is the hub's code), `timeout` (no answer within
   * `options.timeout` ms, default 10 000), `network` (a call cut by a
   * disconnect is never sent again).
   */
  async rpc<T = unknown>(method: string, data?: unknown, options: { timeout?: number } = {}): Promise<T> {
    const ms = options.timeout ?? 10_000;
    const ws = this.links_.ws;
    if (ws?.sock_) return ws.rpc_(method, data, ms) as Promise<T>;
    try {
      const init = { body: JSON.stringify({ method, data }), headers: { "Content-Type": "application/json" }, signal: AbortSignal.timeout(ms) };
      const r = await this.request_("POST", "", "rpc", {}, await this.token_(), init, true);
      const m = await r.json().catch(() => ({}));
      if (r.ok) return m.data;
      throw new TetherError(r.status == 401 ? "auth" : "rpc", m.reason || `${r.status}`, r.status);
    } catch (e: any) {
      throw e?.name == "TimeoutError" ? new TetherError("timeout", `${method}: no answer`) : e;
    }
  }

  /** Who is subscribed to `topic`. */
  async presence(topic: string): Promise<Presence> {
    return (await this.request_("GET", topic, "/presence", {}, await this.token_())).json();
  }

  /** Closes every subscription and stops listening to the page's events. */
  close(): void {
    this.subs_.forEach((s) => s.close());
    this.off_();
  }

  /** @internal */
  forget_(sub: Subscription<any>): void {
    this.subs_.delete(sub);
  }

  /** @internal The client's connection on transport `t`. */
  link_(t: TransportName): Link {
    return (this.links_[t] ||= new Link(this, t));
  }

  /** @internal The token for the next connection, if any. */
  async token_(): Promise<string | undefined> {
    try {
      return (await this.options.getToken?.()) || undefined;
    } catch (e) {
      throw new TetherError("token", `getToken failed: ${e}`);
    }
  }

  /** @internal A URL under the server for `topic` (or `suffix` alone, such as `tickets`, when topic is ""); an array is a repeated parameter. */
  href_(topic: string, suffix: string, query: Record<string, string | string[] | undefined>, ws?: boolean): string {
    const u = new URL(topic ? `topics/${encodeURIComponent(topic)}${suffix}` : suffix, this.url);
    for (const k in query) for (const v of [query[k]].flat()) if (v != null) u.searchParams.append(k, v);
    if (ws) u.protocol = u.protocol.replace("http", "ws");
    return u.href;
  }

  /** @internal A request to the hub; a TetherError unless it answers 2xx (or `any`: whatever it answers). */
  async request_(
    method: string,
    topic: string,
    suffix: string,
    query: Record<string, string | string[] | undefined>,
    token?: string,
    init: RequestInit & { headers?: Record<string, string> } = {},
    any?: boolean,
  ): Promise<Response> {
    const headers = { ...init.headers, ...(token && { Authorization: `Bearer ${token}` }) };
    let r: Response;
    try {
      r = await (this.options.fetch || fetch)(this.href_(topic, suffix, query), {
        ...init,
        method,
        headers,
        credentials: this.options.withCredentials ? "include" : "same-origin",
        cache: "no-store",
      });
    } catch (e: any) {
      if (/Abort|Timeout/.test(e?.name)) throw e;
      throw new TetherError("network", `${method} ${suffix || topic}: ${e?.message || e}`);
    }
    if (r.ok || any) return r;
    const s = r.status;
    const why = (await r.text().catch(() => "")).trim();
    throw new TetherError(s == 401 ? "auth" : s == 403 ? "forbidden" : "http", `${s} ${why}`, s);
  }
}
