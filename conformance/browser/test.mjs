// Headless Chromium against tether's demo page. Run by run.sh beside this
// file (which provides Chromium, node_modules and the binary); by hand:
//
//   TETHER_BIN=target/release/tether node --test conformance/browser/test.mjs
//
// Environment:
//   TETHER_BIN             the tether binary (required)
//   CHROMIUM               the browser (default /usr/bin/chromium)
//   TETHER_BROWSER_WORK    a scratch directory (default: a new temporary one);
//                          server pids are written to its `pids` file so that
//                          run.sh can make sure none is left behind
//   TETHER_SCREENSHOT_DIR  where screenshots go (default: the scratch directory)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const BIN = process.env.TETHER_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WORK = process.env.TETHER_BROWSER_WORK || mkdtempSync(join(tmpdir(), 'tether-browser-'));
const SHOTS = process.env.TETHER_SCREENSHOT_DIR || WORK;

// Generous but bounded: the page's EventSource waits `retry: 3000` ms before
// reconnecting, and the machine may be busy.
const WAIT = 15_000;
// Over TLS when run.sh gives a certificate, its key, and the key's SPKI hash.
const TLS = process.env.TETHER_BROWSER_TLS_CERT
  ? { cert: process.env.TETHER_BROWSER_TLS_CERT, key: process.env.TETHER_BROWSER_TLS_KEY,
    spki: process.env.TETHER_BROWSER_TLS_SPKI }
  : null;
const TEST_TIMEOUT = 90_000;

if (!BIN) throw new Error('TETHER_BIN is not set: the tether binary to test');

// ---------------------------------------------------------------------------
// The server

const servers = new Set();

process.on('exit', () => {
  for (const s of servers) {
    try { s.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/** Starts `tether serve` on `port` (0: a free one) with `extra` options; resolves once it listens. */
function startOnce(port, extra = []) {
  return new Promise((resolve, reject) => {
    const tlsArgs = TLS ? ['--tls-cert', TLS.cert, '--tls-key', TLS.key] : [];
    // In memory, unless the test gives a data directory of its own.
    const storage = extra.includes('--data-dir') ? [] : ['--memory'];
    const proc = spawn(BIN, ['serve', '--addr', '127.0.0.1', '--port', String(port),
      '--app', 'demo', ...storage, '--log-level', 'info', ...tlsArgs, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = { proc, port: 0, url: '', log: '', exited: null };
    servers.add(server);
    if (proc.pid) appendFileSync(join(WORK, 'pids'), `${proc.pid}\n`);
    const exited = new Promise((res) => proc.on('exit', (code, signal) => {
      servers.delete(server);
      server.exited = { code, signal };
      res(server.exited);
    }));
    server.waitExit = () => exited;
    let out = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`the server did not start within 10 s; log:\n${server.log}`));
    }, 10_000);
    proc.stderr.on('data', (d) => { server.log += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /^tether listening on (https?:\/\/127\.0\.0\.1:(\d+)\/)/m.exec(out);
      if (m && !server.port) {
        clearTimeout(timer);
        server.url = m[1];
        server.port = Number(m[2]);
        resolve(server);
      }
    });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before listening; log:\n${server.log}`));
    });
  });
}

/** Starts a server; on a given port, retries for a while (the old one's port). */
async function startServer(port = 0, extra = []) {
  let lastError;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return await startOnce(port, extra);
    } catch (e) {
      lastError = e;
      if (port === 0) break;
      await sleep(250);
    }
  }
  throw lastError;
}

/** SIGTERM, then SIGKILL after 10 s; resolves with how it exited. */
async function stopServer(server) {
  if (server.exited) return server.exited;
  server.proc.kill('SIGTERM');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 10_000);
  const how = await server.waitExit();
  clearTimeout(timer);
  return how;
}

// ---------------------------------------------------------------------------
// The browser

let browser;
let server;
let main; // the page that tests a, d and b share
const pageErrors = [];

async function openPage(context, path) {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${path}: ${e.message}`));
  // The room is subscribed over an event stream (its count's) once the
  // response of the client's one event stream, whose topics include
  // room.ROOM, arrives (the client adds ?lastEventId= to resume).
  const chatEvents = page.waitForResponse((r) => /\/events\?(.*&)?topic=room\./.test(r.url()),
    { timeout: WAIT });
  chatEvents.catch(() => {}); // awaited below, unless the page itself fails
  const response = await page.goto(new URL(path, server.url).href, { timeout: WAIT });
  assert.equal(response?.status(), 200, `GET ${path}`);
  assert.equal((await chatEvents).status(), 200, `GET /events?topic=room.ROOM from ${path}`);
  return page;
}

const text = (page, id) => page.locator(`#${id}`).textContent();

/** Waits until element `id`'s text satisfies `pred` (a predicate on the string). */
async function waitText(page, id, pred, what) {
  const { held, last } = await pollUntil(() => text(page, id), pred);
  if (held) return last;
  throw new Error(`#${id}: waited ${WAIT / 1000} s for ${what}; it shows ${JSON.stringify(last)}`);
}

/** Reads every 100 ms until `pred` holds of what `read()` gives, for at
 * most WAIT; `held` says whether it did, `last` is the last value read. */
async function pollUntil(read, pred) {
  const deadline = Date.now() + WAIT;
  let last;
  while (Date.now() < deadline) {
    last = await read();
    if (pred(last)) return { held: true, last };
    await sleep(100);
  }
  return { held: false, last };
}

// Hub event ids are "epoch-seq": the topic's epoch (its creation time in
// ms, new for every run of the server) and a counter from 1.
const isId = (s) => /^\d+-\d+$/.test(s);
const parseId = (s) => s.split('-').map(Number);
/** Whether id a comes after id b (epoch first, then counter). */
const isAfter = (a, b) => {
  const [ea, na] = parseId(a);
  const [eb, nb] = parseId(b);
  return ea > eb || (ea === eb && na > nb);
};

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer(0);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh user data dir of its own (under
    // TMPDIR, which run.sh points at its scratch directory).
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...(TLS ? [`--ignore-certificate-errors-spki-list=${TLS.spki}`] : [])],
    timeout: 60_000,
  });
  console.log(`# chromium ${browser.version()}, server ${server.url}`);
});

