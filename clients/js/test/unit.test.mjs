// Unit tests of the built package (dist/), with Node's test runner and
// fake transports: no server, no browser.
//
//   node build.mjs && node --test test/unit.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Tether, applyDelta, applyTextDelta, availableTransports, backoffDelay, compareIds, encodeCursor, isId, parsePoll, parseWsMessage, TRANSPORTS,
} from '../dist/index.js';

// ---------------------------------------------------------------------------
// Backoff

test('backoff: full jitter under a ceiling that doubles from 500 ms up to the cap', () => {
  const top = (attempt, o) => backoffDelay(attempt, o, () => 0.999999);
  assert.equal(backoffDelay(0, {}, () => 0), 0, 'full jitter reaches 0');
  assert.equal(top(0), 499);
  assert.equal(top(1), 999);
  assert.equal(top(3), 3999);
  assert.equal(top(20), 29_999, 'capped at 30 s');
  assert.equal(top(2000), 29_999, 'no overflow for a huge attempt count');
  assert.equal(top(-3), 499, 'a negative attempt is the first');
  assert.equal(top(2, { initial: 100, factor: 3, max: 500 }), 499);
  assert.equal(top(1, { initial: 100, factor: 3, max: 500 }), 299);
  assert.equal(backoffDelay(4, {}, () => 0.5), 4000);
  // With the real random: always within [0, ceiling).
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(2);
    assert.ok(d >= 0 && d < 2000 && Number.isInteger(d), `${d}`);
  }
});

// ---------------------------------------------------------------------------
// Ids

test('ids: compared as numbers, the epoch first, beyond 2^53', () => {
  assert.equal(compareIds('1-2', '1-2'), 0);
  assert.equal(compareIds('1-2', '1-10'), -1, 'numbers, not strings');
  assert.equal(compareIds('2-1', '1-99'), 1, 'the epoch first');
  assert.equal(compareIds('1718000000000-9', '1718000000001-1'), -1);
  assert.equal(compareIds('1-18446744073709551615', '1-18446744073709551614'), 1, 'u64 seq');
  assert.equal(compareIds('9007199254740993-1', '9007199254740992-1'), 1, 'past 2^53');
  assert.equal(compareIds('007-1', '7-1'), 0, 'leading zeros');
  assert.equal(compareIds('0-0', '0-1'), -1);
  for (const bad of ['', '1', '1-', '-1', '1-2-3', 'a-1', '1.5-2', ' 1-2']) {
    assert.equal(isId(bad), false, bad);
    assert.throws(() => compareIds(bad, '1-1'), TypeError, bad);
    assert.throws(() => compareIds('1-1', bad), TypeError, bad);
  }
  assert.equal(isId('1718000000000-42'), true);
  assert.equal(isId(undefined), false);
});

// ---------------------------------------------------------------------------
// Envelopes

test('envelopes: every WebSocket message shape the hub sends', () => {
  assert.deepEqual(parseWsMessage('{"topic":"news","id":"5-7","event":"update","data":"the text"}'),
    { kind: 'event', topic: 'news', event: { topic: 'news', id: '5-7', type: 'update', data: 'the text' } });
  assert.deepEqual(parseWsMessage('{"topic":"news","id":"5-8","event":"message","data":"x","key":"order-42"}').event,
    { topic: 'news', id: '5-8', type: 'message', data: 'x', key: 'order-42' });
  // A binary event: its base64 data as the bytes, every value.
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const bin = parseWsMessage(JSON.stringify({ topic: 'b', id: '5-9', event: 'message', data: Buffer.from(all).toString('base64'), encoding: 'base64' })).event;
  assert.ok(bin.data instanceof Uint8Array);
  assert.deepEqual([...bin.data], [...all]);
  assert.ok(parsePoll({ events: [{ id: '5-9', data: 'AP8=', encoding: 'base64' }], next: '5-9' }).events[0].data instanceof Uint8Array);
  assert.deepEqual(parseWsMessage('{"control":"gap","topic":"news","requested":"1-1","first":"5-1","resume":"5-0"}'),
    { kind: 'gap', topic: 'news', gap: { topic: 'news', requested: '1-1', first: '5-1', resume: '5-0' } });
  assert.deepEqual(parseWsMessage('{"control":"gap","topic":"n","requested":"1-1","first":null,"resume":"1-1","lost":{"first":"1-2","last":"1-3"}}').gap,
    { topic: 'n', requested: '1-1', first: null, resume: '1-1', lost: { first: '1-2', last: '1-3' } });
  assert.deepEqual(parseWsMessage('{"topic":"news","event":"join","member":"alice"}'),
    { kind: 'presence', topic: 'news', presence: { event: 'join', member: 'alice' } });
  // The hub's own messages come as they are, with their kind.
  assert.deepEqual(parseWsMessage('{"type":"auth-ok","expires_in":30}'), { kind: 'auth-ok', type: 'auth-ok', expires_in: 30 });
  assert.deepEqual(parseWsMessage('{"type":"auth-expiring","in":10}'), { kind: 'auth-expiring', type: 'auth-expiring', in: 10 });
  assert.deepEqual(parseWsMessage('{"control":"published","topic":"t","id":"5-9","key":"k","duplicate":true}'),
    { kind: 'published', control: 'published', topic: 't', id: '5-9', key: 'k', duplicate: true });
  assert.deepEqual(parseWsMessage('{"control":"error","error":"not allowed","key":"k"}'),
    { kind: 'error', control: 'error', error: 'not allowed', key: 'k' });
  // The multiplexed socket's answers to subscribe and unsubscribe.
  assert.deepEqual(parseWsMessage('{"control":"subscribed","topic":"room.7"}'), { kind: 'subscribed', control: 'subscribed', topic: 'room.7' });
  assert.deepEqual(parseWsMessage('{"control":"refused","topic":"a","status":403,"error":"not granted"}'),
    { kind: 'refused', control: 'refused', topic: 'a', status: 403, error: 'not granted' });
  assert.deepEqual(parseWsMessage('{"control":"unsubscribed","topic":"a","reason":"unsubscribed by the server"}').reason,
    'unsubscribed by the server');
  for (const odd of ['null', '[]', '3', '{"id":"1-1"}', '{"data":"x"}', '{"something":"else"}', '{"control":7}'])
    assert.deepEqual(parseWsMessage(odd), { kind: 'unknown' }, odd);
  assert.throws(() => parseWsMessage('not json'), SyntaxError);
});

