// Headless Chromium against the admin page: `tether serve --app hub
// --metrics-listen 127.0.0.1:0 --metrics-token T --publish-token P`. The
// browser signs in with the token, the page goes live, Node applies load
// (event streams, WebSockets, an HTTP/2 session, long polls, publishes,
// refused publishes), and the numbers the page shows must move, its
// screenshots before and after must differ (the charts' pixels too), the
// Content-Security-Policy must be there and the console free of errors.
// Then the page acts (admin.actions.mjs): publish, broadcast, watch,
// browse, find a user, disconnect, revoke, and a forged request refused;
// and a subject's multiplexed socket subscribed to a topic and
// unsubscribed from it from the page (admin.subscribe.mjs).
// A second server, started without a metrics token, must show its page
// read-only and refuse every action (403); and neither answers a request
// naming a host that is not theirs (a DNS-rebinding page's: 421). A third,
// on a Redis it starts (admin.bus.mjs), must show a topic's last events
// read from the bus.
// Started by admin.sh beside this file (which provides Chromium,
// playwright-core and the binary).
//
// Environment:
//   TETHER_BIN  the tether binary (required)
//   CHROMIUM    the browser (default /usr/bin/chromium)
//   WORK        a scratch directory (required; server pids go to WORK/pids,
//               the screenshots to WORK or TETHER_SCREENSHOT_DIR)
//
// Prints "admin-page: N passed, M failed" last.

import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

import { checkActions, JWT_SECRET } from './admin.actions.mjs';
import { checkOnRedis } from './admin.bus.mjs';
import { checkServerSubscriptions } from './admin.subscribe.mjs';
import { CHROMIUM_FLAGS, startServer, stopServer, tally } from './harness.mjs';

const BIN = process.env.TETHER_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WORK = process.env.WORK;
if (!BIN || !WORK) throw new Error('TETHER_BIN and WORK must be set');
const SHOTS = process.env.TETHER_SCREENSHOT_DIR || WORK;

const METRICS_TOKEN = 'admin-page-metrics-token';
const PUBLISH_TOKEN = 'admin-page-publish-token';
const WAIT = 20_000;

const { check, summary } = tally('admin-page');

// ---------------------------------------------------------------------------
// The server

/** Starts the server (without a metrics token if `token` is null); resolves with its main and admin URLs once it listens. */
async function startHub(token = METRICS_TOKEN) {
  const secret = join(WORK, 'jwt.secret');
  writeFileSync(secret, JWT_SECRET);
  const server = await startServer({
    bin: BIN,
    work: WORK,
    args: ['--app', 'hub', '--memory', '--addr', '127.0.0.1', '--port', '0', '--threads', '2',
      '--metrics-listen', '127.0.0.1:0', ...(token ? ['--metrics-token', token] : []), '--publish-token', PUBLISH_TOKEN,
      '--jwt-secret-file', secret, '--private', 'room.*',
      // Info: the admin's actions are logged at that level.
      '--log-level', 'info'],
    wait: [/tether listening on (http:\/\/127\.0\.0\.1:\d+\/)/, /metrics on (http:\/\/127\.0\.0\.1:\d+\/)metrics/],
  });
  return { ...server, url: server.matches[0][1], admin: server.matches[1][1] };
}

