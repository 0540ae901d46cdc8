// Calls to the application's backend (client.rpc, the hub's rpc hook),
// in headless Chromium against a real `tether serve --hook-rpc` whose
// backend is a small Node HTTP server here: over POST /rpc before the
// client has a socket, over its WebSocket once it has one; a refusal
// and a timeout reject with their reason; a call cut by a disconnect is
// rejected, not sent again. By hand:
//
//   TETHER_BIN=target/release/tether node --test clients/js/test/rpc.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import {
  TEST_TIMEOUT, current, launch, servers, startProxy, startServer, stopServer, waitFor,
} from './harness.mjs';

const PAGE = `<!doctype html><meta charset="utf-8"><title>tether rpc test</title>
<script type="module">
import { Tether } from "/__test/tether-client.js";
const token = () => fetch("/__test/token?ttl=3600").then((r) => r.text());
window.client = new Tether(location.origin, { getToken: token, transports: ["ws"] });
// A call's outcome as plain data: its result, or its error's reason, status and message.
window.call = (method, data, options) =>
  client.rpc(method, data, options).then(
    (result) => ({ result }),
    (e) => ({ reason: e.reason, status: e.status, message: e.message }),
  );
window.openSocket = () => new Promise((resolve) => {
  window.sub = client.subscribe("rpc.page", { onState: (s) => s == "open" && resolve() });
});
window.ready = true;
</script>`;

// The backend: whoami echoes who called and how, refuse refuses, held
// answers only when the test lets it (after the calls gave up on it).
const asked = [];
const held = [];
const backend = createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    const q = JSON.parse(body);
    asked.push(q.method);
    const answer = (a) => res.end(JSON.stringify(a));
    if (q.method == 'whoami') answer({ allow: true, data: { subject: q.subject, transport: q.transport, data: q.data } });
    else if (q.method == 'refuse') answer({ allow: false, status: 404, reason: 'no such method' });
    else held.push(() => answer({ allow: true, data: 'late' }));
  });
});

let proxy;
let browser;
let page;
let pageErrors = [];

before(async () => {
  await new Promise((resolve) => backend.listen(0, '127.0.0.1', resolve));
  const hook = `http://127.0.0.1:${backend.address().port}/tether/rpc`;
  current.server = await startServer(['--hook-rpc', hook, '--hook-timeout', '5']);
  proxy = await startProxy(current.server.port, PAGE);
  ({ browser, page, pageErrors } = await launch(proxy));
});

after(async () => {
  held.forEach((answer) => answer());
  await page?.evaluate(() => window.client.close()).catch(() => {});
  if (browser) await browser.close();
  if (proxy) { proxy.cut(); proxy.server.close(); }
  for (const s of [...servers]) await stopServer(s);
  backend.closeAllConnections();
  backend.close();
});

const call = (method, data, options) => page.evaluate(([m, d, o]) => window.call(m, d, o), [method, data, options]);

test('client.rpc: over POST /rpc, then over the WebSocket; refusals and timeouts reject; a cut call is not resent', { timeout: TEST_TIMEOUT }, async () => {
  // No socket yet: over HTTP, with the token.
  assert.deepEqual(await call('whoami', { a: [1, 'x'] }), { result: { subject: 'tester', transport: 'http', data: { a: [1, 'x'] } } });
  assert.ok(proxy.seen.includes('POST /rpc'), proxy.seen.join(', '));
  // With a socket: over it.
  await page.evaluate(() => window.openSocket());
  const posts = proxy.seen.filter((s) => s == 'POST /rpc').length;
  assert.deepEqual(await call('whoami', [2]), { result: { subject: 'tester', transport: 'websocket', data: [2] } });
  assert.deepEqual(await call('refuse'), { reason: 'rpc', status: 404, message: 'no such method' });
  assert.equal((await call('held', null, { timeout: 300 })).reason, 'timeout');
  assert.equal(proxy.seen.filter((s) => s == 'POST /rpc').length, posts, 'the socket carried them');
  // Cut while a call waits: rejected, and asked of the backend once.
  const cut = page.evaluate(() => window.call('held', 'cut', { timeout: 30000 }));
  await waitFor('the cut call at the backend', () => held.length == 2);
  proxy.cut();
  assert.equal((await cut).reason, 'network');
  await page.evaluate(() => new Promise((resolve) => {
    const check = () => (window.sub.state == 'open' ? resolve() : setTimeout(check, 50));
    check();
  }));
  assert.deepEqual(await call('whoami', 3), { result: { subject: 'tester', transport: 'websocket', data: 3 } });
  assert.deepEqual(asked, ['whoami', 'whoami', 'refuse', 'held', 'held', 'whoami']);
});

test('the page threw no script errors', () => {
  assert.deepEqual(pageErrors, []);
});
