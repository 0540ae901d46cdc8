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
import { appendFileSync, mkdirSync, mkdtempSync } from 'node:fs';
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

/** Starts `tether serve` on `port` (0: a free one); resolves once it listens. */
function startOnce(port) {
  return new Promise((resolve, reject) => {
    const tlsArgs = TLS ? ['--tls-cert', TLS.cert, '--tls-key', TLS.key] : [];
    const proc = spawn(BIN, ['serve', '--addr', '127.0.0.1', '--port', String(port),
      '--app', 'demo', '--memory', '--log-level', 'info', ...tlsArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
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
async function startServer(port = 0) {
  let lastError;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      return await startOnce(port);
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
  // The room's /topics/chat.ROOM/events stream is subscribed once its
  // response arrives.
  const chatEvents = page.waitForResponse((r) => /\/topics\/chat\.[^/]+\/events$/.test(r.url()),
    { timeout: WAIT });
  chatEvents.catch(() => {}); // awaited below, unless the page itself fails
  const response = await page.goto(new URL(path, server.url).href, { timeout: WAIT });
  assert.equal(response?.status(), 200, `GET ${path}`);
  assert.equal((await chatEvents).status(), 200, `GET /topics/chat.ROOM/events from ${path}`);
  return page;
}

const text = (page, id) => page.locator(`#${id}`).textContent();

/** Waits until element `id`'s text satisfies `pred` (a predicate on the string). */
async function waitText(page, id, pred, what) {
  const deadline = Date.now() + WAIT;
  let last;
  while (Date.now() < deadline) {
    last = await text(page, id);
    if (pred(last)) return last;
    await sleep(100);
  }
  throw new Error(`#${id}: waited ${WAIT / 1000} s for ${what}; it shows ${JSON.stringify(last)}`);
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

test('c. chat between two browser contexts through a hub topic, over WebSocket and SSE', { timeout: TEST_TIMEOUT }, async () => {
  const room = `browser-${process.pid}-${Date.now()}`;
  const contexts = [await browser.newContext(), await browser.newContext()];
  try {
    const [a, b] = [await openPage(contexts[0], `/?room=${room}`),
      await openPage(contexts[1], `/?room=${room}`)];
    for (const p of [a, b]) {
      await waitText(p, 'chat-status', (s) => s === 'open', 'status "open"');
      assert.equal(await text(p, 'chat-room'), room);
      assert.equal(await text(p, 'chat-sse-count'), '0');
    }
    const send = async (page, message) => {
      await page.fill('#chat-input', message);
      await page.click('#chat-send');
      assert.equal(await page.inputValue('#chat-input'), '', 'the input is cleared after sending');
    };
    const logOf = (page) => page.locator('#chat-log li').allTextContents();
    const waitLog = async (page, message, who) => {
      const deadline = Date.now() + WAIT;
      while (Date.now() < deadline) {
        if ((await logOf(page)).includes(message)) return;
        await sleep(100);
      }
      throw new Error(`${who}'s chat-log never showed ${JSON.stringify(message)}: ${JSON.stringify(await logOf(page))}`);
    };

    const hello = `hello from A \u2014 caf\u00e9 \u2713 ${Date.now()}`;
    await send(a, hello);
    await waitLog(b, hello, 'B');
    await waitLog(a, hello, 'A');
    for (const p of [a, b]) await waitText(p, 'chat-sse-count', (s) => s === '1', 'count 1');

    const reply = `and back from B ${Date.now()}`;
    await send(b, reply);
    await waitLog(a, reply, 'A');
    await waitLog(b, reply, 'B');
    for (const p of [a, b]) await waitText(p, 'chat-sse-count', (s) => s === '2', 'count 2');
    assert.deepEqual(await logOf(a), [reply, hello], 'newest first, nothing else');
    assert.deepEqual(await logOf(b), [reply, hello]);

    // A page in another room hears none of it.
    assert.ok(main, 'test a did not get to open the page');
    assert.deepEqual(await main.locator('#chat-log li').allTextContents(), []);
    assert.equal(await text(main, 'chat-sse-count'), '0');

    const shot = join(SHOTS, 'demo-chat.png');
    await a.screenshot({ path: shot, fullPage: true });
    await a.setViewportSize({ width: 420, height: 900 });
    await a.screenshot({ path: join(SHOTS, 'demo-narrow.png'), fullPage: true });
    console.log(`# screenshots: ${shot}, ${join(SHOTS, 'demo-narrow.png')}`);
  } finally {
    for (const c of contexts) await c.close();
  }
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

test('the page threw no script errors', () => {
  assert.deepEqual(pageErrors, []);
});