/** One request on a connection of its own: resolves with status, headers and body. */
function fetchOnce(url, { method = 'GET', headers = {}, body = '' } = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: { Connection: 'close', ...headers } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------
// The load: subscribers over every transport, held open until closed

const held = [];

/** An event stream over HTTP/1.1; resolves once its head arrives. */
function sseSubscriber(server, topic) {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}topics/${topic}/events`, { agent: false, headers: { Accept: 'text/event-stream' } },
      (res) => {
        res.resume();
        held.push(() => req.destroy());
        resolve(res.statusCode);
      });
    req.on('error', reject);
    req.end();
  });
}

/** A WebSocket (the upgrade by hand; frames are read and dropped); resolves with the upgrade's status. */
function wsSubscriber(server, topic) {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}topics/${topic}/ws`, {
      agent: false,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': Buffer.from(`admin-page-${topic}`.padEnd(16, '.').slice(0, 16)).toString('base64') },
    });
    req.on('upgrade', (res, socket) => {
      socket.resume();
      held.push(() => socket.destroy());
      resolve(res.statusCode);
    });
    req.on('response', (res) => resolve(res.statusCode));
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 session (h2c, prior knowledge) with an event stream per topic; resolves with their statuses. */
async function h2Subscriber(server, topics) {
  const session = h2connect(server.url);
  session.on('error', () => {});
  held.push(() => session.destroy());
  return Promise.all(topics.map((topic) => new Promise((resolve, reject) => {
    const stream = session.request({ ':path': `/topics/${topic}/events`, accept: 'text/event-stream' });
    stream.on('response', (headers) => { stream.resume(); resolve(headers[':status']); });
    stream.on('error', reject);
  })));
}

/** A long poll that waits (its answer, whenever it comes, is dropped). */
function longPoll(server, topic) {
  const req = request(`${server.url}topics/${topic}/poll?timeout=60`, { agent: false }, (res) => res.resume());
  req.on('error', () => {});
  req.end();
  held.push(() => req.destroy());
}

const publish = (server, topic, body, token = PUBLISH_TOKEN) => fetchOnce(`${server.url}topics/${topic}`, {
  method: 'POST', body, headers: token ? { Authorization: `Bearer ${token}` } : {},
});

// ---------------------------------------------------------------------------
// Screenshots: PNG decoded by hand (8-bit RGB or RGBA, not interlaced, as
// Chromium writes them), to compare pixels and not file bytes

function decodePng(png) {
  const ihdr = png.subarray(16, 29);
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const [depth, colour, , , interlace] = ihdr.subarray(8);
  const channels = { 2: 3, 6: 4 }[colour];
  if (depth !== 8 || !channels || interlace !== 0) throw new Error(`PNG: depth ${depth}, colour ${colour}, interlace ${interlace}`);
  const idat = [];
  for (let at = 8; at < png.length;) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    if (type === 'IDAT') idat.push(png.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
      let v = line[x];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw new Error(`PNG: filter ${filter}`);
      pixels[y * stride + x] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** Pixels that differ between two decoded images of one size, within `box` (CSS px at scale 1) if given. */
function differingPixels(a, b, box) {
  if (a.width !== b.width || a.height !== b.height) return Infinity;
  const [x0, y0] = box ? [Math.max(0, Math.floor(box.x)), Math.max(0, Math.floor(box.y))] : [0, 0];
  const [x1, y1] = box ? [Math.min(a.width, Math.ceil(box.x + box.width)), Math.min(a.height, Math.ceil(box.y + box.height))]
    : [a.width, a.height];
  let n = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const i = (y * a.width + x) * a.channels;
      for (let k = 0; k < 3; k++) {
        if (a.pixels[i + k] !== b.pixels[i + k]) { n++; break; }
      }
    }
  }
  return n;
}

// ---------------------------------------------------------------------------
// The run

const number = async (page, id) => Number(await page.locator(`#${id}`).textContent());

/** Waits until every figure satisfies its predicate; returns the last reading and whether they all did. */
async function waitFigures(page, preds) {
  const deadline = Date.now() + WAIT;
  let seen = {};
  while (Date.now() < deadline) {
    seen = {};
    for (const id of Object.keys(preds)) seen[id] = await number(page, id);
    if (Object.entries(preds).every(([id, pred]) => pred(seen[id]))) return { seen, ok: true };
    await sleep(250);
  }
  return { seen, ok: false };
}

/**
 * A page on another site whose name was made to point at the admin
 * listener (DNS rebinding) sends that name as its Host: every request,
 * with the token or not, is answered 421, and nothing is published.
 */
