// Many topics on one connection (docs/src/design/multiplexing.md), in
// headless Chromium against a real `tether serve` through the harness's
// proxy: the client's 12 subscriptions over one WebSocket, one event
// stream, one long poll; and a page with no SDK at all, one native
// EventSource on 12 topics, resuming every topic exactly across a restart
// of a durable server by the browser's own reconnect (its Last-Event-ID
// is the stream's cursor); a delta topic and a latest-value topic over a
// WebSocket and an event stream. Needs a server that serves `/ws`,
// `/events` and `/poll` multiplexed. By hand:
//
//   TETHER_BIN=target/release/tether node --test clients/js/test/multiplex.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  TEST_TIMEOUT, WAIT, current, launch, publishMany, publishOnce, servers, startProxy, startServer, stopServer, waitFor,
} from './harness.mjs';

const TOPICS = Array.from({ length: 12 }, (_, i) => `mux.${i}`);

const PAGE = `<!doctype html><meta charset="utf-8"><title>tether multiplexing test</title>
<script type="module">
import { Tether } from "/__test/tether-client.js";
window.recs = {};
// One client with a subscription per topic, each recorded by topic.
// With \`delta\`, it asks for deltas, and counts those its connections bring.
window.client = (name, topics, { transports, delta } = {}) => {
  const rec = { events: {}, gaps: [], errors: [], states: {}, deltas: 0 };
  const count = (e) => { if (String(e.data).includes('"delta":"')) rec.deltas++; };
  class CountingWebSocket extends WebSocket {
    constructor(url) { super(url); this.addEventListener("message", count); }
  }
  class CountingEventSource extends EventSource {
    addEventListener(type, f) { super.addEventListener(type, (e) => { count(e); f(e); }); }
  }
  rec.client = new Tether(location.origin, { transports, backoff: { initial: 200, max: 2000 }, WebSocket: CountingWebSocket, EventSource: CountingEventSource });
  rec.subs = topics.map((topic) => rec.client.subscribe(topic, {
    delta,
    onEvent: (e) => (rec.events[topic] ||= []).push(e.id + " " + e.data),
    onGap: (g) => rec.gaps.push(g),
    onState: (s, t) => (rec.states[topic] ||= []).push(s + "/" + t),
    onError: (e) => rec.errors.push({ topic, reason: e.reason, message: e.message, status: e.status, transport: e.transport }),
  }));
  recs[name] = rec;
};
// No SDK: one EventSource on every topic, as a page would write it.
window.native = (name, topics) => {
  const rec = { events: {}, ids: [], opens: 0, errors: 0 };
  rec.es = new EventSource("/events?" + topics.map((t) => "topic=" + t).join("&"));
  rec.es.onopen = () => rec.opens++;
  rec.es.onerror = () => rec.errors++;
  rec.es.onmessage = (m) => {
    const e = JSON.parse(m.data);
    (rec.events[e.topic] ||= []).push(e.id + " " + e.data);
    rec.ids.push(m.lastEventId);
  };
  recs[name] = rec;
};
window.look = (name) => {
  const r = recs[name];
  return {
    events: r.events, gaps: r.gaps, errors: r.errors, opens: r.opens, ids: r.ids, readyState: r.es?.readyState, deltas: r.deltas,
    subs: r.subs?.map((s) => ({ topic: s.topic, state: s.state, transport: s.transport })),
  };
};
window.ready = true;
</script>`;

let server;
let proxy;
let browser;
let page;
let pageErrors = [];

before(async () => {
  server = current.server = await startServer();
  proxy = await startProxy(server.port, PAGE);
  ({ browser, page, pageErrors } = await launch(proxy));
});

after(async () => {
  await page?.evaluate(() => Object.values(window.recs).forEach((r) => (r.client ? r.client.close() : r.es.close()))).catch(() => {});
  if (browser) await browser.close();
  if (proxy) { proxy.cut(); proxy.server.close(); }
  for (const s of [...servers]) await stopServer(s);
});

const look = (name) => page.evaluate((n) => window.look(n), name);

/** Publishes `rounds` events to every topic, round after round (`during(i)` before each publish); each topic's ids, in order. */
async function publishAll(topics, rounds, during = () => {}) {
  const ids = Object.fromEntries(topics.map((t) => [t, []]));
  let i = 0;
  for (let round = 0; round < rounds; round++) {
    for (const t of topics) {
      await during(i++);
      ids[t].push(...await publishMany(t, 1, 0));
    }
  }
  return ids;
}

