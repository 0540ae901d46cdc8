// Headless Chromium over HTTP/3 against `tether serve --app demo
// --http3 on` with a certificate made for the test (browser.sh):
//
// 1. Forced QUIC (--origin-to-force-quic-on=127.0.0.1:PORT): a page of
//    the server signs in (the token cookie), opens EventSources on several
//    public topics and on the user's private topic (its credential: the
//    cookie), publishes to each with fetch, and every event must arrive,
//    once and in order, over h3 (CDP's response protocol, and the
//    navigation's nextHopProtocol). A WebSocket beside them goes over
//    HTTP/3 as RFC 9220's extended CONNECT (answered 200) when Chromium's
//    EnableWebsocketsOverHttp3 feature is on (it is off by default in
//    Chromium 156: a WebSocket then takes HTTP/1.1 even to a QUIC origin).
// 2. Another origin (another port of 127.0.0.1: the same site, so the
//    demo's SameSite=Lax cookie goes with its credentialed requests): its
//    EventSource and long poll that carry the cookie are refused over h3
//    as over HTTP/1.1 and HTTP/2 (the server's cross_origin_cookie count
//    rises by them).
// 3. Alt-Svc: a browser not forced onto QUIC loads the page over HTTP/2,
//    reads `Alt-Svc: h3=":PORT"`, and its next load and an EventSource go
//    over h3. Chromium takes an Alt-Svc to QUIC only when the certificate
//    chains to a known root, or for the hosts named in
//    --origin-to-force-quic-on: the browser is forced onto QUIC for
//    another port of 127.0.0.1 that nothing asks for, which lets the
//    test's certificate count for 127.0.0.1 and leaves the server's origin
//    to Alt-Svc.
//
// Environment:
//   TETHER_BIN  the tether binary (required)
//   CHROMIUM    the browser (default /usr/bin/chromium)
//   WORK        a scratch directory (required; server pids go to WORK/pids)
//   TLS_CERT, TLS_KEY  the certificate (PEM, for 127.0.0.1) and its key
//   TLS_SPKI    base64 of the SHA-256 of the certificate's public key
//
// Prints "h3-browser: N passed, M failed" last.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, request } from 'node:https';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

import { CHROMIUM_FLAGS, freshProfile, startServer, stopServer, tally, watchedPage } from '../browser/harness.mjs';