after(async () => {
  if (browser) await browser.close();
  for (const s of [...servers]) await stopServer(s);
});

// ---------------------------------------------------------------------------
// The tests (run in this order; b restarts the server, so it comes last)

test('a. the page\'s EventSource receives the clock topic\'s tick events', { timeout: TEST_TIMEOUT }, async () => {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  main = await openPage(context, '/');
  await waitText(main, 'clock-status', (s) => s === 'open', 'status "open"');
  const first = await waitText(main, 'clock-last-id', isId, 'a tick id');
  const later = await waitText(main, 'clock-last-id', (s) => isId(s) && isAfter(s, first),
    `an id after ${first}`);
  assert.equal(parseId(later)[0], parseId(first)[0], 'one epoch while the server runs');
  assert.equal(await text(main, 'clock-gaps'), '0', 'a first connection has nothing to miss');
  assert.equal(await text(main, 'clock-opens'), '1');
  assert.equal(await text(main, 'clock-status'), 'open');
  const log = await main.locator('#clock-log li').allTextContents();
  assert.ok(log.length >= 2, `clock-log has ${log.length} entries`);
  assert.match(log[0], /^#\d+\b/, 'newest tick first in the log');
});

test('a2. Chromium\'s own EventSource takes its stream compressed (gzip) and reads each event as it comes', { timeout: TEST_TIMEOUT }, async () => {
  const token = `zip-${Date.now()}`;
  const own = await startServer(0, ['--publish-token', token]);
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`a2: ${e.message}`));
    assert.equal((await page.goto(own.url, { timeout: WAIT }))?.status(), 200);
    const stream = page.waitForResponse((r) => r.url().endsWith('/topics/zip/events'), { timeout: WAIT });
    await page.evaluate(() => {
      window.__zip = [];
      const source = new EventSource('/topics/zip/events');
      source.onmessage = (e) => window.__zip.push(e.data);
    });
    const headers = await (await stream).allHeaders();
    assert.equal(headers['content-encoding'], 'gzip', JSON.stringify(headers));
    assert.match(headers.vary ?? '', /accept-encoding/i);
    // A ~2 KB JSON event, then a short one: each arrives before the next
    // is published (flushed at once), whole.
    const quotes = JSON.stringify(Array.from({ length: 24 }, (_, i) =>
      ({ symbol: `SYM${i}`, bid: 100 + i + 0.25, ask: 101 + i + 0.5, venue: 'XNAS' })));
    for (const [n, data] of [[1, quotes], [2, 'short']]) {
      const status = await page.evaluate(async ([k, d]) => (await fetch('/topics/zip', {
        method: 'POST', headers: { Authorization: `Bearer ${k}` }, body: d,
      })).status, [token, data]);
      assert.equal(status, 200);
      await waitUntil(page, (p) => p.evaluate(() => window.__zip), (got) => got.length === n,
        `event ${n} in the compressed stream`);
    }
    assert.deepEqual(await page.evaluate(() => window.__zip), [quotes, 'short']);
  } finally {
    await context.close();
    await stopServer(own);
  }
});

// The people of the chat and private-message tests: alice and bob signed
// in (each in a browser context of their own; alice with a second page
// too) and a guest, all in one room. Test c sets them up, test k uses them.
const people = { contexts: [], room: '' };

const partsOf = (page, list) => page.locator(`#${list} li:not(.note)`).evaluateAll((items) =>
  items.map((li) => ({
    from: li.querySelector('.from')?.textContent,
    to: li.querySelector('.to')?.textContent ?? null,
    text: li.querySelector('.text')?.textContent,
    mine: li.classList.contains('mine'),
  })));
const whoOf = (page) => page.locator('#chat-who .person').allTextContents();

/** Waits until `read(page)` deep-equals `want`; fails with the last value read. */
async function waitEqual(page, read, want, what) {
  const { held, last } = await pollUntil(() => read(page), (v) => JSON.stringify(v) === JSON.stringify(want));
  if (!held) assert.deepEqual(last, want, `waited ${WAIT / 1000} s for ${what}`);
}

/** Waits until `read(page)` satisfies `pred`; fails with the last value read. */
async function waitUntil(page, read, pred, what) {
  const { held, last } = await pollUntil(() => read(page), pred);
  if (!held) assert.fail(`waited ${WAIT / 1000} s for ${what}; last read ${JSON.stringify(last)}`);
  return last;
}

/** Signs `page` in as `name` with the page's own form. */
async function signInOnPage(page, name) {
  await page.fill('#login-name', name);
  await page.click('#login-send');
  await waitText(page, 'me-status', (s) => s === 'signed in', 'signed in');
  assert.equal(await text(page, 'me-name'), name);
  await waitText(page, 'inbox-status', (s) => s === 'open', 'the inbox open');
  assert.equal(await page.inputValue('#login-name'), '', 'the form is cleared');
}

after(async () => {
  for (const c of people.contexts) await c.close().catch(() => {});
});

