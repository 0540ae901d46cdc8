// Many topics on one connection, in headless Chromium, behind HAProxy:
// two `tether serve --app hub` nodes share their topics through Redis,
// HAProxy balances them round robin (no stickiness, conformance/proxy's
// configuration), and a page with no SDK follows 12 topics on one native
// EventSource. The node that serves the stream is killed (SIGKILL) while
// events are published to every topic; the browser reconnects by itself
// through HAProxy to the other node, sending back its last id, the
// stream's cursor: every topic's events must arrive exactly once and in
// order. Then the same with the browser client over one WebSocket.
//
// Run by failover.sh, which starts Redis and HAProxy and passes:
//   TETHER_BIN, CHROMIUM, WORK, REDIS_URL, NODE_PORTS ("P1 P2"), PROXY_URL
// Prints "browser-failover: N passed, M failed" last.

import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

import { CHROMIUM_FLAGS, startServer, stopServer, tally } from './harness.mjs';

const { TETHER_BIN: BIN, CHROMIUM, WORK, REDIS_URL, NODE_PORTS, PROXY_URL } = process.env;
const TOKEN = 'failover-publish-token';
const TOPICS = Array.from({ length: 12 }, (_, i) => `fo.${i}`);
const WAIT = 20_000;

const { check, summary } = tally('browser-failover');

/** The page's script, added to a document of HAProxy's origin (its
 * /healthz): the page is that origin's, as one the hub's users serve
 * beside it would be. (A route that fulfils a page from the test would
 * put Chromium's requests under interception, which WebSockets do not
 * get through.) */
const SCRIPT = `
window.recs = {};
window.native = (name, topics) => {
  const rec = { events: {}, opens: 0, errors: 0, ids: [] };
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
window.client = async (name, topics) => {
  const { Tether } = await import("/tether-client.js");
  const rec = { events: {}, gaps: [], errors: [], open: 0 };
  rec.client = new Tether(location.origin, { transports: ["ws"], backoff: { initial: 200, max: 1000 } });
  rec.subs = topics.map((topic) => rec.client.subscribe(topic, {
    onEvent: (e) => (rec.events[topic] ||= []).push(e.id + " " + e.data),
    onGap: (g) => rec.gaps.push(g),
    onError: (e) => rec.errors.push(e.reason + ": " + e.message),
  }));
  recs[name] = rec;
};
window.look = (name) => {
  const r = recs[name];
  return {
    events: r.events, opens: r.opens, errors: r.errors, gaps: r.gaps, ids: r.ids?.slice(-3),
    states: r.subs?.map((s) => s.state + "/" + s.transport),
  };
};
`;

