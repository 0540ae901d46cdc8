// The built client (dist/tether-client.min.js) in headless Chromium against
// a real `tether serve`, through a TCP proxy of the test's own that can cut
// every connection, refuse WebSocket upgrades and event streams, and serve
// the test page (so the page, the proxy and the hub share one origin).
// Run by run.sh beside this file; by hand:
//
//   TETHER_BIN=target/release/tether node --test clients/js/test/browser.test.mjs
//
// Environment: TETHER_BIN (required), CHROMIUM (default /usr/bin/chromium),
// TETHER_JS_WORK (a scratch directory; server pids go to its `pids` file).

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Tether, compareIds } from '../dist/index.js';
import {
  TEST_TIMEOUT, WAIT, current, launch, mint, publishBytes, publishMany, servers, startProxy, startServer, stopServer, waitFor,
} from './harness.mjs';

// ---------------------------------------------------------------------------
// The test page: one client per subscription, each recorded by name.

const PAGE = `<!doctype html><meta charset="utf-8"><title>tether-client test</title>
<script type="module">
import { Tether } from "/__test/tether-client.js";
window.recs = {};
// Every WebSocket the clients open, with what it was sent back and how it
// closed: for failure messages (a clean close is not an error the client
// reports).
window.sockets = [];
class RecordedWebSocket extends WebSocket {
  constructor(url) {
    super(url);
    const log = { path: new URL(url).pathname, got: [], closed: null };
    window.sockets.push(log);
    this.addEventListener("message", (m) => { if (log.got.length < 20) log.got.push(String(m.data).slice(0, 160)); });
    this.addEventListener("close", (c) => { log.closed = c.code + " " + c.reason; });
  }
}
// Subscribes, recording everything the subscription reports under \`name\`.
window.sub = (name, topic, { transports, ttl, since, maxFailures } = {}) => {
  const rec = { events: [], gaps: [], states: [], errors: [], tokens: 0 };
  const getToken = ttl ? async () => { rec.tokens += 1; return (await fetch("/__test/token?ttl=" + ttl)).text(); } : undefined;
  rec.client = new Tether(location.origin, { transports, getToken, maxFailures, backoff: { initial: 200, max: 2000 }, WebSocket: RecordedWebSocket });
  rec.sub = rec.client.subscribe(topic, {
    since,
    onEvent: (e) => rec.events.push(e.id + " " + (e.data instanceof Uint8Array ? "bytes:" + e.data.join(",") : e.data)),
    onGap: (g) => rec.gaps.push(g),
    onState: (s, t) => rec.states.push(s + "/" + t),
    onError: (e) => rec.errors.push({ reason: e.reason, message: e.message, status: e.status, transport: e.transport }),
  });
  recs[name] = rec;
};
window.look = (name) => {
  const r = recs[name];
  return { events: r.events, gaps: r.gaps, states: r.states, errors: r.errors, tokens: r.tokens, state: r.sub.state, transport: r.sub.transport };
};
window.socketsOf = () => window.sockets.filter((s) => s.path == "/ws");
window.ready = true;
</script>`;

let server;
let proxy;
let browser;
let page;
let pageErrors = [];
/** What the browser said on its console (a WebSocket it failed, say), for failure messages. */
let consoleLines = [];
const look = (name) => page.evaluate((n) => window.look(n), name);

async function subscribe(name, topic, options = {}) {
  await page.evaluate(([n, t, o]) => window.sub(n, t, o), [name, topic, options]);
  return waitFor(`${name} to open`, async () => { const r = await look(name); return r.state === 'open' && r; });
}