// playwright-core from conformance/browser's node_modules: one copy.
const require = createRequire(new URL('../browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const { TETHER_BIN: BIN, WORK, TLS_CERT, TLS_KEY, TLS_SPKI } = process.env;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!BIN || !WORK || !TLS_CERT || !TLS_KEY || !TLS_SPKI) {
  throw new Error('TETHER_BIN, WORK, TLS_CERT, TLS_KEY and TLS_SPKI must be set');
}

const TOKEN = 'h3-browser-token';
const USER = 'alice';
const TOPICS = 6;
const EVENTS = 3;
const WAIT = 10_000;
// A port of 127.0.0.1 that nothing asks for (part 3).
const UNUSED_PORT = 1;
const { check, summary } = tally('h3-browser');

/** `tether serve --http3 on` over the test's certificate. */
async function startHub() {
  const server = await startServer({
    bin: BIN,
    work: WORK,
    args: ['--app', 'demo', '--memory', '--addr', '127.0.0.1', '--port', '0', '--threads', '1',
      '--tls-cert', TLS_CERT, '--tls-key', TLS_KEY, '--http3', 'on', '--publish-token', TOKEN,
      '--log-level', 'warn'],
    wait: [/tether listening on (https:\/\/127\.0\.0\.1:(\d+)\/)/],
  });
  const [, url, port] = server.matches[0];
  return { ...server, url, port: Number(port) };
}

/** One GET over HTTP/1.1 on a connection of its own: the body. */
function get(url) {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, ca: readFileSync(TLS_CERT) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The server's count of credentials refused because a cookie came from another origin. */
async function crossOriginRefusals(hub) {
  const metrics = await get(`${hub.url}metrics`);
  return Number(/^tether_auth_denied_total\{reason="cross_origin_cookie"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
}

/** The page of the other origin: it only needs to exist (the test drives it). */
function startOtherOrigin() {
  const statics = createServer({ cert: readFileSync(TLS_CERT), key: readFileSync(TLS_KEY) }, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><meta charset="utf-8"><title>another origin</title>');
  });
  return new Promise((resolve) => {
    statics.listen(0, '127.0.0.1', () => resolve({ statics, origin: `https://127.0.0.1:${statics.address().port}` }));
  });
}

/** A Chromium that trusts the test's certificate, with these flags besides. */
function launch(flags) {
  return chromium.launchPersistentContext(freshProfile(WORK), {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, `--ignore-certificate-errors-spki-list=${TLS_SPKI}`, ...flags],
    timeout: 60_000,
  });
}

/** Polls `read` (in Node) every 100 ms until `done` of its value or `ms` pass; the last value. */
async function waitFor(read, done, ms = WAIT) {
  const until = Date.now() + ms;
  let value = await read();
  while (!done(value) && Date.now() < until) {
    await sleep(100);
    value = await read();
  }
  return value;
}

/** The navigation's protocol as the page itself sees it. */
function navigationProtocol(page) {
  return page.evaluate(() => performance.getEntriesByType('navigation')[0]?.nextHopProtocol);
}

/**
 * Part 1: a page of the server's origin, every request forced over QUIC.
 * Returns the page (signed in) for part 2.
 */
async function sameOrigin(browser, hub) {
  const watched = await watchedPage(browser);
  const { page, protocols } = watched;
  const landing = await page.goto(`${hub.url}healthz`);
  check('forced: the page loads', landing?.status() === 200, `status ${landing?.status()}`);
  const nav = await navigationProtocol(page);
  check('forced: the page came over h3 (nextHopProtocol and CDP)',
    nav === 'h3' && protocols.get(`${hub.url}healthz`) === 'h3', `${nav} / ${protocols.get(`${hub.url}healthz`)}`);

  const login = await page.evaluate(async (name) => {
    const r = await fetch('/demo/login', { method: 'POST', body: new URLSearchParams({ name }) });
    return { status: r.status, body: await r.text() };
  }, USER);
  check('forced: the sign-in answers 200 and sets the token cookie', login.status === 200, JSON.stringify(login));

  const topics = Array.from({ length: TOPICS }, (_, i) => `h3b.${i + 1}`);
  const all = [...topics, `user.${USER}`];
  await page.evaluate((all) => {
    window.seen = { open: all.map(() => false), data: all.map(() => []), errors: all.map(() => 0) };
    window.sources = all.map((topic, i) => {
      const es = new EventSource(`/topics/${topic}/events`);
      es.onopen = () => { window.seen.open[i] = true; };
      es.onmessage = (e) => { window.seen.data[i].push(e.data); };
      es.onerror = () => { window.seen.errors[i] += 1; };
      return es;
    });
  }, all);
  const opened = await waitFor(() => page.evaluate(() => window.seen.open), (o) => o.every(Boolean));
  check(`forced: ${all.length} EventSources open (${TOPICS} public topics, the private user.${USER} by its cookie)`,
    opened.every(Boolean), JSON.stringify(opened));

  // Publishes from the page: fetch over the same QUIC connection.
  const published = await page.evaluate(async ({ all, events, token }) => {
    const statuses = [];
    for (let n = 1; n <= events; n++) {
      for (const topic of all) {
        const r = await fetch(`/topics/${topic}`, {
          method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'text/plain' },
          body: `${topic} #${n}`,
        });
        statuses.push(r.status);
      }
    }
    return statuses;
  }, { all, events: EVENTS, token: TOKEN });
  check(`forced: ${published.length} publishes by fetch answered 200`, published.every((s) => s === 200),
    published.join(' '));

  const expected = all.map((topic) => Array.from({ length: EVENTS }, (_, n) => `${topic} #${n + 1}`));
  const complete = (seen) => seen.data.every((d, i) => d.length >= expected[i].length);
  const seen = await waitFor(() => page.evaluate(() => window.seen), complete);
  check(`forced: every EventSource received its ${EVENTS} events, once and in order`,
    seen.data.every((d, i) => JSON.stringify(d) === JSON.stringify(expected[i])), JSON.stringify(seen.data));
  check('forced: no EventSource saw an error', seen.errors.every((n) => n === 0), JSON.stringify(seen.errors));
  const sourceProtocols = all.map((t) => protocols.get(`${hub.url}topics/${t}/events`));
  check('forced: every EventSource went over h3', sourceProtocols.every((p) => p === 'h3'), sourceProtocols.join(' '));
  const publishProtocols = all.map((t) => protocols.get(`${hub.url}topics/${t}`));
  check('forced: every publish went over h3', publishProtocols.every((p) => p === 'h3'), publishProtocols.join(' '));
  await page.evaluate(() => window.sources.forEach((es) => es.close()));
  return watched;
}

/** A WebSocket echo from the page; resolves with what came back, or how it failed. */
function echo(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const ws = new WebSocket(`wss://${location.host}/echo`);
    const timer = setTimeout(() => resolve('no answer in 5 s'), 5_000);
    ws.onopen = () => ws.send('over h3?');
    ws.onmessage = (e) => { clearTimeout(timer); resolve(String(e.data)); ws.close(); };
    ws.onerror = () => { clearTimeout(timer); resolve('error'); };
  }));
}