test('c. the chat names its people: guests get a name of the server\'s, presence counts people, messages show their sender, oldest first', { timeout: TEST_TIMEOUT }, async () => {
  people.room = `browser-${process.pid}-${Date.now()}`;
  const path = `/?room=${people.room}`;
  const [ca, cb, cg] = [await browser.newContext(), await browser.newContext(), await browser.newContext()];
  people.contexts.push(ca, cb, cg);
  const [a, b, g] = [await openPage(ca, path), await openPage(cb, path), await openPage(cg, path)];
  Object.assign(people, { a, b, g, ca });

  // Plain words first: every "how it works" is closed until asked for.
  for (const p of [a, b, g]) {
    const toggles = await p.locator('details').evaluateAll((ds) => ds.map((d) => ({ id: d.id, open: d.open })));
    assert.deepEqual(toggles, [{ id: 'chat-how', open: false }, { id: 'dm-how', open: false }, { id: 'clock-how', open: false }]);
    assert.equal(await p.locator('#chat-how summary').textContent(), 'How it works');
    assert.equal(await p.locator('#chat-how code').first().isVisible(), false, 'the protocol detail is hidden');
  }

  // Each page is a guest with a name of the server's, listed once though
  // the page has two connections to the room (WebSocket and SSE).
  const guests = [];
  for (const p of [a, b, g]) {
    await waitText(p, 'chat-status', (s) => s === 'live', 'the chat live');
    await waitText(p, 'me-status', (s) => s === 'guest', 'a guest');
    guests.push(await text(p, 'me-name'));
  }
  for (const name of guests) assert.match(name, /^guest-\d+$/);
  assert.equal(new Set(guests).size, 3, `three guest names: ${guests}`);
  for (const p of [a, b, g]) {
    await waitEqual(p, whoOf, [...guests].sort(), 'three guests listed');
    assert.equal(await text(p, 'chat-count'), '3 people here:');
  }

  // Alice and bob sign in: their guest names leave, their names join.
  const [alice, bob, guest] = [user('alice'), user('bob'), guests[2]];
  Object.assign(people, { alice, bob, guest });
  await signInOnPage(a, alice);
  await signInOnPage(b, bob);
  const here = [alice, bob, guest].sort();
  for (const p of [a, b, g]) {
    await waitEqual(p, whoOf, here, 'alice, bob and the guest');
    assert.equal(await text(p, 'chat-count'), '3 people here:');
  }
  assert.equal(await a.locator('#chat-who .person.me-too').textContent(), alice, 'alice sees herself marked');
  // Alice opens a second page and signs in there too: still one alice.
  const a2 = await openPage(ca, path);
  people.a2 = a2;
  await signInOnPage(a2, alice);
  await waitEqual(a2, whoOf, here, 'the same three on the second page');
  await sleep(500);
  for (const p of [a, b, g, a2]) {
    assert.deepEqual(await whoOf(p), here, 'two pages of alice are one person');
    assert.equal(await text(p, 'chat-count'), '3 people here:');
  }

  // The guest opens a second window: the same guest (the browser keeps
  // its guest name in a cookie), still one person.
  const g2 = await openPage(cg, path);
  await waitText(g2, 'me-status', (s) => s === 'guest', 'a guest');
  assert.equal(await text(g2, 'me-name'), guest, 'the second window is the same guest');
  await waitEqual(g2, whoOf, here, 'the same three on the guest\'s second window');
  for (const p of [a, b, g]) {
    assert.deepEqual(await whoOf(p), here, 'two windows of the guest are one person');
    assert.equal(await text(p, 'chat-count'), '3 people here:');
  }
  await g2.close();
  // Another browser may not take alice's name while she is here.
  const cx = await browser.newContext();
  people.contexts.push(cx);
  const x = await openPage(cx, path);
  await waitText(x, 'me-status', (s) => s === 'guest', 'a guest');
  await x.fill('#login-name', alice);
  await x.click('#login-send');
  const refusal = `refused: ${alice} is signed in already, in another window or by someone else: choose another name`;
  await waitText(x, 'me-status', (s) => s === refusal, 'the refusal');
  assert.notEqual(await text(x, 'me-name'), alice);
  await x.close();

  // They talk: each message under its sender's name, oldest first, on
  // every page; the guest's under the name the server gave it.
  const send = async (page, message) => {
    await page.fill('#chat-input', message);
    await page.click('#chat-send');
    assert.equal(await page.inputValue('#chat-input'), '', 'the input is cleared after sending');
  };
  const lines = [
    [a, alice, `hello from alice \u2014 caf\u00e9 \u2713 ${Date.now()}`],
    [g, guest, 'hi, I am just looking'],
    [b, bob, '<img src=x onerror="window.__owned=1"> & <b>not bold</b>'],
  ];
  const want = [];
  for (const [page, from, message] of lines) {
    await send(page, message);
    want.push({ from, to: null, text: message });
    await waitEqual(g, (p) => partsOf(p, 'chat-log').then((l) => l.map(({ mine, ...m }) => m)), want, `${from}'s message`);
  }
  for (const [p, me] of [[a, alice], [b, bob], [g, guest], [a2, alice]]) {
    await waitEqual(p, (q) => partsOf(q, 'chat-log'), want.map((m) => ({ ...m, mine: m.from === me })), 'the whole conversation');
    await waitText(p, 'chat-sse-count', (s) => s === '3', 'the same three over SSE');
    // Text stays text: no element from a message, no script run.
    assert.equal(await p.locator('#chat-log img, #chat-log b').count(), 0);
    assert.equal(await p.evaluate(() => window.__owned), undefined);
  }
  // A page in another room hears none of it.
  assert.ok(main, 'test a did not get to open the page');
  assert.deepEqual(await main.locator('#chat-log li').allTextContents(), []);
  assert.equal(await text(main, 'chat-sse-count'), '0');

  await a.screenshot({ path: join(SHOTS, 'demo-chat.png'), fullPage: true });
  await g.screenshot({ path: join(SHOTS, 'demo-guest.png'), fullPage: true });
  console.log(`# screenshots: ${join(SHOTS, 'demo-chat.png')}, ${join(SHOTS, 'demo-guest.png')}`);
});