/** Waits until `name` has every event of `expected`; then checks it has them exactly: once, in order, nothing else. */
async function exactly(name, expected) {
  const last = expected.at(-1);
  await waitFor(`${name} to receive ${last}`, async () => (await look(name)).events.includes(last)).catch(async (e) => {
    const r = await look(name);
    throw new Error(`${e.message}: it has ${r.events.length} of ${expected.length}; ${JSON.stringify(r)}`);
  });
  await sleep(200); // anything after the last would be a duplicate
  const r = await look(name);
  assert.deepEqual(r.events, expected, `${name}: every event once, in order`);
  assert.deepEqual(r.gaps, [], `${name}: no gap`);
  // Within an epoch, the ids' counters are contiguous.
  const ids = r.events.map((e) => e.split(' ')[0].split('-').map(Number));
  for (let i = 1; i < ids.length; i++) {
    if (ids[i][0] === ids[i - 1][0]) assert.equal(ids[i][1], ids[i - 1][1] + 1, `${name}: contiguous ids`);
    else assert.ok(compareIds(r.events[i].split(' ')[0], r.events[i - 1].split(' ')[0]) > 0, 'a later epoch');
  }
  return r;
}

before(async () => {
  server = current.server = await startServer();
  proxy = await startProxy(server.port, PAGE);
  ({ browser, page, pageErrors, consoleLines } = await launch(proxy));
  console.log(`# chromium ${browser.browser()?.version()}, server ${server.url}, proxy ${proxy.url}`);
});

// Each test's subscriptions end with it: over HTTP/1.1 a browser keeps at
// most six connections to a host, and every long poll or event stream
// holds one (the page's own fetches would queue behind them).
afterEach(async () => {
  await page?.evaluate(() => Object.values(window.recs).forEach((r) => r.client.close())).catch(() => {});
});

after(async () => {
  if (browser) await browser.close();
  if (proxy) { proxy.cut(); proxy.server.close(); }
  for (const s of [...servers]) await stopServer(s);
});

// ---------------------------------------------------------------------------

for (const transport of ['ws', 'sse', 'poll']) {
  test(`receive and publish over ${transport} (forced), with a token`, { timeout: TEST_TIMEOUT }, async () => {
    const topic = `one.${transport}`;
    const before = proxy.seen.length;
    const opened = await subscribe(transport, topic, { transports: [transport], ttl: 600 });
    assert.equal(opened.transport, transport);
    const fromTest = await publishMany(topic, 5, 0);
    const fromPage = await page.evaluate(async (t) => {
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push(`${(await window.recs[t.name].client.publish(t.topic, `page#${i}`)).id} page#${i}`);
      return ids;
    }, { name: transport, topic });
    await exactly(transport, [...fromTest, ...fromPage]);
    const seen = proxy.seen.slice(before);
    // The client's one connection per transport: the multiplexed routes.
    const endpoint = { ws: 'GET /ws (upgrade)', sse: 'GET /events', poll: 'GET /poll' }[transport];
    assert.ok(seen.includes(endpoint), `${endpoint} in ${JSON.stringify(seen)}`);
    for (const other of ['GET /ws (upgrade)', 'GET /events']) {
      if (other !== endpoint) assert.ok(!seen.includes(other), `only ${transport}: ${JSON.stringify(seen)}`);
    }
    // Over WebSocket the page publishes on its socket; otherwise with POST.
    const posts = seen.filter((s) => s === `POST /topics/${topic}`).length;
    const r = await look(transport);
    assert.equal(posts, transport === 'ws' ? 0 : 5,
      JSON.stringify({
        seen, states: r.states, errors: r.errors, sockets: await page.evaluate(() => window.socketsOf()),
        console: consoleLines.slice(-10), server: server.log.slice(-2000),
      }));
    if (transport === 'sse') assert.ok(seen.includes('POST /tickets'), 'a ticket for the event stream');
    assert.deepEqual(r.errors, []);
    await page.evaluate((n) => window.recs[n].client.close(), transport);
    assert.equal((await look(transport)).state, 'closed');
  });
}

test('a binary event arrives as a Uint8Array, every byte value, over WebSocket, EventSource and long polling', { timeout: TEST_TIMEOUT }, async () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (const transport of ['ws', 'sse', 'poll']) {
    const name = `bin-${transport}`;
    await subscribe(name, `bin.${transport}`, { transports: [transport] });
    const id = await publishBytes(`bin.${transport}`, bytes);
    const r = await waitFor(`${transport}: the binary event`, async () => { const x = await look(name); return x.events.length && x; });
    assert.deepEqual(r.events, [`${id} bytes:${bytes.join(',')}`], transport);
    assert.deepEqual(r.errors, []);
  }
});

