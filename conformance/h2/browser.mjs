// Headless Chromium over https:// against `tether serve --app demo
// --tls-self-signed`: one page opens ten EventSources on distinct topics
// and a WebSocket; every topic gets a publish. Over HTTP/2 all eleven
// receive at once on one connection; with `--http2 off` the seventh
// EventSource waits behind Chromium's six connections per host. Started
// by browser.sh beside this file (which provides Chromium, playwright-core
// and the binary).
//
// Environment:
//   TETHER_BIN  the tether binary (required)
//   CHROMIUM    the browser (default /usr/bin/chromium)
//   WORK        a scratch directory (required; server pids go to WORK/pids)
//
// Prints "h2-browser: N passed, M failed" last.

import { execFileSync } from 'node:child_process';
import { request } from 'node:https';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

import { CHROMIUM_FLAGS, freshProfile, startServer, stopServer, tally, watchedPage } from '../browser/harness.mjs';

// playwright-core from conformance/browser's node_modules: one copy.
const require = createRequire(new URL('../browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const BIN = process.env.TETHER_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WORK = process.env.WORK;
if (!BIN || !WORK) throw new Error('TETHER_BIN and WORK must be set');

const TOKEN = 'h2-browser-token';
const SOURCES = 10;
// Chromium opens at most six HTTP/1.1 connections per host.
const HTTP1_LIMIT = 6;

const { check, summary } = tally('h2-browser');

/** Starts the server with `extra` arguments; resolves with it once it listens. */
async function startHub(extra) {
  const server = await startServer({
    bin: BIN,
    work: WORK,
    args: ['--app', 'demo', '--memory', '--addr', '127.0.0.1', '--port', '0', '--threads', '1',
      '--tls-self-signed', '--publish-token', TOKEN, '--log-level', 'warn', ...extra],
    wait: [/tether listening on (https:\/\/127\.0\.0\.1:(\d+)\/)/],
  });
  const [, url, port] = server.matches[0];
  return { ...server, url, port: Number(port) };
}

/**
 * Established TCP connections to the server's port (its side of them),
 * and what each has received (in `detail`). Chromium sometimes holds a
 * spare connection to a host that has done its TLS handshake and nothing
 * else (some 2 KB received, a ClientHello and a Finished): the HTTP/2
 * check counts sessions by the server's own count instead.
 */
function connections(port) {
  const out = execFileSync('ss', ['-Htni', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  const lines = out.split('\n').filter((l) => l.trim());
  // With -i, each connection is its address line followed by an indented
  // line of TCP info; bytes_received is absent while it is zero.
  const sockets = [];
  for (const line of lines) {
    if (/^\s/.test(line) && sockets.length) sockets[sockets.length - 1].info = line.trim();
    else sockets.push({ address: line.trim(), info: '' });
  }
  const received = (s) => Number(/bytes_received:(\d+)/.exec(s.info)?.[1] ?? 0);
  return {
    count: sockets.length,
    detail: sockets.map((s) => `${s.address.split(/\s+/).slice(-1)[0]} received ${received(s)} B`).join('; '),
  };
}

/** The server's count of connections that became HTTP/2 sessions (its /metrics, read over HTTP/1.1). */
function h2Sessions(server) {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}metrics`, { agent: false, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(Number(/^tether_h2_connections_total (\d+)$/m.exec(body)?.[1] ?? NaN)));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A publish over HTTP/1.1 on a connection of its own (closed after). */
function publish(server, topic, body) {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}topics/${topic}`, {
      method: 'POST', agent: false, rejectUnauthorized: false,
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'text/plain', Connection: 'close' },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One run: a page of the server's origin opens the EventSources and the
 * WebSocket; every topic gets a publish; returns what the page saw.
 */
async function run(browser, server, label) {
  // A WebSocket over HTTP/2 (RFC 8441) is answered 200, over HTTP/1.1 101.
  const { page, protocols, wsStatus } = await watchedPage(browser);
  const landing = await page.goto(`${server.url}healthz`);
  check(`${label}: the page loads`, landing?.status() === 200, `status ${landing?.status()}`);
  const topics = Array.from({ length: SOURCES }, (_, i) => `h2b.${label}.${i + 1}`);
  const wsTopic = `h2b.${label}.ws`;
  await page.evaluate(({ topics, wsTopic }) => {
    window.seen = { open: topics.map(() => false), data: topics.map(() => []), ws: [], wsOpen: false };
    window.sources = topics.map((t, i) => {
      const es = new EventSource(`/topics/${t}/events`);
      es.onopen = () => { window.seen.open[i] = true; };
      es.onmessage = (e) => { window.seen.data[i].push(e.data); };
      return es;
    });
    const ws = new WebSocket(`wss://${location.host}/topics/${wsTopic}/ws`);
    ws.onopen = () => { window.seen.wsOpen = true; };
    ws.onmessage = (e) => { window.seen.ws.push(String(e.data)); };
    window.socket = ws;
  }, { topics, wsTopic });
  const seen = () => page.evaluate(() => window.seen);
  // Wait for everything to open, or (over HTTP/1.1) for the time it
  // would take.
  const deadline = Date.now() + 5_000;
  let state = await seen();
  while (Date.now() < deadline && !(state.open.every(Boolean) && state.wsOpen)) {
    await sleep(100);
    state = await seen();
  }
  const openConnections = connections(server.port);
  const sessions = await h2Sessions(server);
  const statuses = [];
  for (const [i, topic] of topics.entries()) statuses.push(await publish(server, topic, `to ${i + 1}`));
  statuses.push(await publish(server, wsTopic, 'to the socket'));
  check(`${label}: every publish answered 200`, statuses.every((s) => s === 200), statuses.join(' '));
  // Four seconds for the events to come (far more than they take).
  const until = Date.now() + 4_000;
  const got = (s) => s.data.map((d, i) => d.some((x) => x.includes(`to ${i + 1}`)));
  state = await seen();
  while (Date.now() < until && !(got(state).every(Boolean) && state.ws.some((m) => m.includes('to the socket')))) {
    await sleep(100);
    state = await seen();
  }
  const result = {
    open: state.open,
    received: got(state),
    wsOpen: state.wsOpen,
    wsReceived: state.ws.some((m) => m.includes('to the socket')),
    openConnections: openConnections.count,
    h2Sessions: sessions,
    connections: openConnections.detail,
    wsStatus: wsStatus(),
    protocols: topics.map((t) => protocols.get(`${server.url}topics/${t}/events`)),
  };
  await page.evaluate(() => { window.sources.forEach((es) => es.close()); window.socket.close(); });
  await page.close();
  return result;
}

const server2 = await startHub([]);
const server1 = await startHub(['--http2', 'off']);
const browser = await chromium.launchPersistentContext(freshProfile(WORK), {
  executablePath: CHROMIUM,
  headless: true,
  ignoreHTTPSErrors: true,
  args: [...CHROMIUM_FLAGS, '--disable-quic', '--ignore-certificate-errors'],
  timeout: 60_000,
});
try {
  console.log(`# chromium ${browser.browser()?.version() ?? ''}, ${server2.url} (HTTP/2) and ${server1.url} (--http2 off)`);

  const h2 = await run(browser, server2, 'h2');
  console.log(`# over HTTP/2: ${JSON.stringify(h2)}`);
  check('h2: all ten EventSources open at once', h2.open.every(Boolean), JSON.stringify(h2.open));
  check('h2: all ten EventSources receive their event', h2.received.every(Boolean), JSON.stringify(h2.received));
  check('h2: the WebSocket opens and receives its message', h2.wsOpen && h2.wsReceived);
  check('h2: every EventSource went over HTTP/2', h2.protocols.every((p) => p === 'h2'), h2.protocols.join(' '));
  check('h2: the WebSocket went over HTTP/2 (answered 200, RFC 8441)', h2.wsStatus === 200, `status ${h2.wsStatus}`);
  // Every EventSource and the WebSocket went over HTTP/2 (above), and the
  // server saw one connection become an HTTP/2 session: one connection
  // carried them all. A connection that never spoke HTTP is not one.
  check('h2: one connection carries them all', h2.h2Sessions === 1,
    `${h2.h2Sessions} HTTP/2 sessions; connections: ${h2.connections}`);

  const h1 = await run(browser, server1, 'http1');
  console.log(`# with --http2 off: ${JSON.stringify(h1)}`);
  check('http1: every EventSource went over HTTP/1.1',
    h1.protocols.every((p) => p === undefined || p === 'http/1.1'), h1.protocols.join(' '));
  check(`http1: the first ${HTTP1_LIMIT} EventSources receive their event`,
    h1.received.slice(0, HTTP1_LIMIT).every(Boolean), JSON.stringify(h1.received));
  check(`http1: the ${HTTP1_LIMIT + 1}th EventSource is stalled (never opened, no event in 4 s)`,
    !h1.open[HTTP1_LIMIT] && !h1.received[HTTP1_LIMIT], JSON.stringify(h1.open));
  check('http1: the WebSocket, on a connection of its own, still works', h1.wsOpen && h1.wsReceived);
  check(`http1: ${HTTP1_LIMIT} connections for the EventSources, one for the WebSocket`,
    h1.openConnections === HTTP1_LIMIT + 1, `${h1.openConnections} connections: ${h1.connections}`);
  check('http1: the WebSocket went over HTTP/1.1 (answered 101)', h1.wsStatus === 101, `status ${h1.wsStatus}`);
} catch (e) {
  check('the run', false, e.stack);
} finally {
  await browser.close();
  await stopServer(server2);
  await stopServer(server1);
}

summary();