/** Part 2: another origin's requests that carry the cookie are refused, over h3. */
async function otherOrigin(browser, hub, other) {
  const { page } = await watchedPage(browser);
  await page.goto(`${other.origin}/`);
  const before = await crossOriginRefusals(hub);
  const base = hub.url.replace(/\/$/, '');
  const result = await page.evaluate(async ({ base, user }) => {
    // An EventSource with credentials: the cookie goes (same site).
    const sse = await new Promise((resolve) => {
      const es = new EventSource(`${base}/topics/user.${user}/events`, { withCredentials: true });
      const timer = setTimeout(() => { es.close(); resolve('neither opened nor closed in 5 s'); }, 5_000);
      es.onopen = () => { clearTimeout(timer); es.close(); resolve('open'); };
      es.onerror = () => { if (es.readyState === EventSource.CLOSED) { clearTimeout(timer); resolve('closed'); } };
    });
    // A long poll with the cookie; the refusal is not readable across
    // origins (no CORS answer): fetch rejects.
    let poll;
    try {
      const r = await fetch(`${base}/topics/user.${user}/poll?timeout=0`, { credentials: 'include' });
      poll = `answered ${r.status}`;
    } catch (e) {
      poll = 'refused';
    }
    return { sse, poll };
  }, { base, user: USER });
  const after = await waitFor(() => crossOriginRefusals(hub), (n) => n >= before + 2, 3_000);
  check('other origin: its EventSource with the cookie does not open', result.sse === 'closed', result.sse);
  check('other origin: its long poll with the cookie is refused', result.poll === 'refused', result.poll);
  check('other origin: the server refused both for their cross-origin cookie',
    after - before === 2, `cross_origin_cookie ${before} -> ${after}`);
  await page.close();
}

/**
 * The HTTP/3 exchanges of a Chromium net log (--log-net-log, read once
 * that browser has closed) whose request had these header lines: each
 * `{ request, response }`, header lines as the log writes them
 * ("name: value"; cookies' values stripped, their length said).
 */
function h3Exchanges(file, lines) {
  const log = JSON.parse(readFileSync(file, 'utf8'));
  const names = new Map(Object.entries(log.constants.logEventTypes).map(([name, id]) => [id, name]));
  const requests = new Map();
  const exchanges = [];
  for (const { type, source, params } of log.events) {
    const name = names.get(type);
    const key = `${source.id}:${params?.stream_id}`;
    if (name === 'HTTP3_HEADERS_SENT' && lines.every((l) => params.headers.includes(l))) {
      requests.set(key, params.headers);
    } else if (name === 'HTTP3_HEADERS_DECODED' && requests.has(key)) {
      exchanges.push({ request: requests.get(key), response: params.headers });
      requests.delete(key);
    }
  }
  return exchanges;
}

/** Part 2, from the net log: the other origin's requests went over h3 with the cookie, and were answered 403. */
function otherOriginOverH3(netlog, other) {
  const origin = `origin: ${other.origin}`;
  const requests = [['its EventSource', `/topics/user.${USER}/events`], ['its long poll', `/topics/user.${USER}/poll?timeout=0`]];
  for (const [what, path] of requests) {
    const exchanges = h3Exchanges(netlog, [`:path: ${path}`, origin]);
    const described = JSON.stringify(exchanges.map((x) => [x.request.filter((l) => /^(cookie|origin):/.test(l)), x.response[0]]));
    check(`other origin: ${what} went over h3 with the cookie and was answered 403`,
      exchanges.length > 0 && exchanges.every((x) => x.request.some((l) => l.startsWith('cookie: '))
        && x.response[0] === ':status: 403'), described);
  }
}