test('envelopes: long-poll answers, multi-topic and per topic', () => {
  const gap = { topic: 'b', requested: '1-1', first: '2-1', resume: '2-0' };
  const refusal = { topic: 'c', status: 403, error: 'not granted' };
  const m = parsePoll({ events: [{ topic: 'a', id: '3-1', event: 'message', data: 'a' }, { bogus: 1 }], next: '~AQ', gaps: [gap], refused: [refusal] });
  assert.deepEqual(m, { events: [{ topic: 'a', id: '3-1', type: 'message', data: 'a' }], next: '~AQ', gaps: [gap], refused: [refusal] });
  // A per-topic answer (the client reads only its next, for a topic's head).
  const a = parsePoll(JSON.parse('{"topic":"t","events":[],"next":"3-1","gap":{"topic":"t","requested":"3-9","first":null,"resume":"4-0"}}'));
  assert.deepEqual(a, { events: [], next: '3-1', gaps: [], refused: [] });
  assert.throws(() => parsePoll({ events: 'no', next: '1-1' }), TypeError);
  assert.throws(() => parsePoll(null), TypeError);
});

test('cursors: the hub\'s format, byte for byte', () => {
  // The design page's example (docs/src/design/multiplexing.md), written by tether-hub's Cursor.
  assert.equal(encodeCursor(['A', 'B'], ['1718000000000-8', '1718000004521-3']), '~AQLQ9A6sgfC8jIBkCNNGAw');
  assert.equal(encodeCursor(['A', 'B'], ['1718000000000-8', undefined]), '~AQLQ9A6sgfC8jIBkCAA');
  assert.equal(encodeCursor(['A'], [undefined]), '~AQHM9gvEAA');
  assert.equal(encodeCursor([], []), '~AQDFnRyB');
  // Ids at the edges of u64, far apart both ways (a difference of 2^63 is
  // the one position whose first varint has 65 bits): the fuzz seed
  // eight-mixed of tether-hub.
  const u64 = '18446744073709551615';
  assert.equal(
    encodeCursor(['t0', 't1', 't2', 't3', 't4', 't5', 't6', 't7'],
      ['1718000000000-8', undefined, '1717999000000-70000', `${u64}-${u64}`, '0-0', '9223372036854775808-1', undefined, '1718000000001-0']),
    '~AQi1iL2XgfC8jIBkCACAiXrwogSC58KLgGT___________8BAwCAgICAgICAgIACAQD-j8Pz_5v___8BAA');
});

// ---------------------------------------------------------------------------
// Fakes: WebSocket, EventSource and fetch, driven by the test.

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

function fakes({ head = '7-0', headEvents = [] } = {}) {
  const sockets = [];
  const sources = [];
  const fetches = [];
  class FakeWebSocket {
    constructor(url) { this.url = url; this.sent = []; this.closed = null; sockets.push(this); }
    send(text) { this.sent.push(text); }
    close(code) { this.closed = code ?? 1005; }
    open() { this.onopen?.(); }
    msg(obj) { this.onmessage?.({ data: typeof obj === 'string' ? obj : JSON.stringify(obj) }); }
    drop(code = 1006, reason = '') { this.onclose?.({ code, reason }); }
  }
  class FakeEventSource {
    constructor(url, init) { this.url = url; this.init = init; this.listeners = {}; this.closed = false; sources.push(this); }
    addEventListener(type, f) { (this.listeners[type] ||= []).push(f); }
    close() { this.closed = true; }
    emit(type, data, lastEventId = '') { for (const f of this.listeners[type] || []) f({ data, lastEventId }); }
  }
  const answers = [];
  const fetch = async (url, init) => {
    const u = new URL(url);
    fetches.push({ url: u, init });
    if (u.pathname.endsWith('/poll') && !u.searchParams.has('since')) {
      return Response.json({ topic: 't', events: headEvents, next: head, gap: null });
    }
    if (u.pathname === '/tickets') return Response.json({ ticket: `t${fetches.length}`, expires_in: 30 });
    const answer = answers.shift();
    if (!answer) return new Promise(() => {}); // a poll that never answers
    return typeof answer === 'function' ? answer(u, init) : answer;
  };
  return { sockets, sources, fetches, answers, env: { WebSocket: FakeWebSocket, EventSource: FakeEventSource, fetch } };
}

const ev = (id, data = id, event = 'message', topic = 't') => ({ topic, id, event, data });
const sent = (ws) => ws.sent.map((m) => JSON.parse(m));
/** The subscribe messages a socket sent, as `topic:since`. */
const subscribes = (ws) => sent(ws).filter((m) => m.type === 'subscribe').map((m) => `${m.topic}:${m.since ?? ''}`);
const TOPICS = Array.from({ length: 12 }, (_, i) => `room.${i}`);

// ---------------------------------------------------------------------------
// Deltas (Fossil's format, as tether-delta writes it)