test('c2. a guest who joins while the page\'s presence snapshot is on its way stays listed', { timeout: TEST_TIMEOUT }, async () => {
  // The page asks for the room's presence (HTTP) once its WebSocket is
  // open, and hears joins on that WebSocket: two connections. Here the
  // first snapshot is taken by the server, then held back until a second
  // guest has joined and the page has heard it, so that the join arrives
  // first and the snapshot, older, after it. The page must keep the join.
  const room = `overtaken-${process.pid}-${Date.now()}`;
  const path = `/?room=${room}`;
  // route.fetch() makes the request from Playwright, not from Chromium:
  // over https it must be told to take the test certificate.
  const [cx, cy] = [await browser.newContext({ ignoreHTTPSErrors: true }), await browser.newContext()];
  people.contexts.push(cx, cy);
  let taken;
  const snapshotTaken = new Promise((resolve) => { taken = resolve; });
  let release;
  const released = new Promise((resolve) => { release = resolve; });
  let held = false;
  // A member no guest is called, added to the held snapshot: once the
  // page lists it, the page has applied that snapshot.
  const marker = 'zz-from-the-held-snapshot';
  await cx.route(/\/topics\/room\.[^/]+\/presence(\?|$)/, async (route) => {
    if (held) return route.continue();
    held = true;
    const response = await route.fetch();
    const body = await response.json();
    taken(body.members);
    await released;
    await route.fulfill({ response, json: { ...body, members: [...body.members, marker] } });
  });
  const x = await openPage(cx, path);
  const before = await snapshotTaken;
  await waitText(x, 'me-status', (s) => s === 'guest', 'a guest');
  const y = await openPage(cy, path);
  await waitText(y, 'me-status', (s) => s === 'guest', 'a second guest');
  const joined = await text(y, 'me-name');
  assert.ok(!before.includes(joined), `the held snapshot (${before}) was taken before ${joined} joined`);
  await waitUntil(x, whoOf, (who) => who.includes(joined), `${joined}'s join heard before the snapshot`);
  release();
  await waitUntil(x, whoOf, (who) => who.includes(marker), 'the held snapshot applied');
  const who = await whoOf(x);
  assert.ok(who.includes(joined), `${joined} still listed after the older snapshot: ${who}`);
  await cx.close();
  await cy.close();
});

test('d. a WebSocket from the page to /echo echoes text and binary', { timeout: TEST_TIMEOUT }, async () => {
  assert.ok(main, 'test a did not get to open the page');
  const result = await main.evaluate(async ({ url, wait }) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const queue = [];
    const waiters = [];
    ws.onmessage = (e) => (waiters.length ? waiters.shift()(e.data) : queue.push(e.data));
    const next = () => new Promise((resolve, reject) => {
      if (queue.length) { resolve(queue.shift()); return; }
      waiters.push(resolve);
      setTimeout(() => reject(new Error('no echo within the wait')), wait);
    });
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error('the WebSocket failed to open'));
    });
    const out = { protocol: ws.protocol, extensions: ws.extensions };

    const sentText = 'h\u00e9llo \u2713 \u{1F600} '.repeat(5000); // > 64 KiB of UTF-8
    ws.send(sentText);
    const gotText = await next();
    out.textType = typeof gotText;
    out.textEqual = gotText === sentText;
    out.textLength = typeof gotText === 'string' ? gotText.length : -1;

    const sentBin = new Uint8Array(70_000);
    for (let i = 0; i < sentBin.length; i++) sentBin[i] = (i * 31 + (i >> 8)) & 0xff;
    ws.send(sentBin);
    const gotBin = await next();
    out.binType = Object.prototype.toString.call(gotBin);
    const got = new Uint8Array(gotBin);
    out.binLength = got.length;
    out.binEqual = got.length === sentBin.length && got.every((v, i) => v === sentBin[i]);

    ws.send(new Uint8Array(0));
    const empty = await next();
    out.emptyLength = empty.byteLength;

    const closed = new Promise((resolve) => { ws.onclose = (e) => resolve(e); });
    ws.close(1000, 'bye');
    const e = await closed;
    out.close = { code: e.code, wasClean: e.wasClean };
    return out;
  }, { url: `${TLS ? 'wss' : 'ws'}://127.0.0.1:${server.port}/echo`, wait: WAIT });
  console.log(`# the page's WebSocket negotiated extensions: ${JSON.stringify(result.extensions)}`);
  // Chromium offers permessage-deflate; tether serve accepts it by default.
  assert.match(result.extensions, /^permessage-deflate\b/, 'permessage-deflate negotiated');
  assert.equal(result.textType, 'string', 'a text message comes back as text');
  assert.ok(result.textEqual, `text echo differs (length ${result.textLength})`);
  assert.equal(result.binType, '[object ArrayBuffer]', 'a binary message comes back as binary');
  assert.equal(result.binLength, 70_000);
  assert.ok(result.binEqual, 'binary echo differs');
  assert.equal(result.emptyLength, 0);
  assert.deepEqual(result.close, { code: 1000, wasClean: true });
});

// ---------------------------------------------------------------------------
// Cross-origin, signed in: a page of another origin (another port of
// 127.0.0.1: same site, so the demo's SameSite=Lax cookie goes with
// credentialed requests) against a demo server that lets that origin in
// with --cors-origin, and tokens that expire in seconds (--jwt-leeway 0).

