// The admin page's actions, in headless Chromium (run by admin.mjs, on
// its signed-in page): publish (a typed event too) and broadcast from the
// page and see the events reach a subscriber, watch a private topic live
// (its data shown as text, never as markup), browse topics with their
// last events (each with its type) and who is present (a connection
// without an identity named readably), find a subject's connections,
// disconnect one, "Disconnect all" and "Revoke subject" asking first (a
// cancel does nothing), the revoke's outcome kept beside the refreshed
// list, a token revoked by its id, and a forged request from another
// origin of the same site (whose requests carry the SameSite=Strict
// cookie) refused. Every action must be in the server's log, with who.

import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** The secret admin.mjs starts the server with (--jwt-secret-file). */
export const JWT_SECRET = 'the admin page browser test secret, 32+ bytes';

const WAIT = 20_000;

/** An HS256 token for `sub`, subscribing where `topics` say. */
export function jwt(sub, jti, topics) {
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub, jti, iat: now - 5, exp: now + 600, tether: { sub: topics } })}`;
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`;
}

/**
 * An event stream read from Node: `status` (a promise), `data` (the data
 * of each event so far), `ended` (a promise: the server ended it) and
 * `close()`.
 */
export function reader(url, headers = {}) {
  const data = [];
  let req;
  const ended = new Promise((resolveEnded) => {
    req = request(url, { agent: false, headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buffer += chunk;
        let at;
        while ((at = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const lines = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
          if (lines.length) data.push(lines.join('\n'));
        }
      });
      res.on('end', () => resolveEnded(true));
      res.on('close', () => resolveEnded(true));
    });
  });
  const status = new Promise((resolve, reject) => {
    req.on('response', (res) => resolve(res.statusCode));
    req.on('error', reject);
  });
  req.end();
  return { status, data, ended, close: () => req.destroy() };
}

/** Resolves with true once `test()` holds, false after `ms`. */
export async function until(test, ms = WAIT) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await test()) return true;
    await sleep(100);
  }
  return false;
}

export const within = (promise, ms = WAIT) => Promise.race([promise, sleep(ms).then(() => false)]);