async function checkRebinding(server, label) {
  const admin = new URL(server.admin);
  const rebound = `rebind.example:${admin.port}`;
  const headers = { Host: rebound, Origin: `http://${rebound}`, Authorization: `Bearer ${METRICS_TOKEN}` };
  const answers = await Promise.all([
    fetchOnce(`${server.admin}admin`, { headers }),
    fetchOnce(`${server.admin}metrics`, { headers }),
    fetchOnce(`${server.admin}admin/api/publish`, {
      method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' },
      body: JSON.stringify({ items: [{ topic: 'rebound', data: 'from a rebound page' }] }),
    }),
  ]);
  const history = await fetchOnce(`${server.url}api/history?topic=rebound`, { headers: { Authorization: `Bearer ${PUBLISH_TOKEN}` } });
  check(`${label}: a rebinding Host gets 421 for the page, /metrics and an action, which publishes nothing`,
    answers.every((a) => a.status === 421) && history.status === 200 && JSON.parse(history.body).events.length === 0,
    `${answers.map((a) => a.status).join(' ')}; history ${history.status} ${history.body}`);
  const own = await fetchOnce(`${server.admin}metrics`, { headers: { Host: `localhost:${admin.port}`, Authorization: `Bearer ${METRICS_TOKEN}` } });
  check(`${label}: the listener's own names are served (localhost)`, own.status === 200, `status ${own.status}`);
}

/**
 * A server without a metrics token: the start says the admin page is
 * read-only; the page shows the counters, no action and why; every
 * action, from the page or not, is refused (403) saying what to set.
 */
async function checkWithoutToken(browser) {
  const open = await startHub(null);
  try {
    // Standard error is read apart from standard output (which said the
    // server listens): its line may come a moment later, so wait for it.
    const warned = /WARN .*admin page is read-only: no metrics token is set/;
    for (let i = 0; i < 100 && !warned.test(open.log()); i++) await new Promise((r) => setTimeout(r, 100));
    check('without a token: the start warns that the admin page is read-only', warned.test(open.log()), open.log());
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const landed = await page.goto(`${open.admin}admin`, { timeout: WAIT });
    const live = await waitFigures(page, { 'conn-sse': (v) => v === 1 });
    check('without a token: the page is served (200) and its counters live', landed?.status() === 200 && live.ok,
      `status ${landed?.status()} ${JSON.stringify(live.seen)}`);
    const notice = page.locator('#read-only');
    check('without a token: the page says it is read-only, and why',
      await notice.isVisible() && /--metrics-token/.test(await notice.textContent()));
    check('without a token: no action is shown',
      !(await page.locator('#publish-send').isVisible()) && !(await page.locator('#user-revoke').isVisible())
        && !(await page.locator('#watch-start').isVisible()));
    const refused = await page.evaluate(async () => {
      const answers = [];
      for (const [path, body] of [['publish', { items: [{ topic: 'open.news', data: 'nobody' }] }], ['revoke', { subject: 'ann' }]]) {
        const r = await fetch(`/admin/api/${path}`, {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
        });
        answers.push({ status: r.status, code: (await r.json()).error?.code });
      }
      const r = await fetch('/admin/watch?topic=open.news');
      answers.push({ status: r.status, code: (await r.json()).error?.code });
      return answers;
    });
    check('without a token: the actions are refused from the page (403 no_admin_credential)',
      refused.every((a) => a.status === 403 && a.code === 'no_admin_credential'), JSON.stringify(refused));
    const history = await fetchOnce(`${open.url}api/history?topic=open.news`, { headers: { Authorization: `Bearer ${PUBLISH_TOKEN}` } });
    check('without a token: nothing was published', JSON.parse(history.body).events.length === 0, history.body);
    check('without a token: no page error', errors.length === 0, errors.join(' | '));
    await context.close();
    await checkRebinding(open, 'without a metrics token');
  } finally {
    await stopServer(open);
  }
}