/** The other origin's page: helpers for the tests, over `?hub=URL`. */
const OTHER_PAGE = `<!doctype html><meta charset="utf-8"><title>another origin</title>
<script>
"use strict";
const base = new URLSearchParams(location.search).get("hub").replace(/\\/$/, "");
const wsBase = base.replace(/^http/, "ws");
window.streams = {};
window.sockets = {};
// POST /demo/login: with the cookie stored (include) or not (omit).
window.login = async (name, { ttl, cookie }) => {
  const body = new URLSearchParams({ name });
  if (ttl) body.set("ttl", String(ttl));
  const r = await fetch(base + "/demo/login", { method: "POST", body, credentials: cookie ? "include" : "omit" });
  return { status: r.status, body: r.ok ? await r.json() : await r.text() };
};
// An EventSource with credentials; resolves "open" or "closed".
window.openSse = (id, topic) => new Promise((resolve) => {
  const source = new EventSource(base + "/topics/" + topic + "/events", { withCredentials: true });
  const rec = { events: [], expired: 0, opened: 0, closed: false };
  streams[id] = rec;
  source.onopen = () => { rec.opened += 1; resolve("open"); };
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) { rec.closed = true; resolve("closed"); } };
  source.onmessage = (e) => rec.events.push(e.data);
  source.addEventListener("auth-expired", () => { rec.expired += 1; });
});
// A preflighted publish: JSON and Authorization.
window.publish = async (topic, token, data) => {
  const r = await fetch(base + "/topics/" + topic, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Authorization": "Bearer " + token },
    body: JSON.stringify(data),
  });
  return { status: r.status, body: await r.text() };
};
// A long poll's status, with the cookie if one applies, and a token if given.
window.pollStatus = async (topic, token) => (await fetch(base + "/topics/" + topic + "/poll?timeout=0", {
  credentials: "include",
  headers: token ? { "Authorization": "Bearer " + token } : {},
})).status;
// A WebSocket that sends nothing (its credential, if any, is the cookie);
// resolves "open" or how it closed.
window.openWsCookie = (id, topic) => new Promise((resolve) => {
  const ws = new WebSocket(wsBase + "/topics/" + topic + "/ws");
  const rec = { messages: [], close: null, ws };
  sockets[id] = rec;
  ws.onopen = () => resolve("open");
  ws.onmessage = (e) => rec.messages.push(JSON.parse(e.data));
  ws.onclose = (e) => { rec.close = { code: e.code, reason: e.reason }; resolve({ closed: rec.close }); };
});
// A form post, as any page may make without a preflight (the answer is
// opaque to it): the cookie goes along.
window.forgePost = async (topic, text) => {
  await fetch(base + "/topics/" + topic, {
    method: "POST", mode: "no-cors", credentials: "include",
    headers: { "Content-Type": "text/plain" }, body: text,
  });
};
// A WebSocket that sends its token as its first message; resolves with
// auth-ok, or with how it closed.
window.openWs = (id, topic, token) => new Promise((resolve) => {
  const ws = new WebSocket(wsBase + "/topics/" + topic + "/ws");
  const rec = { messages: [], close: null, ws };
  sockets[id] = rec;
  ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token }));
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    rec.messages.push(m);
    if (m.type === "auth-ok" && !rec.ok) { rec.ok = m; resolve(m); }
  };
  ws.onclose = (e) => { rec.close = { code: e.code, reason: e.reason }; resolve({ closed: rec.close }); };
});
</script>`;

const cross = { statics: null, origin: '', server: null, contexts: [], pages: {} };
const suffix = `${process.pid % 100000}`;
const user = (name) => `${name}_${suffix}`;

/** A static server of another origin (another port) serving OTHER_PAGE; its origin. */
async function staticOrigin() {
  const serve = (req, res) => {
    if (req.method === 'GET' && (req.url === '/' || req.url.startsWith('/?'))) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(OTHER_PAGE);
    } else {
      res.writeHead(404);
      res.end();
    }
  };
  const statics = TLS
    ? createHttpsServer({ cert: readFileSync(TLS.cert), key: readFileSync(TLS.key) }, serve)
    : createHttpServer(serve);
  await new Promise((resolve) => statics.listen(0, '127.0.0.1', resolve));
  return { statics, origin: `${TLS ? 'https' : 'http'}://127.0.0.1:${statics.address().port}` };
}

/** The static server of the other origin, and a demo server that lets it in. */
async function crossOrigin() {
  if (cross.server) return cross;
  ({ statics: cross.statics, origin: cross.origin } = await staticOrigin());
  cross.server = await startServer(0, ['--cors-origin', cross.origin, '--jwt-leeway', '0']);
  console.log(`# the other origin ${cross.origin}, its hub ${cross.server.url}`);
  return cross;
}

