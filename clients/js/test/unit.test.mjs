// Unit tests of the built package (dist/), with Node's test runner and
// fake transports: no server, no browser.
//
//   node build.mjs && node --test test/unit.test.mjs

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Tether, availableTransports, backoffDelay, compareIds, isId, parsePoll, parseWsMessage, TRANSPORTS,
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
    { kind: 'event', event: { topic: 'news', id: '5-7', type: 'update', data: 'the text' } });
  assert.deepEqual(parseWsMessage('{"topic":"news","id":"5-8","event":"message","data":"x","key":"order-42"}').event,
    { topic: 'news', id: '5-8', type: 'message', data: 'x', key: 'order-42' });
  assert.deepEqual(parseWsMessage('{"control":"gap","topic":"news","requested":"1-1","first":"5-1","resume":"5-0"}'),
    { kind: 'gap', gap: { topic: 'news', requested: '1-1', first: '5-1', resume: '5-0' } });
  assert.deepEqual(parseWsMessage('{"control":"gap","topic":"n","requested":"1-1","first":null,"resume":"1-1","lost":{"first":"1-2","last":"1-3"}}').gap,
    { topic: 'n', requested: '1-1', first: null, resume: '1-1', lost: { first: '1-2', last: '1-3' } });
  assert.deepEqual(parseWsMessage('{"topic":"news","event":"join","member":"alice"}'),
    { kind: 'presence', change: { event: 'join', member: 'alice' } });
  assert.deepEqual(parseWsMessage('{"type":"auth-ok","expires_in":30}'), { kind: 'auth-ok', expiresIn: 30 });
  assert.deepEqual(parseWsMessage('{"type":"auth-expiring","in":10}'), { kind: 'auth-expiring', in: 10 });
  assert.deepEqual(parseWsMessage('{"control":"published","id":"5-9","key":"k"}'),
    { kind: 'published', id: '5-9', key: 'k', duplicate: false });
  assert.deepEqual(parseWsMessage('{"control":"published","id":"5-9","key":"k","duplicate":true}').duplicate, true);
  assert.deepEqual(parseWsMessage('{"control":"error","error":"not allowed","key":"k"}'),
    { kind: 'error', error: 'not allowed', key: 'k' });
  for (const odd of ['null', '[]', '3', '{"id":"1-1"}', '{"data":"x"}', '{"something":"else"}'])
    assert.deepEqual(parseWsMessage(odd), { kind: 'unknown' }, odd);
  assert.throws(() => parseWsMessage('not json'), SyntaxError);
});

test('envelopes: long-poll answers', () => {
  const a = parsePoll(JSON.parse('{"topic":"t","events":[{"topic":"t","id":"3-1","event":"message","data":"a"},{"bogus":1}],"next":"3-1","gap":null}'));
  assert.deepEqual(a, { events: [{ topic: 't', id: '3-1', type: 'message', data: 'a' }], next: '3-1', gap: null });
  const b = parsePoll({ topic: 't', events: [], next: '4-0', gap: { topic: 't', requested: '3-9', first: null, resume: '4-0' } });
  assert.equal(b.gap.resume, '4-0');
  assert.throws(() => parsePoll({ events: 'no', next: '1-1' }), TypeError);
  assert.throws(() => parsePoll(null), TypeError);
});

// ---------------------------------------------------------------------------
// Fakes: WebSocket, EventSource and fetch, driven by the test.

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

function fakes({ head = '7-0' } = {}) {
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
      return Response.json({ topic: 't', events: [], next: head, gap: null });
    }
    if (u.pathname === '/tickets') return Response.json({ ticket: `t${fetches.length}`, expires_in: 30 });
    const answer = answers.shift();
    if (!answer) return new Promise(() => {}); // a poll that never answers
    return typeof answer === 'function' ? answer(u) : answer;
  };
  return { sockets, sources, fetches, answers, env: { WebSocket: FakeWebSocket, EventSource: FakeEventSource, fetch } };
}