const server = await startHub();
mkdirSync(SHOTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  // Playwright gives every launch a fresh user data dir of its own (under
  // TMPDIR, which admin.sh points at its scratch directory).
  args: [...CHROMIUM_FLAGS, '--disable-quic'],
  timeout: 60_000,
});
let page;
const consoleErrors = [];
try {
  console.log(`# chromium ${browser.version()}, server ${server.url}, admin listener ${server.admin}`);

  // Where it is served, and to whom.
  check('/admin is 404 on the main port', (await fetchOnce(`${server.url}admin`)).status === 404);
  check('/admin/events is 404 on the main port', (await fetchOnce(`${server.url}admin/events`)).status === 404);
  const bare = await fetchOnce(`${server.admin}admin`);
  check('/admin without the token is 401 (the sign-in form)', bare.status === 401 && bare.body.includes('/admin/login'),
    `status ${bare.status}`);
  const bareEvents = await fetchOnce(`${server.admin}admin/events`);
  check('/admin/events without the token is 401', bareEvents.status === 401, `status ${bareEvents.status}`);

  // The browser signs in through the form.
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
  const first = await page.goto(`${server.admin}admin`, { timeout: WAIT });
  check('the browser is first shown the sign-in form (401)', first?.status() === 401, `status ${first?.status()}`);
  await page.fill('#token', METRICS_TOKEN);
  const [landed] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === '/admin' && r.request().method() === 'GET', { timeout: WAIT }),
    page.click('button[type=submit]'),
  ]);
  check('signed in, the page loads (200)', landed.status() === 200, `status ${landed.status()}`);
  // The sign-in form came with its 401, which Chromium logs as a failed
  // load; from here on, the console must stay free of errors.
  const signInErrors = consoleErrors.splice(0);
  check('the only console error before signing in is the form\'s 401',
    signInErrors.length <= 1 && signInErrors.every((e) => /status of 401/.test(e)), signInErrors.join(' | '));
  const csp = landed.headers()['content-security-policy'] ?? '';
  check('the page has a strict Content-Security-Policy',
    /default-src 'none'/.test(csp) && /script-src 'nonce-[0-9a-f]+'/.test(csp) && /connect-src 'self'/.test(csp)
      && !/unsafe/.test(csp), csp || 'no CSP header');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'tether_admin');
  check('the session cookie is HttpOnly, SameSite=Strict, Path=/admin, not the token',
    session?.httpOnly && session?.sameSite === 'Strict' && session?.path === '/admin' && session?.value !== METRICS_TOKEN,
    JSON.stringify(session));
  check('scripts cannot read the session cookie', !(await page.evaluate(() => document.cookie)).includes('tether_admin'));

  // Live, quiet: the page's own stream is the one SSE connection.
  const quiet = await waitFigures(page, {
    'conn-websocket': (v) => v === 0, 'conn-sse': (v) => v === 1, 'conn-http2': (v) => v === 0,
    'conn-long_poll': (v) => v === 0, 'publishes-total': (v) => v === 0, 'topics': (v) => v === 0,
  });
  check('live and quiet: the figures read from the DOM', quiet.ok, JSON.stringify(quiet.seen));
  check('the status says live', (await page.locator('#status').textContent()) === 'live');
  await sleep(3000); // some flat chart first
  const before = await page.screenshot({ path: join(SHOTS, 'admin-before.png'), fullPage: true });
  const chartBox = await page.locator('#chart-connections').boundingBox();
  const publishChartBox = await page.locator('#chart-publishes').boundingBox();

  // The load.
  const topics = ['load.a', 'load.b', 'load.c'];
  const statuses = [];
  for (const topic of topics) statuses.push(await sseSubscriber(server, topic), await sseSubscriber(server, topic));
  for (const topic of topics) statuses.push(await wsSubscriber(server, topic));
  statuses.push(...await h2Subscriber(server, ['load.a', 'load.b']));
  longPoll(server, 'load.quiet');
  longPoll(server, 'load.quiet');
  check('the subscribers are let in (SSE 200, WebSocket 101, HTTP/2 200)',
    statuses.join(' ') === '200 200 200 200 200 200 101 101 101 200 200', statuses.join(' '));
  let published = 0;
  const until = Date.now() + 6000;
  while (Date.now() < until) {
    const answers = await Promise.all(topics.map((t) => publish(server, t, `{"n":${published}}`)));
    published += answers.filter((a) => a.status === 200).length;
    await sleep(100);
  }
  const denied = await Promise.all([1, 2, 3].map(() => publish(server, 'load.a', 'x', null)));
  check('publishes answered 200, and without a token 401', published > 30 && denied.every((d) => d.status === 401),
    `${published} published; refused: ${denied.map((d) => d.status).join(' ')}`);

  const loaded = await waitFigures(page, {
    'conn-websocket': (v) => v === 3,
    'conn-sse': (v) => v === 1 + 6 + 2,
    'conn-http2': (v) => v === 1,
    'conn-long_poll': (v) => v === 2,
    'topics': (v) => v >= 3,
    'publishes-total': (v) => v === published,
    'deliveries-total': (v) => v >= published * 3,
    'denials': (v) => v === 3,
    'refused-401': (v) => v === 3,
  });
  check('the figures moved with the load (connections by transport, topics, publishes, deliveries, denials)',
    loaded.ok, JSON.stringify(loaded.seen));
  // The rates: the last snapshots before the load stopped showed them; the
  // page's chart keeps them, and the figure is the latest second.
  const rates = await page.evaluate(() => [document.getElementById('publishes-rate').textContent,
    document.getElementById('deliveries-rate').textContent]);
  console.log(`# rates shown after the load: ${rates.join(', ')}`);

  const after = await page.screenshot({ path: join(SHOTS, 'admin-after.png'), fullPage: true });
  const [a, b] = [decodePng(before), decodePng(after)];
  const changed = differingPixels(a, b);
  check('the screenshots before and after the load differ', changed > 0, `${changed} pixels differ`);
  const inChart = differingPixels(a, b, chartBox);
  const inPublishChart = differingPixels(a, b, publishChartBox);
  check('the connections chart and the publishes chart were redrawn with the load (their pixels differ)',
    inChart > 200 && inPublishChart > 200, `${inChart} and ${inPublishChart} pixels differ`);
  console.log(`# screenshots: ${join(SHOTS, 'admin-before.png')}, ${join(SHOTS, 'admin-after.png')} (${a.width}x${a.height})`);

  // The rates go up under load: sample while publishing again.
  const burst = (async () => {
    const end = Date.now() + 4000;
    while (Date.now() < end) {
      await Promise.all(topics.map((t) => publish(server, t, 'again')));
      await sleep(50);
    }
  })();
  const rising = await waitFigures(page, { 'publishes-rate': (v) => v > 0, 'deliveries-rate': (v) => v > 0 });
  await burst;
  check('publishes and deliveries per second show above zero under load', rising.ok, JSON.stringify(rising.seen));

  // And back down once the subscribers leave.
  for (const close of held.splice(0)) close();
  const gone = await waitFigures(page, {
    'conn-websocket': (v) => v === 0, 'conn-sse': (v) => v === 1, 'conn-http2': (v) => v === 0,
    'conn-long_poll': (v) => v === 0,
  });
  check('the connections fall back when the load goes', gone.ok, JSON.stringify(gone.seen));

  check('no console errors', consoleErrors.length === 0, consoleErrors.join(' | '));

  await checkActions({ page, server, check, publish });
  // The actions end on another origin's page (the forged request's): back
  // to the admin page, still signed in.
  const back = await page.goto(`${server.admin}admin`, { timeout: WAIT });
  check('back on the admin page, still signed in (200)', back?.status() === 200, `status ${back?.status()}`);
  await checkServerSubscriptions({ page, server, check, publish });
  // The refusals the actions provoke on purpose are the only errors.
  const unexpected = consoleErrors.filter((e) => !/status of 403/.test(e));
  check('no console errors while acting but the refusals provoked', unexpected.length === 0, unexpected.join(' | '));
  await context.close();

  await checkRebinding(server, 'with a metrics token');
  await checkWithoutToken(browser);
  await checkOnRedis({
    bin: BIN, work: WORK, browser, check, tokens: { metrics: METRICS_TOKEN, publish: PUBLISH_TOKEN }, fetchOnce,
  });
} catch (e) {
  check('the run', false, e.stack);
  if (page) writeFileSync(join(WORK, 'admin-failed.html'), await page.content().catch(() => ''));
} finally {
  for (const close of held.splice(0)) close();
  await browser.close();
  await stopServer(server);
}

summary();