/** A page of the other origin in a browser context of its own. */
async function otherPage(who) {
  if (cross.pages[who]) return cross.pages[who];
  const { origin, server: hub } = await crossOrigin();
  const context = await browser.newContext();
  cross.contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${origin} (${who}): ${e.message}`));
  const response = await page.goto(`${origin}/?hub=${encodeURIComponent(hub.url)}`, { timeout: WAIT });
  assert.equal(response?.status(), 200);
  cross.pages[who] = page;
  return page;
}

/** Signs `who` in from its page; the token. */
async function signIn(page, who, options) {
  const login = await page.evaluate(([name, o]) => window.login(name, o), [user(who), options]);
  assert.equal(login.status, 200, `login of ${who}: ${JSON.stringify(login.body)}`);
  assert.equal(login.body.sub, user(who));
  return login.body.token;
}

const waitIn = (page, fn, arg, what) => page.waitForFunction(fn, arg, { timeout: WAIT })
  .catch((e) => { throw new Error(`waited for ${what}: ${e.message}`); });

after(async () => {
  for (const c of cross.contexts) await c.close().catch(() => {});
  if (cross.statics) cross.statics.close();
});

test('e. cross-origin: an EventSource withCredentials, signed in by cookie, receives its private topic', { timeout: TEST_TIMEOUT }, async () => {
  const alice = await otherPage('alice');
  const token = await signIn(alice, 'alice', { cookie: true });
  const topic = `user.${user('alice')}`;
  assert.equal(await alice.evaluate((t) => window.openSse('inbox', t), topic), 'open');
  const sent = await alice.evaluate(([t, k]) => window.publish(t, k, { from: 'me', text: 'to myself' }), [topic, token]);
  assert.equal(sent.status, 200, sent.body);
  await waitIn(alice, () => window.streams.inbox.events.length >= 1, null, 'the event');
  assert.deepEqual(JSON.parse(await alice.evaluate(() => window.streams.inbox.events[0])),
    { from: 'me', text: 'to myself' });
});

test('f. cross-origin: a preflighted fetch publish (JSON, Authorization) from another user arrives', { timeout: TEST_TIMEOUT }, async () => {
  const alice = await otherPage('alice');
  const bob = await otherPage('bob');
  const token = await signIn(bob, 'bob', { cookie: true });
  const before = await alice.evaluate(() => window.streams.inbox.events.length);
  const sent = await bob.evaluate(([t, k]) => window.publish(t, k, { from: 'bob', text: 'hello alice' }),
    [`user.${user('alice')}`, token]);
  assert.equal(sent.status, 200, sent.body);
  assert.match(JSON.parse(sent.body).id, /^\d+-\d+$/, 'the answer is readable across origins');
  await waitIn(alice, (n) => window.streams.inbox.events.length > n, before, 'bob\'s message');
  assert.deepEqual(JSON.parse(await alice.evaluate((n) => window.streams.inbox.events[n], before)),
    { from: 'bob', text: 'hello alice' });
});

test('g. cross-origin: a WebSocket that authenticates with its first message gets its private topic', { timeout: TEST_TIMEOUT }, async () => {
  const carol = await otherPage('carol');
  // No cookie: the WebSocket carries no credential, and sends the token.
  const token = await signIn(carol, 'carol', { cookie: false });
  const topic = `user.${user('carol')}`;
  const ok = await carol.evaluate(([t, k]) => window.openWs('ws', t, k), [topic, token]);
  assert.equal(ok.type, 'auth-ok', JSON.stringify(ok));
  const sent = await carol.evaluate(([t, k]) => window.publish(t, k, { text: 'over the socket' }), [topic, token]);
  assert.equal(sent.status, 200, sent.body);
  await waitIn(carol, () => window.sockets.ws.messages.some((m) => m.data), null, 'the event');
  const event = await carol.evaluate(() => window.sockets.ws.messages.find((m) => m.data));
  assert.deepEqual(JSON.parse(event.data), { text: 'over the socket' });
});

test('h. cross-origin: a private topic is unreadable without its right, by another user or anonymously', { timeout: TEST_TIMEOUT }, async () => {
  const bob = await otherPage('bob');
  const topic = `user.${user('alice')}`;
  assert.equal(await bob.evaluate((t) => window.openSse('alices', t), topic), 'closed', 'bob reads alice\'s topic');
  assert.equal(await bob.evaluate(() => window.streams.alices.events.length), 0);
  // With bob's token: a good token that does not grant the topic.
  const bobs = await signIn(bob, 'bob', { cookie: true });
  assert.equal(await bob.evaluate(([t, k]) => window.pollStatus(t, k), [topic, bobs]), 403);
  // Bob's cookie is for his own topic only: there it opens.
  assert.equal(await bob.evaluate((t) => window.openSse('own', t), `user.${user('bob')}`), 'open');
  const nobody = await otherPage('nobody');
  assert.equal(await nobody.evaluate((t) => window.openSse('alices', t), topic), 'closed');
  assert.equal(await nobody.evaluate((t) => window.pollStatus(t), topic), 401);
  // A WebSocket with bob's token on alice's topic is closed with 1008.
  const token = await signIn(nobody, 'bob', { cookie: false });
  const result = await nobody.evaluate(([t, k]) => window.openWs('alices', t, k), [topic, token]);
  assert.equal(result.closed?.code, 1008, JSON.stringify(result));
});

test('i. cross-origin: a WebSocket that refreshes its token before it expires stays', { timeout: TEST_TIMEOUT }, async () => {
  const dave = await otherPage('dave');
  const topic = `user.${user('dave')}`;
  // Six seconds, not fewer: the hub warns a third of the whole seconds
  // left before the deadline, so a token signed just before a second
  // turned and taken just after it (two seconds left of three) would be
  // warned on its deadline, where its expiry comes first.
  const short = await signIn(dave, 'dave', { cookie: false, ttl: 6 });
  const started = Date.now();
  const ok = await dave.evaluate(([t, k]) => window.openWs('ws', t, k), [topic, short]);
  assert.equal(ok.type, 'auth-ok', JSON.stringify(ok));
  assert.ok(ok.expires_in <= 6, JSON.stringify(ok));
  // Warned before the token expires, it sends a longer-lived one.
  await waitIn(dave, () => window.sockets.ws.messages.some((m) => m.type === 'auth-expiring'), null, 'auth-expiring');
  const fresh = await signIn(dave, 'dave', { cookie: false, ttl: 60 });
  await dave.evaluate((k) => window.sockets.ws.ws.send(JSON.stringify({ type: 'auth', token: k })), fresh);
  await waitIn(dave, () => window.sockets.ws.messages.filter((m) => m.type === 'auth-ok').length >= 2, null, 'the second auth-ok');
  // Past the first token's expiry (and the hub's next tick), still open and receiving.
  const wait = Math.max(0, started + 8000 - Date.now());
  await sleep(wait);
  const sent = await dave.evaluate(([t, k]) => window.publish(t, k, { text: 'still here' }), [topic, fresh]);
  assert.equal(sent.status, 200, sent.body);
  await waitIn(dave, () => window.sockets.ws.messages.some((m) => m.data), null, 'the event after the refresh');
  const state = await dave.evaluate(() => ({ open: window.sockets.ws.ws.readyState === WebSocket.OPEN, close: window.sockets.ws.close }));
  assert.deepEqual(state, { open: true, close: null });
});

test('j. cross-origin: without a refresh, the token\'s expiry ends the event stream (auth-expired) and closes the WebSocket (1008)', { timeout: TEST_TIMEOUT }, async () => {
  const erin = await otherPage('erin');
  const topic = `user.${user('erin')}`;
  // The cookie lives as long as the token: 2 s.
  await signIn(erin, 'erin', { cookie: true, ttl: 2 });
  assert.equal(await erin.evaluate((t) => window.openSse('inbox', t), topic), 'open');
  const frank = await otherPage('frank');
  const token = await signIn(frank, 'frank', { cookie: false, ttl: 2 });
  const ok = await frank.evaluate(([t, k]) => window.openWs('ws', t, k), [`user.${user('frank')}`, token]);
  assert.equal(ok.type, 'auth-ok', JSON.stringify(ok));
  await waitIn(erin, () => window.streams.inbox.expired >= 1, null, 'auth-expired');
  // Its reconnect has no cookie left (or an expired token): it stays shut.
  await waitIn(erin, () => window.streams.inbox.closed, null, 'the EventSource to give up');
  assert.equal(await erin.evaluate(() => window.streams.inbox.opened), 1);
  await waitIn(frank, () => window.sockets.ws.close !== null, null, 'the close');
  assert.deepEqual(await frank.evaluate(() => window.sockets.ws.close), { code: 1008, reason: 'token expired' });
});

test('l. a page of another origin (another port) with the user\'s cookie is refused; the server\'s own origin gets in', { timeout: TEST_TIMEOUT }, async () => {
  // The demo server of test a: no trusted origin, so a cookie counts
  // only from its own.
  const evil = await staticOrigin();
  const context = await browser.newContext();
  try {
    // Grace signs in on the server's own page: the browser keeps her
    // cookie for 127.0.0.1, whatever the port.
    const own = await context.newPage();
    assert.equal((await own.goto(server.url, { timeout: WAIT }))?.status(), 200);
    const name = user('grace');
    const topic = `user.${name}`;
    const token = await own.evaluate(async (n) => {
      const r = await fetch('/demo/login', { method: 'POST', body: new URLSearchParams({ name: n }) });
      return (await r.json()).token;
    }, name);
    assert.ok(token, 'signed in');
    await own.evaluate((t) => new Promise((resolve, reject) => {
      window.__grace = [];
      const source = new EventSource(`/topics/${t}/events`);
      source.onopen = () => resolve();
      source.onmessage = (e) => window.__grace.push(e.data);
      source.onerror = () => { if (source.readyState === EventSource.CLOSED) reject(new Error('refused')); };
    }), topic);
    // A page of another port of the same host (the same site, so the
    // cookie goes along): no stream, no socket, no forged publish.
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${evil.origin} (another origin): ${e.message}`));
    assert.equal((await page.goto(`${evil.origin}/?hub=${encodeURIComponent(server.url)}`, { timeout: WAIT }))?.status(), 200);
    assert.equal(await page.evaluate((t) => window.openSse('stolen', t), topic), 'closed');
    const ws = await page.evaluate((t) => window.openWsCookie('stolen', t), topic);
    assert.equal(ws.closed?.code, 1006, `the upgrade is refused: ${JSON.stringify(ws)}`);
    await page.evaluate((t) => window.forgePost(t, 'forged'), topic);
    // The own page publishes with its token and reads it with its cookie.
    const status = await own.evaluate(async ([t, k]) => (await fetch(`/topics/${t}`, {
      method: 'POST', headers: { Authorization: `Bearer ${k}` }, body: 'real',
    })).status, [topic, token]);
    assert.equal(status, 200);
    await waitIn(own, () => window.__grace.length >= 1, null, 'the real event');
    await sleep(300);
    assert.deepEqual(await own.evaluate(() => window.__grace), ['real'], 'the forged post was not published');
    const metrics = await own.evaluate(async () => (await fetch('/metrics')).text());
    const denied = Number(/^tether_auth_denied_total\{reason="cross_origin_cookie"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(denied >= 3, `the refusals are counted: ${denied}`);
  } finally {
    await context.close();
    evil.statics.close();
  }
});

