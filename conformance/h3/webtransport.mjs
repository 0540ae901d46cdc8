// Headless Chromium opens a WebTransport session to a hub topic,
// `new WebTransport(URL/topics/TOPIC/wt?lastEventId=ID,
// {serverCertificateHashes})`, reads the events the server sends on the
// first unidirectional stream it opens (the hub's WebSocket envelope, one
// JSON object a line) and checks them. Started by webtransport.sh beside
// this file, against `tether serve --http3 on` or the stand-in
// webtransport_probe.py.
//
// The certificate is trusted by its hash alone (no flag, no CA): Chromium
// takes serverCertificateHashes only for an ECDSA certificate valid for
// at most 14 days. The page is served over http://127.0.0.1 by this
// script (loopback is a secure context, and WebTransport needs one), so
// the session's Origin is another origin than the server's.
//
// Environment:
//   CHROMIUM    the browser (default /usr/bin/chromium)
//   WORK        a scratch directory (required)
//   WT_URL      the server, https://127.0.0.1:PORT (required)
//   WT_CERT     the server's certificate, PEM (required; its SHA-256 is the hash)
//   WT_TOPIC    the topic (required)
//   WT_EXPECT   the events the session must bring (required): JSON, a list
//               of {"id", "data"}, in order
//   WT_LAST_EVENT_ID  resume after this id (optional: ?lastEventId=)
//   WT_LIVE     publish this many events more once the session is open
//               (optional, default 0; needs WT_PUBLISH_TOKEN): they must
//               follow on the same stream, then one binary event (every
//               byte value, `application/octet-stream`), which must come
//               as its base64 marked "encoding":"base64"
//   WT_PUBLISH_TOKEN  the server's publish token (for WT_LIVE)
//   WT_NETLOG   keep Chromium's net log (everything it sent and received,
//               --net-log-capture-mode=Everything) in this file (optional)
//
// Prints each event it got, then "webtransport: N passed, M failed" last.

import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { request } from 'node:https';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

import { CHROMIUM_FLAGS, freshProfile, tally } from '../browser/harness.mjs';