test('resuming from an id the hub does not know: the gap signal on each transport, then what it holds', { timeout: TEST_TIMEOUT }, async () => {
  for (const transport of ['ws', 'sse', 'poll']) {
    const topic = `gap.${transport}`;
    const held = await publishMany(topic, 3, 0);
    // An id of an epoch long gone: the hub cannot say what came after it.
    await subscribe(`gap-${transport}`, topic, { transports: [transport], since: '1-5' });
    const r = await waitFor(`${transport}: the events`, async () => { const x = await look(`gap-${transport}`); return x.events.length >= 3 && x; });
    assert.deepEqual(r.events, held, transport);
    assert.equal(r.gaps.length, 1, `${transport}: one gap: ${JSON.stringify(r.gaps)}`);
    const [gap] = r.gaps;
    assert.equal(gap.topic, topic);
    assert.equal(gap.requested, '1-5');
    assert.equal(gap.first, held[0].split(' ')[0]);
    assert.match(gap.resume, /^\d+-\d+$/);
    // After the gap, more comes as usual.
    const more = await publishMany(topic, 2, 0);
    await waitFor(`${transport}: the later events`, async () => (await look(`gap-${transport}`)).events.length >= 5);
    assert.deepEqual((await look(`gap-${transport}`)).events, [...held, ...more]);
  }
});

test('the server restarts mid-stream (--data-dir): nothing lost, nothing twice', { timeout: TEST_TIMEOUT }, async () => {
  await subscribe('restart', 'restart.a');
  const ids = await publishMany('restart.a', 60, 20, async (i) => {
    if (i !== 25) return;
    const old = server;
    const how = await stopServer(old);
    assert.equal(how.code, 0, `exit after SIGTERM: ${JSON.stringify(how)}\n${old.log}`);
    server = current.server = await startServer();
    proxy.upstream = server.port;
  });
  const r = await exactly('restart', ids);
  assert.ok(r.states.includes('resuming/ws'), JSON.stringify(r.states));
  assert.equal(r.transport, 'ws', 'WebSocket worked before: it stays');
  const epochs = new Set(r.events.map((e) => e.split('-')[0]));
  console.log(`# restart: ${r.events.length} events over ${epochs.size} epoch(s), states ${r.states.join(' ')}`);
});

for (const transport of ['ws', 'sse', 'poll']) {
  test(`connections cut at random points (${transport}): every event once`, { timeout: TEST_TIMEOUT }, async () => {
    const topic = `cut.${transport}`;
    await subscribe(`cut-${transport}`, topic, { transports: [transport] });
    let cuts = 0;
    let next = Date.now() + 100 + Math.random() * 400;
    const ids = await publishMany(topic, 80, 15, () => {
      if (Date.now() >= next) {
        proxy.cut();
        cuts += 1;
        next = Date.now() + 100 + Math.random() * 400;
      }
    });
    const r = await exactly(`cut-${transport}`, ids);
    assert.ok(cuts >= 2, `cut ${cuts} times`);
    assert.ok(r.states.filter((s) => s.startsWith('resuming')).length >= 1, JSON.stringify(r.states));
    console.log(`# ${transport}: ${cuts} cuts, ${r.states.filter((s) => s === `open/${transport}`).length} opens`);
  });
}

test('WebSocket refused at the proxy: EventSource; both refused: long polling; each exact', { timeout: TEST_TIMEOUT }, async () => {
  try {
    proxy.blockWs = true;
    const before = proxy.seen.length;
    const a = await subscribe('no-ws', 'fallback.a');
    assert.equal(a.transport, 'sse');
    assert.ok(proxy.seen.slice(before).includes('GET /ws (upgrade)'), 'WebSocket was tried first');
    const idsA = await publishMany('fallback.a', 20, 10);
    await exactly('no-ws', idsA);
    proxy.blockSse = true;
    const b = await subscribe('no-ws-no-sse', 'fallback.b');
    assert.equal(b.transport, 'poll');
    const idsB = await publishMany('fallback.b', 20, 10);
    await exactly('no-ws-no-sse', idsB);
    // The first subscription loses its event stream and goes on polling, exactly.
    proxy.cut();
    const more = await publishMany('fallback.a', 20, 20);
    const r = await exactly('no-ws', [...idsA, ...more]);
    assert.equal(r.transport, 'poll', JSON.stringify(r.states));
    assert.ok(r.errors.some((e) => e.transport === 'ws') && r.errors.some((e) => e.transport === 'sse'), JSON.stringify(r.errors));
  } finally {
    proxy.blockWs = proxy.blockSse = false;
  }
});