test('k. private messages: the recipient and the sender both see them; a name nobody uses is told so, by the server', { timeout: TEST_TIMEOUT }, async () => {
  const { a, a2, b, g, alice, bob } = people;
  assert.ok(a && b && g && a2, 'test c did not get to set up its people');
  // Guests may read the chat, not send private messages.
  assert.equal(await g.locator('#dm-send').isDisabled(), true);
  assert.equal(await text(g, 'inbox-status'), 'signed out');

  await b.fill('#dm-to', alice);
  await b.fill('#dm-text', 'psst, alice <i>x</i>');
  await b.click('#dm-send');
  await waitText(b, 'dm-result', (s) => s === `sent to ${alice}`, 'sent');
  const dm = { from: bob, to: alice, text: ': psst, alice <i>x</i>' };
  // Alice sees it on both her pages; bob sees what he sent, in his thread.
  await waitEqual(a, (p) => partsOf(p, 'inbox'), [{ ...dm, mine: false }], 'the message in alice\'s inbox');
  await waitEqual(a2, (p) => partsOf(p, 'inbox'), [{ ...dm, mine: false }], 'the message on alice\'s second page');
  await waitEqual(b, (p) => partsOf(p, 'inbox'), [{ ...dm, mine: true }], 'the message in bob\'s own thread');
  assert.equal(await a.locator('#inbox i').count(), 0, 'text stays text');

  // Alice answers; a name nobody uses is answered by the server, and
  // nothing is sent.
  await a.fill('#dm-to', bob);
  await a.fill('#dm-text', 'got it');
  await a.click('#dm-send');
  await waitText(a, 'dm-result', (s) => s === `sent to ${bob}`, 'sent');
  const reply = { from: alice, to: bob, text: ': got it' };
  await waitEqual(b, (p) => partsOf(p, 'inbox'), [{ ...dm, mine: true }, { ...reply, mine: false }], 'both, oldest first');
  const nobody = user('nobody');
  await b.fill('#dm-to', nobody);
  await b.fill('#dm-text', 'anyone?');
  await b.click('#dm-send');
  await waitText(b, 'dm-result', (s) => s === `nobody called ${nobody} is here`, 'the server\'s answer');
  assert.equal(await b.locator('#dm-result').getAttribute('class'), 'result bad');
  await sleep(300);
  assert.equal((await partsOf(b, 'inbox')).length, 2, 'nothing was sent');
  await a.screenshot({ path: join(SHOTS, 'demo-private.png'), fullPage: true });
  await b.screenshot({ path: join(SHOTS, 'demo-bob.png'), fullPage: true });

  // Bob's page may not read alice's inbox, with his token or without.
  const status = await b.evaluate(async (n) => (await fetch(`/topics/inbox.${n}/poll?timeout=0`)).status, alice);
  assert.equal(status, 401);
  // A bad name is refused by the page and by the server.
  await b.fill('#login-name', 'no spaces');
  await b.click('#login-send');
  await waitText(b, 'me-status', (s) => s.startsWith('a name is'), 'the refusal');
  const refused = await b.evaluate(async () => (await fetch('/demo/login', { method: 'POST', body: new URLSearchParams({ name: 'a.b' }) })).status);
  assert.equal(refused, 400);
  // On a narrow screen the cards stack.
  await a.setViewportSize({ width: 420, height: 900 });
  const widths = await a.evaluate(() => ({ page: document.documentElement.scrollWidth, screen: window.innerWidth }));
  assert.ok(widths.page <= widths.screen, `nothing wider than a narrow screen: ${JSON.stringify(widths)}`);
  await a.screenshot({ path: join(SHOTS, 'demo-narrow.png'), fullPage: true });
});