const ABC = 'abcdefghijklmnopqrstuvwxyz0123456789ABC';
/** Fossil's base-64 digits of `n`, and a delta's checksum of `text`, written here on their own. */
const b64 = (n) => { let s = ''; do { s = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~'[n % 64] + s; n = Math.floor(n / 64); } while (n); return s; };
const sumOf = (text) => { const b = new TextEncoder().encode(text); let s = 0n; for (let i = 0; i < b.length; i++) s += BigInt(b[i]) << BigInt(24 - 8 * (i % 4)); return Number(s % 2n ** 32n); };
/** A delta of `commands` that builds `target`. */
const deltaOf = (target, commands) => `${b64(new TextEncoder().encode(target).length)}\n${commands}${b64(sumOf(target))};`;

test('fossil: the applier builds what the hub\'s deltas say, and refuses what does not apply', () => {
  // Written by tether-delta's encoder (its own tests have these bytes).
  assert.equal(applyTextDelta('', '2\n2:hi1dQG00;'), 'hi');
  // Written by fossil-delta 2.0.0 (npm, what Centrifugo's browser SDK uses): createStringDelta(old, new).
  const old = '{"device":"pump-7","site":"north hall","firmware":"4.2.1","seq":41,"temperature":24.6,"status":"warm","note":"é ✓"}';
  assert.equal(applyTextDelta(old, '1p\n11@0,o:2,"temperature":24.7,"status":"ok","note":"é ✓"}wOGrs;'),
    '{"device":"pump-7","site":"north hall","firmware":"4.2.1","seq":42,"temperature":24.7,"status":"ok","note":"é ✓"}');
  assert.equal(applyTextDelta(ABC, 'e\nc@0,2:!!38hN1K;'), `${ABC}!!`);
  // Copies, inserts, and wide characters (the lengths are bytes).
  const target = 'fghij — é ✓ 01234';
  const good = deltaOf(target, `5@5,${b64(new TextEncoder().encode(' — é ✓ ').length)}: — é ✓ 5@Q,`);
  assert.equal(applyTextDelta(ABC, good), target);
  assert.equal(new TextDecoder().decode(applyDelta(new TextEncoder().encode(ABC), new TextEncoder().encode(good))), target);
  // Another base of the same length: the checksum tells.
  assert.throws(() => applyTextDelta(ABC.replace('g', 'G'), good), RangeError);
  // Too short a base: the copy is out of range.
  assert.throws(() => applyTextDelta('abc', good), RangeError);
  for (const bad of ['', '2', '2\n', '2\n2:h', '2\n2?hi1dQG00;', '2\n2@0;', '2\n3:hi!0;', '2\n1:h0;', '2\n2:hi0;',
    '2\n2:hi1dQG00;x', '2\n2@0,1dQG00;', '~~~~~~~~~\n0;', '111111111\n0;'])
    assert.throws(() => applyTextDelta(ABC, bad), RangeError, JSON.stringify(bad));
  assert.throws(() => applyDelta(new Uint8Array(), new TextEncoder().encode('2\n2:hi1dQG00;'), 1), RangeError, 'over the limit');
});

test('delta: asked for on the socket, applied before the application sees them; a delta that does not apply resubscribes from the last event', async () => {
  const f = fakes();
  const got = [];
  const c = new Tether('http://hub.test/', { ...f.env, backoff: { initial: 1 } });
  const s = c.subscribe('t', { since: '7-0', delta: true, onEvent: (e) => got.push(`${e.id} ${e.data}`) });
  const plain = c.subscribe('u', { since: '7-0', onEvent: () => {} });
  await tick();
  const ws = f.sockets[0];
  ws.open();
  assert.deepEqual(sent(ws), [{ type: 'subscribe', topic: 't', since: '7-0', delta: true }, { type: 'subscribe', topic: 'u', since: '7-0' }]);
  ws.msg({ control: 'subscribed', topic: 't' });
  ws.msg(ev('7-1', ABC));
  ws.msg({ topic: 't', id: '7-2', event: 'message', delta: 'e\nc@0,2:!!38hN1K;', base: '7-1' });
  const third = `${ABC}!!?`;
  ws.msg({ topic: 't', id: '7-3', event: 'message', delta: deltaOf(third, `${b64(41)}@0,1:?`), base: '7-2' });
  assert.deepEqual(got, [`7-1 ${ABC}`, `7-2 ${ABC}!!`, `7-3 ${third}`]);
  assert.equal(s.lastId, '7-3');
  // Against an event it did not get (7-3 is its last): not shown; the
  // topic is subscribed again from 7-3, and its next deltas are dropped
  // until the whole event comes.
  ws.msg({ topic: 't', id: '7-5', event: 'message', delta: deltaOf('x', '1:x'), base: '7-4' });
  ws.msg({ topic: 't', id: '7-6', event: 'message', delta: deltaOf('y', '1:y'), base: '7-5' });
  assert.equal(got.length, 3);
  assert.deepEqual(sent(ws).slice(2), [{ type: 'unsubscribe', topic: 't' }, { type: 'subscribe', topic: 't', since: '7-3', delta: true }]);
  ws.msg(ev('7-4', 'four'));
  ws.msg({ topic: 't', id: '7-5', event: 'message', delta: deltaOf('five', '4:five'), base: '7-4' });
  assert.deepEqual(got.slice(3), ['7-4 four', '7-5 five']);
  // The right base id, but not its bytes (a checksum that does not match): the same.
  ws.msg({ topic: 't', id: '7-6', event: 'message', delta: `${b64(4)}\n4@0,0;`, base: '7-5' });
  assert.equal(got.length, 5);
  assert.deepEqual(sent(ws).at(-1), { type: 'subscribe', topic: 't', since: '7-5', delta: true });
  c.close();
  assert.equal(plain.state, 'closed');
});

test('delta: an EventSource asks with delta=1, and reconnects from before a delta that does not apply', async () => {
  const f = fakes();
  const got = [];
  const c = new Tether('http://hub.test/', { ...f.env, transports: ['sse'], backoff: { initial: 1 } });
  c.subscribe('t', { since: '7-0', delta: true, onEvent: (e) => got.push(`${e.id} ${e.data}`) });
  await tick(10);
  const es = f.sources[0];
  assert.equal(new URL(es.url).searchParams.get('delta'), '1');
  es.onopen();
  const emit = (m, cursor) => es.emit('message', JSON.stringify(m), cursor);
  emit(ev('7-1', ABC), '~one');
  emit({ topic: 't', id: '7-2', event: 'message', delta: 'e\nc@0,2:!!38hN1K;', base: '7-1' }, '~two');
  emit({ topic: 't', id: '7-3', event: 'message', delta: 'e\nc@0,2:!!38hN1K;', base: '7-1' }, '~three');
  assert.deepEqual(got, [`7-1 ${ABC}`, `7-2 ${ABC}!!`]);
  await tick(10);
  assert.ok(es.closed, 'the stream that sent it is closed');
  assert.equal(f.sources.length, 2);
  assert.equal(new URL(f.sources[1].url).searchParams.get('lastEventId'), '~two', 'from before the delta that did not apply');
  c.close();
});

test('transport choice: the default order, what the environment has, and forcing', () => {
  assert.deepEqual(TRANSPORTS, ['ws', 'sse', 'poll']);
  assert.deepEqual(availableTransports(TRANSPORTS, { WebSocket: 1, EventSource: 1 }), ['ws', 'sse', 'poll']);
  assert.deepEqual(availableTransports(TRANSPORTS, { EventSource: 1 }), ['sse', 'poll'], 'Node 20: no WebSocket');
  assert.deepEqual(availableTransports(TRANSPORTS, {}), ['poll']);
  assert.deepEqual(availableTransports(['poll', 'ws'], { WebSocket: 1 }), ['poll', 'ws'], 'the order given');
  assert.deepEqual(availableTransports(['sse'], {}), [], 'forced, and not available');
});

test('dedupe: a replay overlapping what was delivered gives each event once, in order', async () => {
  const f = fakes();
  const got = [];
  const c = new Tether('http://hub.test/', { ...f.env, backoff: { initial: 1 } });
  const s = c.subscribe('t', { since: '7-0', onEvent: (e) => got.push(e.id) });
  await tick();
  assert.equal(f.sockets.length, 1);
  const ws = f.sockets[0];
  assert.equal(ws.url, 'ws://hub.test/ws');
  ws.open();
  assert.deepEqual(sent(ws), [{ type: 'subscribe', topic: 't', since: '7-0' }]);
  ws.msg({ control: 'subscribed', topic: 't' });
  assert.equal(s.state, 'open');
  for (const id of ['7-1', '7-2', '7-2', '7-1', '7-3', '7-10']) ws.msg(ev(id));
  assert.deepEqual(got, ['7-1', '7-2', '7-3', '7-10']);
  assert.equal(s.lastId, '7-10');
  ws.drop(1006);
  await tick(20);
  const again = f.sockets[1];
  again.open();
  assert.deepEqual(subscribes(again), ['t:7-10'], 'resumes from the last id');
  for (const id of ['7-9', '7-10', '7-11', '8-1']) again.msg(ev(id));
  assert.deepEqual(got, ['7-1', '7-2', '7-3', '7-10', '7-11', '8-1']);
  s.close();
  assert.equal(again.closed, 1000, 'its last subscription closed: the socket goes');
  again.msg(ev('8-2'));
  assert.deepEqual(got.at(-1), '8-1', 'nothing after close');
});

test('latest value: the head\'s answer with the topic\'s latest event is delivered first, once, and resumed after', async () => {
  // A topic whose namespace says latest=on answers a poll from nowhere with its latest event.
  const f = fakes({ head: '7-3', headEvents: [ev('7-3', '2-1')] });
  const got = [];
  const c = new Tether('http://hub.test/', { ...f.env, backoff: { initial: 1 } });
  const s = c.subscribe('t', { onEvent: (e) => got.push(`${e.id} ${e.data}`) });
  await tick();
  assert.deepEqual(got, ['7-3 2-1'], 'delivered before the socket opens');
  assert.equal(s.state, 'connecting', 'not open before its connection is');
  const ws = f.sockets[0];
  ws.open();
  assert.deepEqual(subscribes(ws), ['t:7-3'], 'subscribed after it: not sent again');
  ws.msg({ control: 'subscribed', topic: 't' });
  ws.msg(ev('7-3', '2-1'));
  ws.msg(ev('7-4', '3-1'));
  assert.deepEqual(got, ['7-3 2-1', '7-4 3-1']);
  ws.drop(1006);
  await tick(20);
  f.sockets[1].open();
  assert.deepEqual(subscribes(f.sockets[1]), ['t:7-4'], 'a reconnect resumes from its last id, no head asked again');
  assert.equal(f.fetches.filter((x) => x.url.pathname.endsWith('/poll')).length, 1);
  c.close();
});

test('one WebSocket: 12 topics, each resubscribed from its own last event after a reconnect', async () => {
  const f = fakes({ head: '50-0' });
  const got = {};
  const c = new Tether('https://hub.test', { ...f.env, backoff: { initial: 1 } });
  // Half from ids of their own, half from now (their head asked first).
  const subs = TOPICS.map((t, i) =>
    c.subscribe(t, { ...(i % 2 === 0 && { since: `${i}-0` }), onEvent: (e) => (got[t] ||= []).push(e.id) }));
  await tick(10);
  assert.equal(f.sockets.length, 1, 'one connection for 12 subscriptions');
  const ws = f.sockets[0];
  assert.equal(ws.url, 'wss://hub.test/ws');
  ws.open();
  assert.deepEqual(subscribes(ws), TOPICS.map((t, i) => `${t}:${i % 2 === 0 ? `${i}-0` : '50-0'}`));
  for (const t of TOPICS) ws.msg({ control: 'subscribed', topic: t });
  assert.ok(subs.every((s) => s.state === 'open' && s.transport === 'ws'));
  // Events of every topic, interleaved, some twice: each to its own subscription, once.
  for (let n = 1; n <= 3; n++)
    for (const [i, t] of TOPICS.entries()) {
      ws.msg(ev(`${60 + i}-${n}`, 'x', 'message', t));
      if (n === 2) ws.msg(ev(`${60 + i}-1`, 'again', 'message', t));
    }
  for (const [i, t] of TOPICS.entries()) assert.deepEqual(got[t], [`${60 + i}-1`, `${60 + i}-2`, `${60 + i}-3`], t);
  // One more event for room.4 only, then the connection drops.
  ws.msg(ev('64-4', 'x', 'message', 'room.4'));
  // Closing one subscription unsubscribes its topic, on the same socket.
  subs[11].close();
  assert.deepEqual(sent(ws).at(-1), { type: 'unsubscribe', topic: 'room.11' });
  ws.drop(1006);
  await tick(20);
  assert.equal(f.sockets.length, 2);
  f.sockets[1].open();
  assert.deepEqual(subscribes(f.sockets[1]),
    TOPICS.slice(0, 11).map((t, i) => `${t}:${60 + i}-${i === 4 ? 4 : 3}`), 'each from its own last id');
  c.close();
  assert.equal(f.sockets[1].closed, 1000);
});

test('a refusal reaches its own subscription only, and is asked again later on the same socket', async () => {
  const f = fakes();
  const errors = [];
  const got = [];
  const c = new Tether('http://hub.test', { ...f.env, backoff: { initial: 5 } });
  const subs = TOPICS.map((t) => c.subscribe(t, {
    since: '1-0', onError: (e) => errors.push(`${t} ${e.reason} ${e.status}`), onEvent: (e) => got.push(e.topic),
  }));
  await tick();
  const ws = f.sockets[0];
  ws.open();
  ws.msg({ control: 'refused', topic: 'room.5', status: 403, error: 'not granted' });
  for (const t of TOPICS) if (t !== 'room.5') ws.msg({ control: 'subscribed', topic: t });
  ws.msg(ev('1-1', 'x', 'message', 'room.4'));
  assert.deepEqual(errors, ['room.5 forbidden 403']);
  assert.deepEqual(got, ['room.4']);
  assert.equal(subs[5].state, 'connecting');
  assert.ok(subs.filter((_, i) => i !== 5).every((s) => s.state === 'open'));
  await tick(30);
  assert.equal(f.sockets.length, 1, 'the connection stays');
  assert.equal(ws.closed, null);
  assert.deepEqual(subscribes(ws).filter((m) => m.startsWith('room.5:')), ['room.5:1-0', 'room.5:1-0'], 'asked again');
  assert.ok(!sent(ws).some((m) => m.type === 'unsubscribe'), 'nothing to unsubscribe: it was not taken');
  ws.msg({ control: 'subscribed', topic: 'room.5' });
  assert.equal(subs[5].state, 'open');
  // A bad topic (400) ends that subscription alone; so does the hub ending it.
  ws.msg({ control: 'refused', topic: 'room.6', status: 400, error: 'bad' });
  ws.msg({ control: 'unsubscribed', topic: 'room.7', reason: 'unsubscribed by the server' });
  assert.deepEqual([subs[6].state, subs[7].state, subs[8].state], ['closed', 'closed', 'open']);
  assert.deepEqual(errors.slice(1), ['room.6 http 400', 'room.7 policy undefined']);
  c.close();
});

test('two subscriptions of one topic share its subscription on the socket, each deduped on its own', async () => {
  const f = fakes();
  const a = [];
  const b = [];
  const c = new Tether('http://hub.test', { ...f.env });
  c.subscribe('t', { since: '3-5', onEvent: (e) => a.push(e.id) });
  await tick();
  const ws = f.sockets[0];
  ws.open();
  ws.msg(ev('3-6'));
  // The second, further back: the topic is subscribed again from its position.
  c.subscribe('t', { since: '3-2', onEvent: (e) => b.push(e.id) });
  await tick();
  assert.deepEqual(sent(ws).slice(1), [{ type: 'unsubscribe', topic: 't' }, { type: 'subscribe', topic: 't', since: '3-2' }]);
  for (const id of ['3-3', '3-4', '3-5', '3-6', '3-7']) ws.msg(ev(id));
  assert.deepEqual(a, ['3-6', '3-7']);
  assert.deepEqual(b, ['3-3', '3-4', '3-5', '3-6', '3-7']);
  c.close();
});

test('gap: surfaces once, and resets the resume point to the hub\'s', async () => {
  const f = fakes();
  const got = [];
  const gaps = [];
  const c = new Tether('http://hub.test', { ...f.env });
  const s = c.subscribe('t', { since: '3-40', onEvent: (e) => got.push(e.id), onGap: (g) => gaps.push(g) });
  await tick();
  const ws = f.sockets[0];
  ws.open();
  ws.msg({ control: 'gap', topic: 't', requested: '3-40', first: '2-1', resume: '0-0' });
  ws.msg({ control: 'gap', topic: 'other', requested: '3-40', first: '2-1', resume: '0-0' });
  ws.msg(ev('2-1'));
  ws.msg(ev('2-2'));
  assert.deepEqual(gaps, [{ topic: 't', requested: '3-40', first: '2-1', resume: '0-0' }]);
  assert.deepEqual(got, ['2-1', '2-2'], 'events of an older epoch after the gap are delivered');
  assert.equal(s.lastId, '2-2');
  c.close();
});

test('fallback: a WebSocket that never opens gives way to EventSource, which resumes from the same id', async () => {
  const f = fakes();
  const states = [];
  const errors = [];
  const got = [];
  const c = new Tether('https://hub.test/base', { ...f.env, backoff: { initial: 1 }, maxFailures: 2 });
  const s = c.subscribe('t', {
    since: '5-3', types: ['update'], onEvent: (e) => got.push(`${e.id}:${e.type}:${e.data}`),
    onState: (st, t) => states.push(`${st}/${t}`), onError: (e) => errors.push(`${e.reason}/${e.transport}`),
  });
  await tick();
  assert.equal(f.sockets[0].url, 'wss://hub.test/base/ws');
  f.sockets[0].drop(1006);
  await tick(20);
  assert.equal(f.sockets.length, 2);
  f.sockets[1].drop(1006);
  await tick(20);
  assert.equal(f.sockets.length, 2, 'no third WebSocket');
  assert.equal(f.sources.length, 1);
  const es = f.sources[0];
  const u = new URL(es.url);
  assert.equal(`${u.origin}${u.pathname}`, 'https://hub.test/base/events');
  assert.deepEqual([...u.searchParams], [['topic', 't'], ['lastEventId', '~AQGjPQzxCwM']], 'the cursor of t at 5-3');
  assert.equal(encodeCursor(['t'], ['5-3']), '~AQGjPQzxCwM');
  es.onopen();
  es.emit('message', JSON.stringify(ev('5-4', 'a')), '~c1');
  es.emit('update', JSON.stringify(ev('5-5', 'b', 'update')), '~c2');
  es.emit('message', JSON.stringify(ev('5-5', 'old')), '~c2');
  assert.deepEqual(got, ['5-4:message:a', '5-5:update:b']);
  assert.deepEqual(errors, ['network/ws', 'network/ws']);
  assert.deepEqual(states, ['connecting/ws', 'connecting/sse', 'open/sse']);
  assert.equal(s.transport, 'sse');
  // The event stream fails: the next one resumes from the stream's last cursor.
  es.onerror();
  assert.ok(es.closed, 'the client closes it rather than let the browser reconnect');
  await tick(20);
  assert.equal(new URL(f.sources[1].url).searchParams.get('lastEventId'), '~c2');
  c.close();
});

test('one EventSource for every topic: reopened when the topics change, each topic resumed from its own last event', async () => {
  const f = fakes();
  const got = {};
  const c = new Tether('http://hub.test', { ...f.env, transports: ['sse'], backoff: { initial: 1 } });
  const subs = TOPICS.map((t, i) => c.subscribe(t, { since: `${i}-1`, onEvent: (e) => (got[t] ||= []).push(e.id) }));
  await tick(10);
  assert.equal(f.sources.length, 1, 'one stream for 12 subscriptions');
  const es = f.sources[0];
  const u = new URL(es.url);
  assert.equal(u.pathname, '/events');
  assert.deepEqual(u.searchParams.getAll('topic'), TOPICS);
  assert.equal(u.searchParams.get('lastEventId'), encodeCursor(TOPICS, TOPICS.map((_, i) => `${i}-1`)));
  es.onopen();
  assert.ok(subs.every((s) => s.state === 'open'));
  for (const [i, t] of TOPICS.entries()) es.emit('message', JSON.stringify(ev(`${i}-2`, 'x', 'message', t)), `~after-${t}`);
  es.emit('message', JSON.stringify(ev('3-2', 'x', 'message', 'room.3')), '~again');
  for (const [i, t] of TOPICS.entries()) assert.deepEqual(got[t], [`${i}-2`], t);
  // A 13th topic: the stream is reopened with it, from a cursor of every topic's own position.
  c.subscribe('extra', { since: '99-9' });
  await tick(10);
  assert.ok(es.closed);
  assert.equal(f.sources.length, 2);
  const u2 = new URL(f.sources[1].url);
  assert.deepEqual(u2.searchParams.getAll('topic'), [...TOPICS, 'extra']);
  assert.equal(u2.searchParams.get('lastEventId'), encodeCursor([...TOPICS, 'extra'], [...TOPICS.map((_, i) => `${i}-2`), '99-9']));
  // A topic refused on the stream: its own error, and the others go on.
  const errors = [];
  c.subscribe('private.x', { since: '1-1', onError: (e) => errors.push(`${e.reason} ${e.status}`) });
  await tick(10);
  f.sources[2].onopen();
  f.sources[2].emit('refused', JSON.stringify({ topic: 'private.x', status: 403, error: 'not granted' }), '~x');
  assert.deepEqual(errors, ['forbidden 403']);
  c.close();
});

test('fallback: to long polling, one poll for every topic, passing back the poll\'s cursor', async () => {
  const f = fakes();
  const got = [];
  const c = new Tether('http://hub.test', { ...f.env, transports: ['sse', 'poll'], backoff: { initial: 1 }, maxFailures: 1 });
  const s = c.subscribe('t', { since: '9-1', onEvent: (e) => got.push(e.id) });
  const u = c.subscribe('u', { since: '4-4', onEvent: (e) => got.push(e.id) });
  await tick();
  assert.equal(f.sources.length, 1);
  f.sources[0].onerror();
  f.answers.push(Response.json({ events: [ev('9-2'), ev('9-3'), ev('4-5', 'x', 'message', 'u')], next: '~N1', gaps: [], refused: [] }));
  f.answers.push(Response.json({ events: [], next: '~N2', gaps: [], refused: [] }));
  f.answers.push(Response.json({ events: [ev('9-3'), ev('9-4')], next: '~N3', gaps: [], refused: [] }));
  await tick(30);
  const polls = f.fetches.filter((x) => x.url.pathname === '/poll');
  assert.deepEqual(polls.map((x) => x.url.searchParams.getAll('topic')), [['t', 'u'], ['t', 'u'], ['t', 'u'], ['t', 'u']]);
  assert.deepEqual(polls.map((x) => x.url.searchParams.get('since')), [encodeCursor(['t', 'u'], ['9-1', '4-4']), '~N1', '~N2', '~N3']);
  assert.deepEqual(polls.map((x) => x.url.searchParams.get('timeout')), ['0', '25', '25', '25']);
  assert.deepEqual(got, ['9-2', '9-3', '4-5', '9-4']);
  assert.equal(s.state, 'open');
  assert.equal(s.transport, 'poll');
  assert.equal(u.lastId, '4-5');
  c.close();
});

test('subscribing without since asks the head first, so that a reconnect before any event misses nothing', async () => {
  const f = fakes({ head: '12-4' });
  const c = new Tether('http://hub.test', { ...f.env });
  c.subscribe('t', {});
  await tick(5);
  const first = f.fetches[0].url;
  assert.equal(first.pathname, '/topics/t/poll');
  assert.equal(first.searchParams.get('timeout'), '0');
  f.sockets[0].open();
  assert.deepEqual(subscribes(f.sockets[0]), ['t:12-4']);
  c.close();
});

test('the head refused (503, 404: polls blocked on the way): the subscription goes on from when it opens; a bad topic (400) ends it', async () => {
  for (const [status, sockets, state] of [[503, 1, 'connecting'], [404, 1, 'connecting'], [400, 0, 'closed']]) {
    const f = fakes();
    const fetch = async (url, init) => (new URL(url).pathname.endsWith('/poll') ? new Response('no', { status }) : f.env.fetch(url, init));
    const c = new Tether('http://hub.test', { ...f.env, fetch });
    const s = c.subscribe('t', {});
    await tick(5);
    assert.equal(f.sockets.length, sockets, `${status}`);
    if (sockets) {
      f.sockets[0].open();
      assert.deepEqual(subscribes(f.sockets[0]), ['t:'], `${status}: from now`);
    }
    assert.equal(s.state, state, `${status}`);
    c.close();
  }
});

test('a topic name the hub would refuse ends its subscription at once, and never reaches a shared connection', async () => {
  const f = fakes();
  const errors = [];
  const c = new Tether('http://hub.test', { ...f.env });
  for (const bad of ['', '..', 'a b', 'x'.repeat(129), 'é']) {
    const s = c.subscribe(bad, { since: '1-1', onError: (e) => errors.push(e.status) });
    await tick();
    assert.equal(s.state, 'closed', JSON.stringify(bad));
  }
  c.subscribe('ok.topic:1_-', { since: '1-1' });
  await tick();
  f.sockets[0].open();
  assert.deepEqual(subscribes(f.sockets[0]), ['ok.topic:1_-:1-1']);
  assert.deepEqual(errors, [400, 400, 400, 400, 400]);
  c.close();
});

test('auth: the token is the WebSocket\'s first message, refreshed on auth-expiring; tickets for EventSource; a bearer for polls', async () => {
  const f = fakes();
  let n = 0;
  const getToken = async () => `tok${++n}`;
  const c = new Tether('http://hub.test', { ...f.env, getToken, backoff: { initial: 1 }, maxFailures: 1 });
  const s = c.subscribe('t', { since: '1-0' });
  await tick(5);
  const ws = f.sockets[0];
  assert.equal(ws.url, 'ws://hub.test/ws', 'never in the URL');
  assert.equal(f.fetches[0]?.url.pathname, undefined, 'since given: no head request');
  ws.open();
  assert.deepEqual(sent(ws), [{ type: 'auth', token: 'tok1' }, { type: 'subscribe', topic: 't', since: '1-0' }]);
  ws.msg({ type: 'auth-ok', expires_in: 6 });
  ws.msg({ type: 'auth-expiring', in: 2 });
  await tick();
  assert.deepEqual(JSON.parse(ws.sent[2]), { type: 'auth', token: 'tok2' });
  const errors = [];
  s.close();
  // Two topics on EventSource: a ticket for each.
  const s2 = c.subscribe('t', { since: '1-0', transports: ['sse', 'poll'], onError: (e) => errors.push(e) });
  c.subscribe('v', { since: '1-0', transports: ['sse', 'poll'] });
  await tick(5);
  const tickets = f.fetches.filter((x) => x.url.pathname === '/tickets');
  assert.deepEqual(tickets.map((x) => x.url.searchParams.get('topic')), ['t', 'v']);
  for (const ticket of tickets) {
    assert.equal(ticket.init.headers.Authorization, 'Bearer tok3');
    assert.equal(ticket.init.method, 'POST');
  }
  assert.equal(new URL(f.sources[0].url).searchParams.getAll('ticket').length, 2);
  f.sources[0].emit('auth-expired', '{}');
  f.sources[0].onerror();
  assert.equal(errors[0].reason, 'auth');
  f.answers.push(new Response('token expired', { status: 401 }));
  await tick(30);
  const poll = f.fetches.find((x) => x.url.pathname === '/poll');
  assert.equal(poll.init.headers.Authorization, 'Bearer tok4');
  assert.equal(errors[1].reason, 'auth');
  assert.equal(errors[1].status, 401);
  s2.close();
  c.close();
});

test('a bad topic (400) ends the subscription with the error', async () => {
  const f = fakes();
  const errors = [];
  const states = [];
  const c = new Tether('http://hub.test', { ...f.env, transports: ['poll'] });
  f.answers.push(new Response('bad topic', { status: 400 }));
  c.subscribe('t', { since: '1-1', onError: (e) => errors.push(`${e.reason} ${e.status}`), onState: (st) => states.push(st) });
  await tick(10);
  assert.deepEqual(errors, ['http 400']);
  assert.deepEqual(states, ['connecting', 'closed']);
});

test('publish: over the open WebSocket, acknowledged; over HTTP with the same key when refused there, retried', async () => {
  const f = fakes();
  const c = new Tether('http://hub.test', { ...f.env, getToken: () => 'k', backoff: { initial: 1 } });
  c.subscribe('t', { since: '1-0' });
  await tick(5);
  const ws = f.sockets[0];
  ws.open();
  ws.msg({ type: 'auth-ok' });
  const p = c.publish('t', { a: 1 }, { type: 'note' });
  await tick();
  const m = sent(ws).at(-1);
  assert.equal(m.type, 'publish');
  assert.equal(m.topic, 't');
  assert.equal(m.data, '{"a":1}');
  assert.equal(m.event, 'note');
  assert.match(m.id, /^[0-9a-f]{24}$/);
  ws.msg({ control: 'published', topic: 't', id: '1-5', key: m.id });
  assert.deepEqual(await p, { id: '1-5' });
  // Refused on the socket (the error names the topic, not the key): the same key over HTTP.
  const q = c.publish('other', 'x', { key: 'mine' });
  await tick();
  assert.deepEqual(sent(ws).at(-1), { type: 'publish', topic: 'other', data: 'x', id: 'mine' });
  f.answers.push(new Response('busy', { status: 503 }));
  f.answers.push(Response.json({ id: '1-6', duplicate: true }));
  ws.msg({ control: 'error', topic: 'other', error: 'not allowed' });
  assert.deepEqual(await q, { id: '1-6', duplicate: true });
  const posts = f.fetches.filter((x) => x.init.method === 'POST');
  assert.equal(posts.length, 2);
  for (const post of posts) {
    assert.equal(post.url.pathname, '/topics/other');
    assert.equal(post.init.headers['Tether-Publish-Id'], 'mine');
    assert.equal(post.init.headers.Authorization, 'Bearer k');
    assert.equal(post.init.body, 'x');
  }
  // Over HTTP when asked, and a refusal that retrying will not fix.
  f.answers.push(new Response('no', { status: 403 }));
  await assert.rejects(c.publish('u', 'y', { via: 'http' }), (e) => e.reason === 'forbidden' && e.status === 403);
  c.close();
});

test('rpc: over the open WebSocket by id, answers in any order; errors, timeouts and a disconnect reject; over HTTP without a socket', async () => {
  const f = fakes();
  const c = new Tether('http://hub.test', { ...f.env, getToken: () => 'k', backoff: { initial: 1 } });
  // No socket: POST /rpc with the token.
  f.answers.push(Response.json({ data: { n: 1 } }));
  assert.deepEqual(await c.rpc('add', [1]), { n: 1 });
  const post = f.fetches.at(-1);
  assert.equal(post.url.pathname, '/rpc');
  assert.equal(post.init.method, 'POST');
  assert.equal(post.init.headers.Authorization, 'Bearer k');
  assert.deepEqual(JSON.parse(post.init.body), { method: 'add', data: [1] });
  f.answers.push(Response.json({ code: 404, reason: 'no such method' }, { status: 404 }));
  await assert.rejects(c.rpc('nope'), (e) => e.reason === 'rpc' && e.status === 404 && e.message === 'no such method');
  // A fetch that aborts when its signal says (as fetch does): the call's timeout.
  f.answers.push((u, init) => new Promise((_, no) => init.signal.addEventListener('abort', () => no(init.signal.reason))));
  const never = assert.rejects(c.rpc('never', null, { timeout: 20 }), (e) => e.reason === 'timeout');
  await tick(40);
  await never;
  // With a socket: calls on it, each answered by its id.
  c.subscribe('t', { since: '1-0' });
  await tick(5);
  const ws = f.sockets[0];
  ws.open();
  const first = c.rpc('a', { x: 1 });
  const second = c.rpc('b');
  await tick();
  const calls = sent(ws).filter((m) => m.type === 'rpc');
  assert.deepEqual(calls.map((m) => [m.method, m.data]), [['a', { x: 1 }], ['b', undefined]]);
  const [a, b] = calls.map((m) => m.id);
  assert.notEqual(a, b);
  ws.msg({ control: 'rpc-error', id: b, code: 429, reason: 'slow down' });
  ws.msg({ control: 'rpc-result', id: a, data: [1, 2] });
  await assert.rejects(second, (e) => e.reason === 'rpc' && e.status === 429 && e.message === 'slow down');
  assert.deepEqual(await first, [1, 2]);
  // A late answer to a call that timed out is ignored.
  const late = c.rpc('late', 1, { timeout: 20 });
  await assert.rejects(late, (e) => e.reason === 'timeout');
  ws.msg({ control: 'rpc-result', id: sent(ws).at(-1).id, data: 'late' });
  // Cut: the call in flight is rejected and never sent again.
  const cut = c.rpc('cut');
  await tick();
  ws.drop();
  await assert.rejects(cut, (e) => e.reason === 'network');
  await tick(20);
  const again = f.sockets.at(-1);
  assert.notEqual(again, ws);
  again.open();
  await tick();
  assert.equal(sent(again).filter((m) => m.type === 'rpc').length, 0);
  c.close();
});

test('Node without window or document: no page events, and the client still works', () => {
  assert.equal(typeof globalThis.window, 'undefined');
  const c = new Tether('http://hub.test', { transports: ['poll'], fetch: async () => new Promise(() => {}) });
  const s = c.subscribe('t', { since: '1-1' });
  assert.equal(s.state, 'connecting');
  c.close();
  assert.equal(s.state, 'closed');
});

test('closed while getToken is pending: no connection is opened', async () => {
  const f = fakes();
  let release;
  const c = new Tether('http://hub.test', { ...f.env, getToken: () => new Promise((r) => { release = r; }) });
  const s = c.subscribe('t', { since: '1-1' });
  await tick();
  s.close();
  release('late');
  await tick(10);
  assert.equal(f.sockets.length, 0);
  assert.equal(s.state, 'closed');
});