const require = createRequire(new URL('../browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const { WORK, WT_URL, WT_CERT, WT_TOPIC, WT_EXPECT, WT_LAST_EVENT_ID, WT_NETLOG } = process.env;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!WORK || !WT_URL || !WT_CERT || !WT_TOPIC || !WT_EXPECT) {
  throw new Error('WORK, WT_URL, WT_CERT, WT_TOPIC and WT_EXPECT must be set');
}
const expected = JSON.parse(WT_EXPECT);
const LIVE = Number(process.env.WT_LIVE || 0);
const WAIT = 10_000;
const { check, summary } = tally('webtransport');

const certificate = new X509Certificate(readFileSync(WT_CERT));
const hash = [...createHash('sha256').update(certificate.raw).digest()];
const days = (Date.parse(certificate.validTo) - Date.parse(certificate.validFrom)) / 86_400_000;
console.log(`# certificate: ${certificate.publicKey.asymmetricKeyType}, valid ${days.toFixed(1)} days, SHA-256 ${Buffer.from(hash).toString('hex')}`);

const query = WT_LAST_EVENT_ID ? `?lastEventId=${encodeURIComponent(WT_LAST_EVENT_ID)}` : '';
const sessionUrl = `${WT_URL.replace(/\/$/, '')}/topics/${WT_TOPIC}/wt${query}`;

/** Polls `read` every 100 ms until `done` of its value or WAIT passes; the last value. */
async function waitFor(read, done) {
  const until = Date.now() + WAIT;
  let value = await read();
  while (!done(value) && Date.now() < until) {
    await sleep(100);
    value = await read();
  }
  return value;
}

/** Publishes `data` (a string, or bytes as `application/octet-stream`) to the topic over HTTPS (the certificate as the only CA); the answer's body. */
function publish(data) {
  const type = typeof data === 'string' ? 'text/plain' : 'application/octet-stream';
  return new Promise((resolve, reject) => {
    const req = request(`${WT_URL.replace(/\/$/, '')}/topics/${WT_TOPIC}`, {
      method: 'POST', agent: false, ca: readFileSync(WT_CERT),
      headers: { Authorization: `Bearer ${process.env.WT_PUBLISH_TOKEN}`, 'Content-Type': type },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`publish: ${res.statusCode} ${body}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}

// The page: blank, over loopback http (a secure context).
const pages = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><meta charset="utf-8"><title>WebTransport</title>');
});
await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve));

const netlog = WT_NETLOG ? [`--log-net-log=${WT_NETLOG}`, '--net-log-capture-mode=Everything'] : [];
const browser = await chromium.launchPersistentContext(freshProfile(WORK), {
  executablePath: CHROMIUM,
  headless: true,
  args: [...CHROMIUM_FLAGS, ...netlog],
  timeout: 60_000,
});
try {
  console.log(`# chromium ${browser.browser()?.version() ?? ''}, ${sessionUrl}`);
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${pages.address().port}/`);
  // The session and its reader run in the page; Node watches window.wt.
  await page.evaluate(({ url, hash }) => {
    const wt = { ready: false, events: [], lines: [], error: null, secure: window.isSecureContext };
    window.wt = wt;
    (async () => {
      const transport = new WebTransport(url, {
        serverCertificateHashes: [{ algorithm: 'sha-256', value: new Uint8Array(hash) }],
      });
      window.transport = transport;
      await transport.ready;
      wt.ready = true;
      // The first unidirectional stream the server opens carries the events.
      const { value: stream, done } = await transport.incomingUnidirectionalStreams.getReader().read();
      if (done) throw new Error('the session ended before the server opened a stream');
      const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = '';
      for (;;) {
        const next = await reader.read();
        if (next.done) break;
        buffered += next.value;
        let newline;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          wt.lines.push(line);
          wt.events.push(JSON.parse(line));
        }
      }
    })().catch((e) => { wt.error = `${e.name}: ${e.message}${e.source ? ` (source ${e.source})` : ''}`; });
  }, { url: sessionUrl, hash });
  const state = () => page.evaluate(() => window.wt);
  const settled = (w) => w.error !== null;
  let result = await waitFor(state, (w) => settled(w) || w.events.length >= expected.length);
  // Events published once the session is open arrive on the same stream.
  const live = [];
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, n) => n));
  let binaryId = null;
  if (LIVE > 0 && result.events.length >= expected.length) {
    for (let n = 1; n <= LIVE; n++) {
      const data = `live ${n}`;
      live.push({ id: JSON.parse(await publish(data)).id, data });
    }
    binaryId = JSON.parse(await publish(bytes)).id;
    result = await waitFor(state, (w) => settled(w) || w.events.length >= expected.length + LIVE + 1);
  }
  await page.evaluate(() => window.transport?.close());
  for (const line of result.lines) console.log(`# event ${line}`);
  check('the page is a secure context', result.secure);
  check('the session opens (serverCertificateHashes)', result.ready, result.error ?? '');
  const wanted = [...expected, ...live];
  const texts = result.events.slice(0, wanted.length);
  check(`the first server-opened unidirectional stream brings the ${expected.length} expected events${LIVE ? ` and ${LIVE} published live` : ''}, in order`,
    wanted.length === expected.length + LIVE
      && JSON.stringify(texts.map((e) => ({ id: e.id, data: e.data }))) === JSON.stringify(wanted),
    `${JSON.stringify(result.events)}${result.error ? `; ${result.error}` : ''}`);
  if (LIVE > 0) {
    const binary = result.events[wanted.length];
    check('a binary event (every byte value) follows as its base64, marked "encoding":"base64", its bytes exact',
      binary !== undefined && binary.id === binaryId && binary.encoding === 'base64'
        && Buffer.from(binary.data, 'base64').equals(bytes)
        && result.events.length === wanted.length + 1,
      JSON.stringify(binary ?? null));
  }
  check(`every event is in the hub's envelope for ${WT_TOPIC}`,
    result.events.length > 0 && result.events.every((e) => e.topic === WT_TOPIC && typeof e.event === 'string'),
    JSON.stringify(result.events));
} catch (e) {
  check('the run', false, e.stack);
} finally {
  await browser.close();
  pages.close();
}
summary();