test('b. after a server restart on the same port the page resumes and is told it missed events', { timeout: TEST_TIMEOUT }, async () => {
  assert.ok(main, 'test a did not get to open the page');
  // Record every id the page shows, in order.
  await main.evaluate(() => {
    window.__ids = [];
    const el = document.getElementById('clock-last-id');
    new MutationObserver(() => window.__ids.push(el.textContent))
      .observe(el, { childList: true, characterData: true, subtree: true });
  });
  await main.waitForFunction(() => window.__ids.length >= 1, null, { timeout: WAIT });
  const opensBefore = Number(await text(main, 'clock-opens'));

  const port = server.port;
  const how = await stopServer(server);
  assert.equal(how.code, 0, `the server's exit after SIGTERM: ${JSON.stringify(how)}\n${server.log}`);
  await waitText(main, 'clock-status', (s) => s === 'reconnecting', 'status "reconnecting"');
  const last = await text(main, 'clock-last-id');
  assert.ok(isId(last), `last id before the restart: ${last}`);
  const idsBefore = await main.evaluate(() => window.__ids.length);

  server = await startServer(port);
  assert.equal(server.port, port, 'the new server listens on the old port');

  // The page comes back with Last-Event-ID from the old run; the new run's
  // clock topic has a new epoch, so the hub sends a gap signal, then its
  // whole backlog from the new run's first tick, then live ticks.
  await waitText(main, 'clock-gaps', (s) => s === '1', 'one gap signal');
  assert.match(await text(main, 'clock-gap'), new RegExp(`^asked for ${last}, `));
  await waitText(main, 'clock-last-id', (s) => isId(s) && isAfter(s, last), `an id after ${last}`);
  await waitText(main, 'clock-status', (s) => s === 'open', 'status "open"');
  assert.equal(await text(main, 'clock-opens'), String(opensBefore + 1), 'one reconnect');
  const ids = (await main.evaluate(() => window.__ids)).slice(idsBefore).map(parseId);
  assert.ok(ids.length >= 1, 'ticks after the restart');
  const epoch = ids[0][0];
  assert.ok(epoch > parseId(last)[0], `a new epoch: ${JSON.stringify(ids)}`);
  assert.equal(ids[0][1], 1, `the new run's ticks from its first: ${JSON.stringify(ids)}`);
  for (let i = 1; i < ids.length; i++) {
    assert.deepEqual(ids[i], [epoch, ids[i - 1][1] + 1], `ids ${JSON.stringify(ids)}`);
  }
  await main.screenshot({ path: join(SHOTS, 'demo-after-restart.png'), fullPage: true });
});

test('b2. a guest keeps its name in every window and across a restart of a server that keeps its data', { timeout: TEST_TIMEOUT }, async () => {
  const data = mkdtempSync(join(WORK, 'data-'));
  let own = await startServer(0, ['--data-dir', data]);
  const context = await browser.newContext();
  try {
    const open = async () => {
      const page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(`b2: ${e.message}`));
      const response = await page.goto(own.url, { timeout: WAIT });
      assert.equal(response?.status(), 200);
      await waitText(page, 'me-status', (s) => s === 'guest', 'a guest');
      return page;
    };
    const first = await open();
    const name = await text(first, 'me-name');
    assert.match(name, /^guest-\d+$/);
    const second = await open();
    assert.equal(await text(second, 'me-name'), name, 'a second window is the same guest');
    await second.close();
    // The server restarts on its port with its data: the demo's secret
    // was kept there, and the browser's cookie names the same guest.
    const port = own.port;
    const how = await stopServer(own);
    assert.equal(how.code, 0, `the server's exit after SIGTERM: ${JSON.stringify(how)}\n${own.log}`);
    own = await startServer(port, ['--data-dir', data]);
    await first.reload({ timeout: WAIT });
    await waitText(first, 'me-status', (s) => s === 'guest', 'a guest again');
    assert.equal(await text(first, 'me-name'), name, 'the same guest after the restart');
    // Another browser is another guest.
    const other = await browser.newContext();
    try {
      const page = await other.newPage();
      await page.goto(own.url, { timeout: WAIT });
      await waitText(page, 'me-status', (s) => s === 'guest', 'a guest');
      assert.notEqual(await text(page, 'me-name'), name);
    } finally {
      await other.close();
    }
  } finally {
    await context.close();
    await stopServer(own);
  }
});

test('the page threw no script errors', () => {
  assert.deepEqual(pageErrors, []);
});