test('tokens that expire: refreshed in place on WebSocket, renewed on reconnect for EventSource and polls', { timeout: TEST_TIMEOUT }, async () => {
  // A private topic each, 6-second tokens (the hub warns a WebSocket a
  // third of the time left before expiry), no leeway.
  for (const t of ['ws', 'sse', 'poll']) await subscribe(`exp-${t}`, `priv.exp.${t}`, { transports: [t], ttl: 6 });
  const all = async (n, every) => Object.fromEntries(await Promise.all(['ws', 'sse', 'poll'].map(
    async (t) => [t, await publishMany(`priv.exp.${t}`, n, every)])));
  const first = await all(8, 150);
  await sleep(7500); // past every first token's expiry, nothing published
  const second = await all(8, 150);
  for (const t of ['ws', 'sse', 'poll']) {
    const r = await exactly(`exp-${t}`, [...first[t], ...second[t]]);
    assert.ok(r.tokens >= 2, `${t}: getToken called ${r.tokens} times`);
    const auth = r.errors.filter((e) => e.reason === 'auth');
    if (t === 'ws') {
      assert.deepEqual(r.errors, [], 'the WebSocket refreshed in place');
      assert.equal(r.states.filter((s) => s === 'open/ws').length, 1, `one connection: ${JSON.stringify(r.states)}`);
    } else {
      assert.ok(auth.length >= 1, `${t}: the expiry was seen: ${JSON.stringify(r.errors)}`);
      if (t === 'poll') assert.equal(auth[0].status, 401);
    }
    assert.equal(r.state, 'open');
  }
});

test('offline, then online again (context.setOffline): resumes and misses nothing', { timeout: TEST_TIMEOUT }, async () => {
  await subscribe('offline', 'offline.a');
  const before = await publishMany('offline.a', 5, 0);
  await exactly('offline', before);
  let during;
  await browser.setOffline(true);
  try {
    await waitFor('the subscription to notice', async () => (await look('offline')).state === 'resuming');
    assert.equal(await page.evaluate(() => navigator.onLine), false);
    during = await publishMany('offline.a', 10, 20);
    await sleep(500);
    assert.equal((await look('offline')).events.length, 5, 'nothing arrives while offline');
  } finally {
    await browser.setOffline(false);
  }
  const r = await exactly('offline', [...before, ...during]);
  assert.deepEqual(r.states.slice(-2), ['resuming/ws', 'open/ws']);
});

test('in Node (no EventSource; WebSocket only from Node 22): long polling or WebSocket, exact', { timeout: TEST_TIMEOUT }, async () => {
  const got = [];
  const client = new Tether(proxy.url, { getToken: () => mint(600) });
  const sub = client.subscribe('node.a', { onEvent: (e) => got.push(`${e.id} ${e.data}`) });
  await waitFor('open', () => sub.state === 'open');
  assert.equal(sub.transport, globalThis.WebSocket ? 'ws' : 'poll');
  const ids = await publishMany('node.a', 10, 5);
  const own = await client.publish('node.a', 'from node');
  await waitFor('every event', () => got.length >= 11);
  await sleep(200);
  assert.deepEqual(got, [...ids, `${own.id} from node`]);
  assert.deepEqual(await client.presence('node.a'), { topic: 'node.a', members: sub.transport === 'ws' ? ['tester'] : [], count: sub.transport === 'ws' ? 1 : 0 });
  client.close();
});

test('the page threw no script errors', () => {
  assert.deepEqual(pageErrors, []);
});
