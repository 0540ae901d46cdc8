// The admin page on a node whose topics are on a bus: `tether serve --app
// hub --redis redis://...` against a `redis-server` started here (a child
// process on a free loopback port, no persistence, killed at the end).
// Signed in, the page lists a topic published to over the bus and its
// "Show" lists the topic's last events, read from the Redis stream
// (`GET /api/history`), with the ids the publishers got, in order, typed
// as published. Skipped, saying so, when `redis-server` is not installed.
// Called by admin.mjs with its browser.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { reader, until } from './admin.actions.mjs';
import { startServer, stopServer } from './harness.mjs';

const WAIT = 20_000;

/** A loopback port nothing listens on now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Resolves with whether a TCP connection to `port` is taken. */
function accepts(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true); });
    socket.on('error', () => resolve(false));
  });
}

/** `redis-server` on a free port, without persistence; `null` if it is not installed. */
async function startRedis(work) {
  if (spawnSync('redis-server', ['--version']).status !== 0) return null;
  const port = await freePort();
  const dir = join(work, 'redis');
  mkdirSync(dir, { recursive: true });
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await accepts(port)); i++) await sleep(100);
  return { proc, url: `redis://127.0.0.1:${port}/` };
}

/**
 * The checks: `bin` and `work` as admin.mjs has them, `browser` its
 * Chromium, `check` its tally, `tokens` the metrics and publish tokens,
 * `fetchOnce` its one-request helper.
 */
export async function checkOnRedis({ bin, work, browser, check, tokens, fetchOnce }) {
  const redis = await startRedis(work);
  if (!redis) {
    console.log('# on Redis: SKIPPED, redis-server is not installed (apt-get install redis-server)');
    return;
  }
  let server;
  const opened = [];
  try {
    server = await startServer({
      bin,
      work,
      args: ['--app', 'hub', '--redis', redis.url, '--redis-prefix', 'admin-page:', '--addr', '127.0.0.1', '--port', '0',
        '--threads', '2', '--metrics-listen', '127.0.0.1:0', '--metrics-token', tokens.metrics,
        '--publish-token', tokens.publish],
      wait: [/tether listening on (http:\/\/127\.0\.0\.1:\d+\/)/, /metrics on (http:\/\/127\.0\.0\.1:\d+\/)metrics/],
    });
    const url = server.matches[0][1];
    const admin = server.matches[1][1];
    const auth = { Authorization: `Bearer ${tokens.publish}` };
    // A subscriber, so that the node follows the topic (a node on a bus
    // lists the topics it follows).
    const subscriber = reader(`${url}topics/bus.news/events`);
    opened.push(subscriber);
    check('on Redis: a subscriber is let in', (await subscriber.status) === 200);
    const ids = [];
    for (const [data, type] of [['one on the bus', null], ['two on the bus', 'alert'], ['three on the bus', null]]) {
      const item = { topic: 'bus.news', data, ...(type ? { type } : {}) };
      let answer;
      // Until the node's Redis connection is up: 503 before.
      for (let i = 0; i < 100; i++) {
        answer = await fetchOnce(`${url}api/publish`, {
          method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ items: [item] }),
        });
        if (answer.status === 200) break;
        await sleep(100);
      }
      ids.push(JSON.parse(answer.body).results?.[0]?.id);
    }
    check('on Redis: three events published', ids.every(Boolean), JSON.stringify(ids));

    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${admin}admin`, { timeout: WAIT });
    await page.fill('#token', tokens.metrics);
    await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/admin' && r.request().method() === 'GET', { timeout: WAIT }),
      page.click('button[type=submit]'),
    ]);
    await page.click('#topics-refresh');
    const row = page.locator('#topics-table tbody tr', { hasText: 'bus.news' });
    check('on Redis: the topic is listed', await until(async () => (await row.count()) === 1));
    await row.getByRole('button', { name: 'Show' }).click();
    const shown = await until(async () => (await page.locator('#detail-events li').count()) === 3, WAIT);
    const events = await page.locator('#detail-events li').allTextContents();
    const expected = [`${ids[0]} message: one on the bus`, `${ids[1]} alert: two on the bus`,
      `${ids[2]} message: three on the bus`];
    check('on Redis: "Show" lists the topic\'s last events from the bus, with their ids, types and order',
      shown && JSON.stringify(events) === JSON.stringify(expected), JSON.stringify(events));
    check('on Redis: no page error', errors.length === 0, errors.join(' | '));
    await context.close();
  } finally {
    for (const o of opened) o.close();
    if (server) await stopServer(server);
    redis.proc.kill('SIGKILL');
  }
}