const ev = (id, data = id, event = 'message') => ({ topic: 't', id, event, data });

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
  assert.equal(new URL(ws.url).searchParams.get('lastEventId'), '7-0');
  assert.equal(new URL(ws.url).protocol, 'ws:');
  ws.open();
  for (const id of ['7-1', '7-2', '7-2', '7-1', '7-3', '7-10']) ws.msg(ev(id));
  assert.deepEqual(got, ['7-1', '7-2', '7-3', '7-10']);
  assert.equal(s.lastId, '7-10');
  ws.drop(1006);
  await tick(20);
  const again = f.sockets[1];
  assert.equal(new URL(again.url).searchParams.get('lastEventId'), '7-10', 'resumes from the last id');
  again.open();
  for (const id of ['7-9', '7-10', '7-11', '8-1']) again.msg(ev(id));
  assert.deepEqual(got, ['7-1', '7-2', '7-3', '7-10', '7-11', '8-1']);
  s.close();
  assert.equal(again.closed, 1000);
  again.msg(ev('8-2'));
  assert.deepEqual(got.at(-1), '8-1', 'nothing after close');
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
  assert.equal(f.sockets[0].url, 'wss://hub.test/base/topics/t/ws?lastEventId=5-3&envelope=1');
  f.sockets[0].drop(1006);
  await tick(20);
  assert.equal(f.sockets.length, 2);
  f.sockets[1].drop(1006);
  await tick(20);
  assert.equal(f.sockets.length, 2, 'no third WebSocket');
  assert.equal(f.sources.length, 1);
  const es = f.sources[0];
  assert.equal(es.url, 'https://hub.test/base/topics/t/events?lastEventId=5-3');
  es.onopen();
  es.emit('message', 'a', '5-4');
  es.emit('update', 'b', '5-5');
  es.emit('message', 'old', '5-5');
  assert.deepEqual(got, ['5-4:message:a', '5-5:update:b']);
  assert.deepEqual(errors, ['network/ws', 'network/ws']);
  assert.deepEqual(states, ['connecting/ws', 'connecting/sse', 'open/sse']);
  assert.equal(s.transport, 'sse');
  // The event stream fails: the next connection resumes from 5-5.
  es.onerror();
  assert.ok(es.closed, 'the client closes it rather than let the browser reconnect');
  await tick(20);
  assert.equal(new URL(f.sources[1].url).searchParams.get('lastEventId'), '5-5');
  c.close();
});

test('fallback: to long polling, which resumes with since= and follows next', async () => {
  const f = fakes();
  const got = [];
  const c = new Tether('http://hub.test', { ...f.env, transports: ['sse', 'poll'], backoff: { initial: 1 }, maxFailures: 1 });
  const s = c.subscribe('t', { since: '9-1', onEvent: (e) => got.push(e.id) });
  await tick();
  f.sources[0].onerror();
  f.answers.push(Response.json({ topic: 't', events: [ev('9-2'), ev('9-3')], next: '9-3', gap: null }));
  f.answers.push(Response.json({ topic: 't', events: [], next: '9-3', gap: null }));
  f.answers.push(Response.json({ topic: 't', events: [ev('9-3'), ev('9-4')], next: '9-4', gap: null }));
  await tick(30);
  const polls = f.fetches.filter((x) => x.url.pathname === '/topics/t/poll').map((x) => x.url.searchParams.get('since'));
  assert.deepEqual(polls, ['9-1', '9-3', '9-3', '9-4']);
  assert.deepEqual(got, ['9-2', '9-3', '9-4']);
  assert.equal(s.state, 'open');
  assert.equal(s.transport, 'poll');
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
  assert.equal(new URL(f.sockets[0].url).searchParams.get('lastEventId'), '12-4');
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
    if (sockets) assert.equal(new URL(f.sockets[0].url).searchParams.get('lastEventId'), null, `${status}: from now`);
    assert.equal(s.state, state, `${status}`);
    c.close();
  }
});

