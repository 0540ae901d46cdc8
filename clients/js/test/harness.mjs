// What the integration tests in headless Chromium share: a `tether
// serve` of their own (durable, with JSON Web Tokens), a TCP proxy that
// serves the test page and can cut or refuse connections, publishing
// straight to the server, and waiting. Each test file that imports it
// runs in its own process, with its own server.
//
// Environment: TETHER_BIN (required), CHROMIUM (default /usr/bin/chromium),
// TETHER_JS_WORK (a scratch directory; server pids go to its `pids` file).

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.TETHER_BIN;
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const WORK = process.env.TETHER_JS_WORK || mkdtempSync(join(tmpdir(), 'tether-js-'));
export const WAIT = 15_000;
export const TEST_TIMEOUT = 60_000;
if (!BIN) throw new Error('TETHER_BIN is not set: the tether binary to test');

const SECRET = randomBytes(32).toString('hex');
const SECRET_FILE = join(WORK, 'jwt.secret');
writeFileSync(SECRET_FILE, SECRET);
const DATA_DIR = join(WORK, 'data');
mkdirSync(DATA_DIR, { recursive: true });

/**
 * An HS256 token for the server's --jwt-secret-file: every topic, to read
 * and publish. Its iat is a second back, as issuers do for clock skew: the
 * server runs with --jwt-leeway 0 (for the expiry tests), and its clock
 * (the wall clock read at its start, then the monotonic clock) may read a
 * few milliseconds behind this process's wall clock after the system
 * clock is adjusted, which would make an iat of this second "in the
 * future" to it.
 */
export function mint(ttl, sub = 'tester') {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({
    sub, aud: 'tether', iat: now - 1, exp: now + ttl, tether: { sub: ['*'], pub: ['*'] },
  })}`;
  return `${body}.${createHmac('sha256', SECRET).update(body).digest('base64url')}`;
}

// ---------------------------------------------------------------------------
// The server

export const servers = new Set();
process.on('exit', () => { for (const s of servers) try { s.proc.kill('SIGKILL'); } catch { /* gone */ } });

/** `tether serve --app hub` on a free port, durable under DATA_DIR, `state.*` sending deltas, with `extra` options; resolves once it listens. */
export function startServer(extra = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, ['serve', '--addr', '127.0.0.1', '--port', '0', '--app', 'hub', '--log-level', 'warn',
      '--data-dir', DATA_DIR, '--jwt-secret-file', SECRET_FILE, '--jwt-audience', 'tether', '--jwt-leeway', '0',
      '--private', 'priv.*', '--namespace', 'state.* delta=on', '--namespace', 'now.* latest=on', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
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
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`no start in 10 s:\n${server.log}`)); }, 10_000);
    proc.stderr.on('data', (d) => { server.log += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /^tether listening on (http:\/\/127\.0\.0\.1:(\d+)\/)/m.exec(out);
      if (m && !server.port) {
        clearTimeout(timer);
        [, server.url] = m;
        server.port = Number(m[2]);
        resolve(server);
      }
    });
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then(({ code, signal }) => { clearTimeout(timer); reject(new Error(`exited (${code ?? signal}) before listening:\n${server.log}`)); });
  });
}

/** SIGTERM to the server's own pid, SIGKILL after 10 s. */
export async function stopServer(server) {
  if (server.exited) return server.exited;
  server.proc.kill('SIGTERM');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 10_000);
  const how = await server.waitExit();
  clearTimeout(timer);
  return how;
}

// ---------------------------------------------------------------------------
// The proxy: one request per upstream connection (it rewrites Connection to
// close, upgrades excepted) so that it sees every request's head.

export function startProxy(upstreamPort, page) {
  const proxy = { upstream: upstreamPort, blockWs: false, blockSse: false, pairs: new Set(), seen: [], port: 0 };
  const local = (socket, status, type, body) => {
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`
      + 'Cache-Control: no-store\r\nConnection: close\r\n\r\n' + body);
  };
  proxy.server = createServer((client) => {
    let head = Buffer.alloc(0);
    client.on('error', () => {});
    const onData = (d) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      client.off('data', onData);
      client.pause();
      const [requestLine, ...fields] = head.subarray(0, end).toString('latin1').split('\r\n');
      const [method, path] = requestLine.split(' ');
      const upgrade = fields.some((f) => /^upgrade:\s*websocket/i.test(f));
      proxy.seen.push(`${method} ${path.split('?')[0]}${upgrade ? ' (upgrade)' : ''}`);
      if (path === '/__test/') return local(client, '200 OK', 'text/html; charset=utf-8', page);
      if (path === '/__test/tether-client.js') {
        return local(client, '200 OK', 'text/javascript', readFileSync(join(here, '..', 'dist', 'tether-client.min.js'), 'utf8'));
      }
      if (path.startsWith('/__test/token')) {
        return local(client, '200 OK', 'text/plain', mint(Number(new URL(path, 'http://x').searchParams.get('ttl'))));
      }
      if ((upgrade && proxy.blockWs) || (/\/events(\?|$)/.test(path) && proxy.blockSse)) {
        return local(client, '403 Forbidden', 'text/plain', 'blocked by the proxy\n');
      }
      const rewritten = upgrade ? fields : [...fields.filter((f) => !/^connection:/i.test(f)), 'Connection: close'];
      const upstream = connect(proxy.upstream, '127.0.0.1');
      const pair = [client, upstream];
      proxy.pairs.add(pair);
      const drop = () => { proxy.pairs.delete(pair); client.destroy(); upstream.destroy(); };
      upstream.on('error', drop);
      upstream.on('close', drop);
      client.on('close', drop);
      upstream.on('connect', () => {
        upstream.write(Buffer.concat([Buffer.from(`${[requestLine, ...rewritten].join('\r\n')}\r\n\r\n`, 'latin1'), head.subarray(end + 4)]));
        client.pipe(upstream);
        upstream.pipe(client);
      });
    };
    client.on('data', onData);
  });
  proxy.cut = () => { for (const [a, b] of [...proxy.pairs]) { a.destroy(); b.destroy(); } proxy.pairs.clear(); };
  return new Promise((resolve) => proxy.server.listen(0, '127.0.0.1', () => {
    proxy.port = proxy.server.address().port;
    proxy.url = `http://127.0.0.1:${proxy.port}`;
    resolve(proxy);
  }));
}