/** Waits until `name` has every topic's last event; then checks every topic's events exactly: once, in order, nothing else. */
async function exactly(name, expected) {
  await waitFor(`${name}: every topic's last event`, async () => {
    const r = await look(name);
    return Object.entries(expected).every(([t, ids]) => r.events[t]?.includes(ids.at(-1)));
  }).catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await look(name)).slice(0, 3000)}\n${server.log.slice(-2000)}`);
  });
  await sleep(300); // anything after the last would be a duplicate
  const r = await look(name);
  for (const [t, ids] of Object.entries(expected)) assert.deepEqual(r.events[t], ids, `${name}, ${t}: every event once, in order`);
  return r;
}

/** What the proxy saw since `from`, counted by request line. */
const seenSince = (from) => proxy.seen.slice(from).reduce((m, s) => ((m[s] = (m[s] || 0) + 1), m), {});

test('12 topics over one WebSocket: one connection, every topic exact, across a cut', { timeout: TEST_TIMEOUT }, async () => {
  const from = proxy.seen.length;
  await page.evaluate((t) => window.client('ws12', t), TOPICS);
  await waitFor('12 subscriptions open', async () => (await look('ws12')).subs.every((s) => s.state === 'open'));
  const ids = await publishAll(TOPICS, 6, (i) => {
    if (i === 30) proxy.cut();
  });
  const r = await exactly('ws12', ids);
  assert.deepEqual(r.errors.filter((e) => e.reason !== 'network'), [], JSON.stringify(r.errors));
  assert.ok(r.subs.every((s) => s.transport === 'ws'));
  const seen = seenSince(from);
  assert.equal(seen['GET /ws (upgrade)'], 2, `one WebSocket, and one after the cut: ${JSON.stringify(seen)}`);
  assert.equal(seen['GET /events'], undefined);
  await page.evaluate(() => window.recs.ws12.client.close());
});

test('12 topics, one native EventSource, no SDK: a durable server restarts mid-stream, every topic exact', { timeout: TEST_TIMEOUT }, async () => {
  const from = proxy.seen.length;
  await page.evaluate((t) => window.native('native', t), TOPICS);
  await waitFor('the stream to open', async () => (await look('native')).opens === 1);
  const ids = await publishAll(TOPICS, 5, async (i) => {
    if (i !== 25) return;
    const old = server;
    const how = await stopServer(old);
    assert.equal(how.code, 0, `exit after SIGTERM: ${JSON.stringify(how)}\n${old.log}`);
    server = current.server = await startServer();
    proxy.upstream = server.port;
  });
  const r = await exactly('native', ids);
  assert.ok(r.opens >= 2, `the browser reconnected by itself: ${r.opens} opens`);
  assert.equal(r.readyState, 1, 'open');
  // Every id is a cursor: every topic's position at once.
  assert.ok(r.ids.every((id) => id.startsWith('~')), JSON.stringify(r.ids.slice(0, 3)));
  assert.ok((seenSince(from)['GET /events'] || 0) >= 2);
  await page.evaluate(() => window.recs.native.es.close());
});

test('WebSocket refused: 12 topics over one event stream; event streams refused too: over one long poll; each exact', { timeout: TEST_TIMEOUT }, async () => {
  try {
    proxy.blockWs = true;
    let from = proxy.seen.length;
    await page.evaluate((t) => window.client('sse12', t), TOPICS);
    await waitFor('12 subscriptions on EventSource', async () => (await look('sse12')).subs.every((s) => s.state === 'open' && s.transport === 'sse'));
    const a = await publishAll(TOPICS, 3);
    await exactly('sse12', a);
    const seen = seenSince(from);
    assert.equal(seen['GET /events'], 1, `one event stream for 12 topics: ${JSON.stringify(seen)}`);
    await page.evaluate(() => window.recs.sse12.client.close());

    proxy.blockSse = true;
    from = proxy.seen.length;
    await page.evaluate((t) => window.client('poll12', t), TOPICS);
    await waitFor('12 subscriptions polling', async () => (await look('poll12')).subs.every((s) => s.state === 'open' && s.transport === 'poll'), WAIT);
    const b = await publishAll(TOPICS, 3);
    await exactly('poll12', b);
    // One poll at a time carries every topic: never more polls than answers.
    const polls = proxy.seen.slice(from).filter((s) => s === 'GET /poll').length;
    assert.ok(polls >= 1 && polls <= 3 * TOPICS.length + 2, `${polls} polls for ${3 * TOPICS.length} events`);
    await page.evaluate(() => window.recs.poll12.client.close());
  } finally {
    proxy.blockWs = proxy.blockSse = false;
  }
});

test('a delta topic followed over WebSocket and an event stream: the same state as whole events, across a cut', { timeout: TEST_TIMEOUT }, async () => {
  const topic = 'state.pump';
  // A device's state, some 2 KB of JSON, a few fields changing each time.
  const state = (n) => JSON.stringify({
    device: 'pump-7', seq: n, temperature: 20.5 + n / 10, status: n % 2 ? 'warm' : 'ok',
    readings: Array.from({ length: 24 }, (_, i) => ({ sensor: `pressure-${i}`, unit: 'kPa', value: i === n % 24 ? 100 + n : 100, ok: true })),
  });
  await page.evaluate((t) => {
    window.client('delta-ws', [t], { transports: ['ws'], delta: true });
    window.client('delta-sse', [t], { transports: ['sse'], delta: true });
    window.client('whole', [t], { transports: ['ws'] });
  }, topic);
  await waitFor('the three subscriptions open', async () =>
    (await Promise.all(['delta-ws', 'delta-sse', 'whole'].map(look))).every((r) => r.subs[0].state === 'open'));
  const published = [];
  const run = Date.now();
  let before;
  for (let n = 1; n <= 12; n++) {
    // Cut every connection halfway: each resumes from its last event, whole, then deltas again.
    if (n === 7) {
      await exactly('delta-ws', { [topic]: published });
      await exactly('delta-sse', { [topic]: published });
      before = { ws: (await look('delta-ws')).deltas, sse: (await look('delta-sse')).deltas };
      assert.deepEqual(before, { ws: 5, sse: 5 }, 'the first event whole, the next five deltas');
      proxy.cut();
    }
    const data = state(n);
    published.push(`${await publishOnce(topic, data, `state-${run}-${n}`)} ${data}`);
    await sleep(50);
  }
  const expected = { [topic]: published };
  const [ws, sse, whole] = [await exactly('delta-ws', expected), await exactly('delta-sse', expected), await exactly('whole', expected)];
  // After the cut, deltas again once each had an event whole.
  assert.ok(ws.deltas > before.ws && sse.deltas > before.sse, `deltas: WebSocket ${ws.deltas}, event stream ${sse.deltas}`);
  assert.ok(ws.deltas < 11 && sse.deltas < 11, 'an event whole after the cut');
  assert.equal(whole.deltas, 0, 'not asked for: whole events');
  for (const r of [ws, sse, whole]) assert.deepEqual(r.gaps, []);
  await page.evaluate(() => ['delta-ws', 'delta-sse', 'whole'].forEach((n) => window.recs[n].client.close()));
});

test('a latest-value topic over WebSocket and an event stream: the current value at once, then every event, across a cut', { timeout: TEST_TIMEOUT }, async () => {
  const topic = 'now.score';
  const run = Date.now();
  const score = (n) => JSON.stringify({ home: n, away: 2, minute: 10 * n });
  // Published before anyone follows: a subscriber from nowhere is to get the last of them at once.
  const earlier = [];
  for (let n = 1; n <= 3; n++) earlier.push(`${await publishOnce(topic, score(n), `score-${run}-${n}`)} ${score(n)}`);
  await page.evaluate((t) => {
    window.client('latest-ws', [t], { transports: ['ws'] });
    window.client('latest-sse', [t], { transports: ['sse'] });
  }, topic);
  await exactly('latest-ws', { [topic]: earlier.slice(-1) });
  await exactly('latest-sse', { [topic]: earlier.slice(-1) });
  const published = earlier.slice(-1);
  for (let n = 4; n <= 9; n++) {
    // Cut both connections halfway: each resumes from its last event, not from the latest again.
    if (n === 7) proxy.cut();
    published.push(`${await publishOnce(topic, score(n), `score-${run}-${n}`)} ${score(n)}`);
    await sleep(50);
  }
  const expected = { [topic]: published };
  const [ws, sse] = [await exactly('latest-ws', expected), await exactly('latest-sse', expected)];
  assert.deepEqual(ws.events, sse.events, 'the same state over both transports');
  for (const r of [ws, sse]) assert.deepEqual(r.gaps, []);
  await page.evaluate(() => ['latest-ws', 'latest-sse'].forEach((n) => window.recs[n].client.close()));
});

test('the page threw no script errors', () => {
  assert.deepEqual(pageErrors, []);
});
