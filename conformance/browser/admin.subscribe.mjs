// Server-side subscriptions from the admin page, in headless Chromium (run
// by admin.mjs, on its signed-in page): a subject's multiplexed socket
// (`/ws`, opened from Node with the upgrade and frames by hand) is
// subscribed from the "Find a user" panel to a second topic, is told so
// and gets that topic's events; its row's "Unsubscribe" ends that
// subscription alone, the socket staying open with its first topic, while
// a per-topic connection of the subject keeps its "Disconnect".

import { randomBytes } from 'node:crypto';
import { request } from 'node:http';

import { jwt, reader, until } from './admin.actions.mjs';

/** One frame at the start of `buffer` (a server's: unmasked), or null while it is incomplete. */
function parseFrame(buffer) {
  if (buffer.length < 2) return null;
  const fin = (buffer[0] & 0x80) !== 0;
  const opcode = buffer[0] & 0x0f;
  let length = buffer[1] & 0x7f;
  let at = 2;
  if (length === 126) {
    if (buffer.length < 4) return null;
    length = buffer.readUInt16BE(2);
    at = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return null;
    length = Number(buffer.readBigUInt64BE(2));
    at = 10;
  }
  if (buffer.length < at + length) return null;
  return { fin, opcode, payload: buffer.subarray(at, at + length), size: at + length };
}

/** A client's frame (under 64 KiB): masked, as RFC 6455 requires of a client. */
function encodeFrame(opcode, payload) {
  const head = payload.length < 126 ? Buffer.from([0x80 | opcode, 0x80 | payload.length])
    : Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]));
  return Buffer.concat([head, mask, masked]);
}

/**
 * A multiplexed WebSocket (`GET /ws`) with `token` in `Authorization`:
 * resolves once upgraded with `messages` (each text message so far, as
 * JSON), `send(object)`, `closed` (a promise: the server closed it or the
 * connection ended), `isClosed()` and `close()`.
 */
function muxSocket(server, token) {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}ws`, {
      agent: false,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'), Authorization: `Bearer ${token}` },
    });
    req.on('upgrade', (res, socket, head) => {
      const messages = [];
      let buffer = head;
      let fragments = null;
      let ended = false;
      let resolveClosed;
      const closed = new Promise((r) => { resolveClosed = r; });
      const end = () => { ended = true; resolveClosed(true); };
      socket.on('data', (chunk) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (let frame = parseFrame(buffer); frame; frame = parseFrame(buffer)) {
          buffer = buffer.subarray(frame.size);
          if (frame.opcode === 1 || frame.opcode === 0) {
            fragments = [...(fragments ?? []), Buffer.from(frame.payload)];
            if (frame.fin) {
              messages.push(JSON.parse(Buffer.concat(fragments).toString('utf8')));
              fragments = null;
            }
          } else if (frame.opcode === 9) {
            socket.write(encodeFrame(10, frame.payload));
          } else if (frame.opcode === 8) {
            end();
            socket.destroy();
          }
        }
      });
      socket.on('close', end);
      resolve({
        status: res.statusCode,
        messages,
        closed,
        isClosed: () => ended,
        send: (object) => socket.write(encodeFrame(1, Buffer.from(JSON.stringify(object)))),
        close: () => socket.destroy(),
      });
    });
    req.on('response', (res) => reject(new Error(`/ws answered ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Runs the checks on `page`, signed in on `server.admin`. */
export async function checkServerSubscriptions({ page, server, check, publish }) {
  const text = async (id) => (await page.locator(`#${id}`).textContent()) ?? '';
  const rows = page.locator('#user-table tbody tr');
  const row = (topic) => page.locator('#user-table tbody tr', { hasText: topic });
  const has = (socket, want) => socket.messages.some((m) => Object.entries(want).every(([k, v]) => m[k] === v));
  const cy = jwt('cy', 'cy-1', ['mux.*']);
  const socket = await muxSocket(server, cy);
  const alone = reader(`${server.url}topics/mux.alone/events`, { Authorization: `Bearer ${cy}` });
  try {
    socket.send({ type: 'subscribe', topic: 'mux.first' });
    const following = await until(() => has(socket, { control: 'subscribed', topic: 'mux.first' }));
    check('a subject\'s multiplexed socket follows its first topic, and a per-topic stream of it is let in',
      socket.status === 101 && following && (await alone.status) === 200, JSON.stringify(socket.messages));

    // Its rows: the socket's says "Unsubscribe", the per-topic one's "Disconnect".
    await page.fill('#user-subject', 'cy');
    await page.click('#user-find');
    const listed = await until(async () => (await rows.count()) === 2);
    const socketButtons = await row('mux.first').getByRole('button').allTextContents();
    const aloneButtons = await row('mux.alone').getByRole('button').allTextContents();
    check('a multiplexed connection\'s row offers "Unsubscribe", a per-topic one\'s "Disconnect"',
      listed && socketButtons.join() === 'Unsubscribe' && aloneButtons.join() === 'Disconnect',
      `${JSON.stringify(await rows.allTextContents())} ${await text('user-result')}`);

    // Subscribed from the page to a second topic: told, and its events come.
    await page.fill('#user-subscribe-topic', 'mux.second');
    await page.click('#user-subscribe');
    const told = await until(() => has(socket, { control: 'subscribed', topic: 'mux.second', by: 'server' }));
    check('"Subscribe to a topic" subscribes the subject\'s socket, which is told it was the server', told,
      JSON.stringify(socket.messages));
    const said = await until(async () => /^subscribed: 1 to mux\.second · now 3 connections of cy/.test(await text('user-result'))
      && (await row('mux.second').count()) === 1);
    check('the page says how many were subscribed, and the list shows the new subscription', said,
      `${await text('user-result')} ${JSON.stringify(await rows.allTextContents())}`);
    const answer = await publish(server, 'mux.second', 'to the second');
    const reached = await until(() => has(socket, { topic: 'mux.second', data: 'to the second' }));
    check('an event of the topic subscribed from the page reaches the socket', answer.status === 200 && reached,
      JSON.stringify(socket.messages));

    // "Unsubscribe" on its row ends that subscription; the socket stays.
    await row('mux.second').getByRole('button', { name: 'Unsubscribe' }).click();
    const ended = await until(() => has(socket, { control: 'unsubscribed', topic: 'mux.second' }));
    check('"Unsubscribe" ends the subscription: the socket is told', ended, JSON.stringify(socket.messages));
    const refreshed = await until(async () => /^unsubscribed from mux\.second: 1 · now 2 connections of cy/.test(await text('user-result'))
      && (await row('mux.second').count()) === 0 && (await row('mux.first').count()) === 1 && (await row('mux.alone').count()) === 1);
    check('the list refreshes without that subscription, the connection\'s other topic and the other connection kept',
      refreshed, `${await text('user-result')} ${JSON.stringify(await rows.allTextContents())}`);
    await publish(server, 'mux.second', 'after the unsubscribe');
    await publish(server, 'mux.first', 'still following');
    const stays = await until(() => has(socket, { topic: 'mux.first', data: 'still following' }));
    check('the socket stays open and its other topic\'s events still reach it, the ended one\'s do not',
      stays && !socket.isClosed() && !has(socket, { topic: 'mux.second', data: 'after the unsubscribe' }),
      JSON.stringify(socket.messages));

    const log = server.log();
    check('the subscribe from the page is logged with who did it and from where',
      /admin: subscribe .*by admin \(session\) from 127\.0\.0\.1:\d+/.test(log));
  } finally {
    socket.close();
    alone.close();
  }
}