/** Part 3: Alt-Svc moves a browser that was not forced from HTTP/2 to h3. */
async function altSvc(hub) {
  const browser = await launch([`--origin-to-force-quic-on=127.0.0.1:${UNUSED_PORT}`]);
  try {
    const { page, protocols } = await watchedPage(browser);
    const first = await page.goto(`${hub.url}healthz`);
    const firstProtocol = await navigationProtocol(page);
    const advertised = first?.headers()['alt-svc'];
    check('alt-svc: the first load goes over HTTP/2 and advertises h3 on the same port',
      firstProtocol === 'h2' && advertised === `h3=":${hub.port}"`, `${firstProtocol}, Alt-Svc ${advertised}`);
    // The QUIC connection is made in the background once Alt-Svc is
    // known: a later load takes it.
    const later = await waitFor(async () => {
      await page.goto(`${hub.url}healthz`);
      return navigationProtocol(page);
    }, (p) => p === 'h3', WAIT);
    check('alt-svc: a later load goes over h3', later === 'h3', later);
    await page.evaluate(() => {
      window.got = [];
      window.es = new EventSource('/topics/h3b.alt/events');
      window.es.onmessage = (e) => window.got.push(e.data);
      window.opened = new Promise((resolve) => {
        window.es.onopen = () => resolve(true);
        setTimeout(() => resolve(false), 10_000);
      });
    });
    const opened = await page.evaluate(() => window.opened);
    const status = await page.evaluate(async (token) => (await fetch('/topics/h3b.alt', {
      method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: 'after Alt-Svc',
    })).status, TOKEN);
    const got = await waitFor(() => page.evaluate(() => window.got), (g) => g.length > 0);
    const protocol = protocols.get(`${hub.url}topics/h3b.alt/events`);
    check('alt-svc: an EventSource then receives its event over h3',
      opened && status === 200 && JSON.stringify(got) === '["after Alt-Svc"]' && protocol === 'h3',
      `opened ${opened}, publish ${status}, got ${JSON.stringify(got)} over ${protocol}`);
  } finally {
    await browser.close();
  }
}

const hub = await startHub();
const other = await startOtherOrigin();
const browsers = [];
try {
  const forced = [`--origin-to-force-quic-on=127.0.0.1:${hub.port}`];
  const netlog = join(WORK, 'forced.netlog.json');
  const browser = await launch([...forced, `--log-net-log=${netlog}`]);
  browsers.push(browser);
  console.log(`# chromium ${browser.browser()?.version() ?? ''}, ${hub.url} (HTTP/3 on UDP ${hub.port}), other origin ${other.origin}`);
  const { page } = await sameOrigin(browser, hub);

  // Chromium 156 keeps WebSockets on HTTP/1.1 unless told otherwise.
  const plain = await watchedPage(browser);
  await plain.page.goto(`${hub.url}healthz`);
  const plainEcho = await echo(plain.page);
  console.log(`# by default a WebSocket from the page went over ${plain.wsStatus() === 101 ? 'HTTP/1.1 (101)' : `status ${plain.wsStatus()}`}`);
  check('forced: a WebSocket beside them echoes', plainEcho === 'over h3?', plainEcho);
  await page.close();

  await otherOrigin(browser, hub, other);
  // Chromium completes its net log as it exits.
  await browser.close();
  otherOriginOverH3(netlog, other);

  // RFC 9220 from a Chromium whose EnableWebsocketsOverHttp3 is on.
  const wsBrowser = await launch([...forced, '--enable-features=EnableWebsocketsOverHttp3']);
  browsers.push(wsBrowser);
  const ws = await watchedPage(wsBrowser);
  await ws.page.goto(`${hub.url}healthz`);
  const wsEcho = await echo(ws.page);
  check('RFC 9220: with EnableWebsocketsOverHttp3 the WebSocket goes over h3 (extended CONNECT answered 200) and echoes',
    wsEcho === 'over h3?' && ws.wsStatus() === 200, `${wsEcho}, status ${ws.wsStatus()}`);

  await altSvc(hub);
} catch (e) {
  check('the run', false, e.stack);
} finally {
  for (const b of browsers) await b.close().catch(() => {});
  other.statics.close();
  await stopServer(hub);
}
summary();