/** One HTTP request: { status, body }. */
function http(url, { method = 'GET', headers = {}, body = '' } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: { Connection: 'close', ...headers } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Publishes `data` to `topic` through HAProxy with a publish key, retried
 * until a node takes it (the key makes a retry of one that did land a
 * duplicate the hub recognises): its id. */
async function publish(topic, data) {
  let last = '';
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      const answer = await http(`${PROXY_URL}/topics/${topic}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, 'Tether-Publish-Id': `${topic}-${data}` },
        body: data,
      });
      if (answer.status === 200) return JSON.parse(answer.body).id;
      last = `${answer.status} ${answer.body}`;
    } catch (e) {
      last = String(e);
    }
    await sleep(100);
  }
  throw new Error(`publish ${topic} ${data}: ${last}`);
}

/** A node's tether_hub_subscribers{transport=...}: 0 for one that is down. */
async function subscribers(node, transport) {
  if (node.proc.exitCode !== null || node.proc.signalCode !== null) return 0;
  try {
    const { body } = await http(`http://127.0.0.1:${node.port}/metrics`);
    const found = new RegExp(`^tether_hub_subscribers\\{transport="${transport}"\\} (\\d+)$`, 'm').exec(body);
    return found ? Number(found[1]) : 0;
  } catch {
    return 0;
  }
}

async function until(what, condition, wait = WAIT) {
  const end = Date.now() + wait;
  while (Date.now() < end) {
    if (await condition()) return true;
    await sleep(100);
  }
  throw new Error(`waited ${wait / 1000} s for ${what}`);
}

const ports = NODE_PORTS.split(' ').map(Number);
async function startNode(port) {
  const server = await startServer({
    bin: BIN,
    work: WORK,
    args: ['--app', 'hub', '--memory', '--threads', '2', '--addr', '127.0.0.1', '--port', String(port),
      '--redis', REDIS_URL, '--publish-token', TOKEN, '--sse-heartbeat', '1', '--ping-interval', '1',
      '--log-level', 'warn'],
    wait: [/tether listening on http:\/\/127\.0\.0\.1:\d+\//],
  });
  return { ...server, port };
}

const nodes = [];
let browser;
try {
  for (const port of ports) nodes.push(await startNode(port));
  // HAProxy takes both once their /readyz answers (its health check).
  await until('HAProxy to reach a node', async () => (await http(`${PROXY_URL}/healthz`).catch(() => ({}))).status === 200);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  const page = await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${PROXY_URL}/healthz`);
  await page.addScriptTag({ content: SCRIPT, type: 'module' });
  await until('the page\'s script', () => page.evaluate(() => typeof window.look === 'function'));
  const look = (name) => page.evaluate((n) => window.look(n), name);

  /** Kills the node serving the one subscriber of `transport` while every
   * topic is published to; the subscriber `name` must then have every
   * topic's events exactly, in order. */
  async function failover(name, transport) {
    let victim;
    await until(`the ${transport} subscriber on one node`, async () => {
      const counts = await Promise.all(nodes.map((n) => subscribers(n, transport)));
      victim = nodes[counts.indexOf(1)];
      return counts.filter((c) => c === 1).length === 1 && counts.reduce((a, b) => a + b) === 1;
    });
    const published = Object.fromEntries(TOPICS.map((t) => [t, []]));
    for (let round = 0; round < 6; round++) {
      if (round === 2) victim.proc.kill('SIGKILL');
      for (const topic of TOPICS) {
        const data = `${name}-${round}`;
        published[topic].push(`${await publish(topic, data)} ${data}`);
      }
    }
    await until(`${name}: every topic's last event`, async () => {
      const r = await look(name);
      return TOPICS.every((t) => r.events[t]?.includes(published[t].at(-1)));
    }).catch(async (e) => {
      throw new Error(`${e.message}: ${JSON.stringify(await look(name)).slice(0, 2000)}`);
    });
    await sleep(500); // anything after the last would be a duplicate
    const r = await look(name);
    const wrong = TOPICS.filter((t) => JSON.stringify(r.events[t]) !== JSON.stringify(published[t]));
    const index = nodes.indexOf(victim);
    nodes[index] = await startNode(victim.port);
    return { r, wrong, published };
  }

  await page.evaluate((t) => window.native('native', t), TOPICS);
  await until('the event stream to open', async () => (await look('native')).opens === 1);
  const native = await failover('native', 'sse');
  check('12 topics on one native EventSource: its node killed behind HAProxy, every topic exactly once, in order',
    native.wrong.length === 0 && native.r.opens >= 2,
    `opens ${native.r.opens}; wrong: ${native.wrong.map((t) => `${t}: ${JSON.stringify(native.r.events[t])} vs ${JSON.stringify(native.published[t])}`).join('; ')}`);
  check('the browser resumed with the stream\'s cursor (every id a cursor)',
    native.r.ids.every((id) => id.startsWith('~')), JSON.stringify(native.r.ids));
  await page.evaluate(() => window.recs.native.es.close());

  await until('HAProxy to take the restarted node back', async () => (await http(`${PROXY_URL}/healthz`).catch(() => ({}))).status === 200);
  await page.evaluate((t) => window.client('ws', t), TOPICS);
  await until('12 subscriptions open on one WebSocket', async () => (await look('ws')).states.every((s) => s === 'open/ws'))
    .catch(async (e) => {
      throw new Error(`${e.message}: ${JSON.stringify(await look('ws')).slice(0, 1500)}`);
    });
  const ws = await failover('ws', 'websocket');
  check('12 topics on the browser client\'s one WebSocket: its node killed behind HAProxy, every topic exactly once, in order',
    ws.wrong.length === 0 && ws.r.gaps.length === 0,
    `gaps ${JSON.stringify(ws.r.gaps)}; wrong: ${ws.wrong.map((t) => `${t}: ${JSON.stringify(ws.r.events[t])} vs ${JSON.stringify(ws.published[t])}`).join('; ')}`);
  check('no script error on the page', pageErrors.length === 0, pageErrors.join(' | '));
} catch (e) {
  check('the failover runs to the end', false, `${e.stack || e}\n${nodes.map((n) => n.log()).join('\n').slice(-3000)}`);
} finally {
  if (browser) await browser.close();
  for (const node of nodes) await stopServer(node).catch(() => {});
  summary();
}