/** Headless Chromium on a fresh profile, with one page at the proxy's test page; its script errors and console lines are kept. */
export async function launch(proxy) {
  const profile = mkdtempSync(join(WORK, 'profile-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000,
  });
  const page = await browser.newPage();
  const pageErrors = [];
  const consoleLines = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  const status = (await page.goto(`${proxy.url}/__test/`))?.status();
  if (status !== 200) throw new Error(`the test page answered ${status}`);
  await page.waitForFunction(() => window.ready === true, null, { timeout: WAIT });
  return { browser, page, pageErrors, consoleLines };
}

// ---------------------------------------------------------------------------
// Publishing from the test, straight to the server, with a key so that a
// retry (the server restarting) publishes once.

/** The server publishes go to: a test that restarts its server sets `current.server`. */
export const current = { server: null };
const publisherToken = mint(3600, 'publisher');
const counter = { published: 0 };

export async function publishOnce(topic, data, key) {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(`${current.server.url}topics/${topic}`, {
        method: 'POST', body: data, headers: { Authorization: `Bearer ${publisherToken}`, 'Tether-Publish-Id': key },
      });
      if (r.ok) return (await r.json()).id;
      if (r.status !== 503) throw new Error(`publish: ${r.status} ${await r.text()}`);
    } catch (e) {
      if (attempt > 100 || /publish: /.test(e.message)) throw e;
    }
    await sleep(100);
  }
}

/** Publishes `bytes` (a Uint8Array) as a binary event; its id. */
export async function publishBytes(topic, bytes) {
  const r = await fetch(`${current.server.url}topics/${topic}`, {
    method: 'POST', body: bytes, headers: { Authorization: `Bearer ${publisherToken}`, 'Content-Type': 'application/octet-stream' },
  });
  if (!r.ok) throw new Error(`publish: ${r.status} ${await r.text()}`);
  return (await r.json()).id;
}

/** Publishes `n` events, one every `every` ms (`during(i)` first); their ids, in order. */
export async function publishMany(topic, n, every, during = () => {}) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    await during(i);
    const data = `${topic}#${++counter.published}`;
    ids.push(`${await publishOnce(topic, data, `k${counter.published}`)} ${data}`);
    if (every) await sleep(every);
  }
  return ids;
}

export async function waitFor(what, pred, wait = WAIT) {
  const deadline = Date.now() + wait;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`waited ${wait / 1000} s for ${what}`);
    await sleep(50);
  }
}