/** Runs the checks on `page`, signed in on `server.admin`. */
export async function checkActions({ page, server, check, publish }) {
  const text = async (id) => (await page.locator(`#${id}`).textContent()) ?? '';
  const opened = [];
  try {
    // --- Publish and broadcast from the page -------------------------------
    const news = reader(`${server.url}topics/page.news/events`);
    const others = [reader(`${server.url}topics/page.a/events`), reader(`${server.url}topics/page.b/events`)];
    opened.push(news, ...others);
    check('subscribers of the topics published to are let in',
      [await news.status, ...await Promise.all(others.map((o) => o.status))].every((s) => s === 200));
    await page.fill('#publish-topics', 'page.news');
    await page.fill('#publish-data', 'hello from the page');
    await page.click('#publish-send');
    const told = await until(async () => /page\.news: published/.test(await text('publish-result')));
    const arrived = await until(() => news.data.includes('hello from the page'));
    check('a publish from the page is answered and reaches a subscriber', told && arrived,
      `${await text('publish-result')}; got ${JSON.stringify(news.data)}`);
    await page.fill('#publish-type', 'alert');
    await page.fill('#publish-data', 'typed from the page');
    await page.click('#publish-send');
    const typed = await until(() => news.data.includes('typed from the page'));
    check('a typed publish from the page reaches a subscriber', typed, await text('publish-result'));
    await page.fill('#publish-type', '');
    await page.fill('#publish-topics', 'page.a page.b');
    await page.fill('#publish-data', 'to both');
    await page.click('#publish-send');
    const both = await until(() => others.every((o) => o.data.includes('to both')));
    check('a broadcast from the page reaches both topics', both, await text('publish-result'));

    // --- Watch a private topic live ------------------------------------------
    await page.fill('#watch-topic', 'room.watch');
    await page.click('#watch-start');
    const watching = await until(async () => (await text('watch-status')) === 'watching room.watch');
    check('the page watches a private topic', watching, await text('watch-status'));
    const markup = '<img src=x id=injected onerror="document.title=\'owned\'">';
    for (const body of ['first watched', markup]) {
      const answer = await publish(server, 'room.watch', body);
      if (answer.status !== 200) check(`publish ${body}`, false, `status ${answer.status}`);
    }
    const seen = await until(async () => (await page.locator('#watch-events li').count()) >= 2);
    const items = await page.locator('#watch-events li').allTextContents();
    check('the watched events show as they come', seen && items[0].endsWith('message: first watched'), JSON.stringify(items));
    check('an event\'s data is shown as text, not markup',
      items[1]?.endsWith(`message: ${markup}`) && (await page.locator('#injected').count()) === 0
        && (await page.title()) !== 'owned', JSON.stringify(items[1]));
    await page.click('#watch-stop');

    // --- Browse: topics, their last events, who is present -------------------
    const ann = jwt('ann', 'ann-1', ['room.*', 'page.*']);
    const annRoom = reader(`${server.url}topics/room.watch/events`, { Authorization: `Bearer ${ann}` });
    opened.push(annRoom);
    check('a subject\'s subscriber is let in', (await annRoom.status) === 200);
    await page.click('#topics-refresh');
    const listed = await until(async () => (await page.locator('#topics-table tbody tr').count()) >= 4);
    const rows = await page.locator('#topics-table tbody tr td:first-child').allTextContents();
    check('the topics are listed', listed && ['page.news', 'page.a', 'page.b', 'room.watch'].every((t) => rows.includes(t)),
      JSON.stringify(rows));
    await page.locator('#topics-table tbody tr', { hasText: 'room.watch' }).getByRole('button', { name: 'Show' }).click();
    const detail = await until(async () => (await page.locator('#detail-events li').count()) === 2
      && (await page.locator('#detail-present li').count()) === 1);
    const lastEvents = await page.locator('#detail-events li').allTextContents();
    const present = await page.locator('#detail-present li').allTextContents();
    check('a topic shows its last events and who is present (not the admin\'s watch)',
      detail && lastEvents[0].endsWith('first watched') && present.join() === 'ann',
      `${JSON.stringify(lastEvents)} ${JSON.stringify(present)}`);
    await page.locator('#topics-table tbody tr', { hasText: 'page.news' }).getByRole('button', { name: 'Show' }).click();
    const newsShown = await until(async () => (await text('detail-topic')) === 'page.news'
      && (await page.locator('#detail-events li').count()) === 2 && (await page.locator('#detail-present li').count()) === 1);
    const newsEvents = await page.locator('#detail-events li').allTextContents();
    check('a typed event shows its own type, an untyped one "message"', newsShown
      && / message: hello from the page$/.test(newsEvents[0]) && / alert: typed from the page$/.test(newsEvents[1]),
      JSON.stringify(newsEvents));
    const anonymous = await page.locator('#detail-present li').allTextContents();
    const rawName = await page.locator('#detail-present li').first().getAttribute('title');
    check('a connection without an identity is named by its number, loop and node, not its raw id',
      /^connection \d+ on loop \d+ \(node .+, no identity\)$/.test(anonymous[0] ?? '') && /^conn-.+-\d+-\d+$/.test(rawName ?? ''),
      `${JSON.stringify(anonymous)} (${rawName})`);

    // --- Find a user, disconnect one connection, revoke the subject ----------
    const annNews = reader(`${server.url}topics/page.news/events`, { Authorization: `Bearer ${ann}` });
    opened.push(annNews);
    await annNews.status;
    await page.fill('#user-subject', 'ann');
    await page.click('#user-find');
    const found = await until(async () => (await page.locator('#user-table tbody tr').count()) === 2);
    const connections = await page.locator('#user-table tbody tr').allTextContents();
    check('a subject\'s connections are listed (transport, topic)',
      found && connections.some((c) => c.startsWith('ssepage.news')) && connections.some((c) => c.startsWith('sseroom.watch')),
      `${JSON.stringify(connections)} ${await text('user-result')}`);
    await page.locator('#user-table tbody tr', { hasText: 'page.news' }).getByRole('button', { name: 'Disconnect' }).click();
    const cut = await within(annNews.ended);
    const one = await until(async () => (await page.locator('#user-table tbody tr').count()) === 1);
    check('disconnecting one connection closes it, and the list follows', cut === true && one,
      `${await text('user-result')}`);
    const kept = await until(async () => /^unsubscribe: 1 closed · now 1 connection of ann/.test(await text('user-result')));
    check('what was done stays said beside the refreshed list', kept, await text('user-result'));
    // "Disconnect all" asks first; a cancel does nothing.
    await page.click('#user-disconnect-all');
    const asked = await page.locator('#user-confirm').isVisible();
    const question = await text('user-confirm-text');
    const early = await within(annRoom.ended, 1000);
    await page.click('#user-confirm-no');
    check('"Disconnect all" asks first, naming the subject, and a cancel disconnects nothing',
      asked && /ann/.test(question) && early === false && !(await page.locator('#user-confirm').isVisible())
        && (await page.locator('#user-table tbody tr').count()) === 1 && (await text('user-result')) === 'nothing done',
      `${question} / ${await text('user-result')}`);
    // "Revoke subject" asks first too; confirmed, it acts, and its outcome
    // stays beside the refreshed list.
    await page.click('#user-revoke');
    const askedRevoke = await page.locator('#user-confirm').isVisible() && /Revoke ann\?/.test(await text('user-confirm-text'));
    const notYet = await within(annRoom.ended, 1000);
    check('"Revoke subject" asks first, and does nothing until confirmed', askedRevoke && notYet === false,
      await text('user-confirm-text'));
    await page.click('#user-confirm-yes');
    const revokedEnded = await within(annRoom.ended);
    const again = reader(`${server.url}topics/room.watch/events`, { Authorization: `Bearer ${ann}` });
    opened.push(again);
    check('revoking the subject closes its connections and refuses its token', revokedEnded === true
      && (await again.status) === 401, `${await text('user-result')}`);
    const revokeKept = await until(async () => /^revoke: 1 revoked · now 0 connections of ann/.test(await text('user-result')));
    check('the revoke\'s confirmation stays visible after the list refreshes', revokeKept, await text('user-result'));

    // --- Revoke a token by its id ----------------------------------------------
    const bob = jwt('bob', 'bob-1', ['page.*']);
    await page.fill('#revoke-jti', 'bob-1');
    await page.click('#revoke-send');
    const revoked = await until(async () => /revoked bob-1/.test(await text('revoke-result')));
    const bobs = reader(`${server.url}topics/page.news/events`, { Authorization: `Bearer ${bob}` });
    opened.push(bobs);
    check('a token revoked by its id is refused', revoked && (await bobs.status) === 401, await text('revoke-result'));

    // --- CSRF -------------------------------------------------------------------
    // The page's own request without its token: 403.
    const bare = await page.evaluate(async () => (await fetch('/admin/api/publish', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ items: [{ topic: 'page.news', data: 'no token' }] }),
    })).status);
    check('a request from the page without its CSRF token is refused (403)', bare === 403, `status ${bare}`);
    // Another origin of the same site (the main listener's port): the
    // Strict cookie goes with its form post, which must be refused.
    const attacker = `${server.url}forged.html`;
    const forged = `<!doctype html><form id=f method=post enctype=text/plain action="${server.admin}admin/api/publish">`
      + '<input name=\'{"items":[{"topic":"page.news","data":"forged","x":"\' value=\'"}]}\'></form>'
      + '<script>document.getElementById("f").submit()</script>';
    await page.route(attacker, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: forged }));
    const [refused] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/admin/api/publish') && r.request().method() === 'POST', { timeout: WAIT }),
      page.goto(attacker),
    ]);
    const sentCookie = (await refused.request().allHeaders()).cookie ?? '';
    await sleep(500);
    check('a cross-origin form post with the session cookie is refused (403) and publishes nothing',
      refused.status() === 403 && sentCookie.includes('tether_admin=') && !news.data.includes('forged'),
      `status ${refused.status()}, cookie sent: ${sentCookie.includes('tether_admin=')}`);
    await page.unroute(attacker);

    // --- The log: each action, with who and from where -------------------------
    const log = server.log();
    const logged = ['publish', 'broadcast', 'watch', 'unsubscribe', 'revoke'].filter(
      (action) => !new RegExp(`admin: ${action} .*by admin \\(session\\) from 127\\.0\\.0\\.1:\\d+`).test(log));
    check('every action is logged with who did it and from where', logged.length === 0, `not logged: ${logged.join(', ')}`);
    check('the refusals are logged', /admin: refused publish without its CSRF token/.test(log)
      && /admin: refused publish from another site/.test(log));
  } finally {
    for (const r of opened) r.close();
  }
}