test('auth: the token is the WebSocket\'s first message, refreshed on auth-expiring; a ticket for EventSource; a bearer for polls', async () => {
  const f = fakes();
  let n = 0;
  const getToken = async () => `tok${++n}`;
  const c = new Tether('http://hub.test', { ...f.env, getToken, backoff: { initial: 1 }, maxFailures: 1 });
  const s = c.subscribe('t', { since: '1-0' });
  await tick(5);
  const ws = f.sockets[0];
  assert.equal(new URL(ws.url).searchParams.get('auth'), '1');
  assert.equal(f.fetches[0]?.url.pathname, undefined, 'since given: no head request');
  ws.open();
  assert.deepEqual(ws.sent.map((m) => JSON.parse(m)), [{ type: 'auth', token: 'tok1' }]);
  ws.msg({ type: 'auth-ok', expires_in: 6 });
  ws.msg({ type: 'auth-expiring', in: 2 });
  await tick();
  assert.deepEqual(JSON.parse(ws.sent[1]), { type: 'auth', token: 'tok2' });
  // Closed for an expired token: the reason is auth, and the next
  // connection (the next transport, with maxFailures 1... but this one
  // worked: it stays on WebSocket) gets a fresh token.
  const errors = [];
  s.close();
  const s2 = c.subscribe('t', { since: '1-0', transports: ['sse', 'poll'], onError: (e) => errors.push(e) });
  await tick(5);
  const ticket = f.fetches.find((x) => x.url.pathname === '/tickets');
  assert.equal(ticket.url.searchParams.get('topic'), 't');
  assert.equal(ticket.init.headers.Authorization, 'Bearer tok3');
  assert.equal(ticket.init.method, 'POST');
  assert.match(f.sources[0].url, /[?&]ticket=t\d+/);
  f.sources[0].emit('auth-expired', '{}');
  f.sources[0].onerror();
  assert.equal(errors[0].reason, 'auth');
  f.answers.push(new Response('token expired', { status: 401 }));
  await tick(30);
  const poll = f.fetches.find((x) => x.url.pathname === '/topics/t/poll');
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

test('publish: over the open WebSocket as an acknowledged envelope; over HTTP with a key otherwise, retried with the same key', async () => {
  const f = fakes();
  const c = new Tether('http://hub.test', { ...f.env, getToken: () => 'k', backoff: { initial: 1 } });
  c.subscribe('t', { since: '1-0' });
  await tick(5);
  const ws = f.sockets[0];
  ws.open();
  ws.msg({ type: 'auth-ok' });
  const p = c.publish('t', { a: 1 }, { type: 'note' });
  await tick();
  const sent = JSON.parse(ws.sent.at(-1));
  assert.equal(sent.data, '{"a":1}');
  assert.equal(sent.event, 'note');
  assert.match(sent.id, /^[0-9a-f]{24}$/);
  ws.msg({ control: 'published', id: '1-5', key: sent.id });
  assert.deepEqual(await p, { id: '1-5' });
  // Refused on the socket: the same key over HTTP.
  const q = c.publish('t', 'x', { key: 'mine' });
  await tick();
  f.answers.push(new Response('busy', { status: 503 }));
  f.answers.push(Response.json({ id: '1-6', duplicate: true }));
  ws.msg({ control: 'error', error: 'not open to WebSocket publishers', key: 'mine' });
  assert.deepEqual(await q, { id: '1-6', duplicate: true });
  const posts = f.fetches.filter((x) => x.init.method === 'POST');
  assert.equal(posts.length, 2);
  for (const post of posts) {
    assert.equal(post.url.pathname, '/topics/t');
    assert.equal(post.init.headers['Tether-Publish-Id'], 'mine');
    assert.equal(post.init.headers.Authorization, 'Bearer k');
    assert.equal(post.init.body, 'x');
  }
  // An HTTP refusal that retrying will not fix.
  f.answers.push(new Response('no', { status: 403 }));
  await assert.rejects(c.publish('u', 'y'), (e) => e.reason === 'forbidden' && e.status === 403);
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
