// HTTP/2 checks against a running tether server with Node's built-in
// `node:http2` (no packages): several event streams and a publish on one
// session, a Last-Event-ID resume, WebSockets over an extended CONNECT
// (RFC 8441) with the frames built and parsed here, and a publish refused
// for want of a token answered 401 on its stream.
//
//   node node-client.mjs h2c HOST PORT TOKEN
//   node node-client.mjs tls HOST PORT TOKEN     (ALPN h2, certificate not checked)
//
// Prints one line per check, "ok NAME" or "FAIL NAME: why"; exits non-zero
// if any failed. Every wait has a time limit, so a hang is a failure.

import http2 from "node:http2";
import tls from "node:tls";
import crypto from "node:crypto";

const [mode, host, portText, token] = process.argv.slice(2);
if (!["h2c", "tls"].includes(mode) || !host || !portText || !token) {
  console.error("usage: node-client.mjs h2c|tls HOST PORT TOKEN");
  process.exit(2);
}
const port = Number(portText);
const WAIT_MS = 10_000;
const label = `node-http2 ${mode}`;
// Topic names unique to this run and transport.
const run = `${mode}-${process.pid}-${Date.now()}`;

// A last resort: the whole run ends within two minutes whatever hangs.
setTimeout(() => {
  console.log(`FAIL ${label}: the run did not finish within 120 s`);
  process.exit(1);
}, 120_000).unref();

/** `promise`, or a rejection naming `what` after `ms`. */
function within(what, promise, ms = WAIT_MS) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** A new session; resolves once the server's first SETTINGS arrived. */
async function connect() {
  const options = { settings: { enablePush: false } };
  let authority = `http://${host}:${port}`;
  if (mode === "tls") {
    authority = `https://localhost:${port}`;
    options.createConnection = () =>
      tls.connect({
        host,
        port,
        servername: "localhost",
        ALPNProtocols: ["h2"],
        rejectUnauthorized: false,
      });
  }
  const session = http2.connect(authority, options);
  session.errors = [];
  session.on("error", (e) => session.errors.push(e));
  await within(
    "the server's SETTINGS",
    new Promise((resolve, reject) => {
      session.once("remoteSettings", resolve);
      session.once("error", reject);
      session.once("close", () => reject(new Error("the session closed before SETTINGS")));
    }),
  );
  if (mode === "tls") {
    assert(session.alpnProtocol === "h2", `ALPN chose ${session.alpnProtocol}, not h2`);
  }
  return session;
}

/**
 * Watches a stream: its response head, its body as bytes, its end, its
 * close (with the RST_STREAM code, if any) and its errors.
 */
function watch(stream) {
  const w = { stream, head: null, chunks: [], ended: false, closed: false, error: null, waiters: [] };
  const poke = () => {
    for (const f of w.waiters.splice(0)) f();
  };
  stream.on("response", (headers) => {
    w.head = headers;
    poke();
  });
  stream.on("data", (chunk) => {
    w.chunks.push(chunk);
    poke();
  });
  stream.on("end", () => {
    w.ended = true;
    poke();
  });
  stream.on("close", () => {
    w.closed = true;
    poke();
  });
  stream.on("error", (e) => {
    w.error = e;
    poke();
  });
  w.poke = poke;
  w.body = () => Buffer.concat(w.chunks);
  w.take = () => {
    const all = Buffer.concat(w.chunks);
    w.chunks = [];
    return all;
  };
  /** Waits until `condition()` holds; fails at once on a stream error. */
  w.until = (what, condition) =>
    within(
      what,
      new Promise((resolve, reject) => {
        const test = () => {
          let ok;
          try {
            ok = condition();
          } catch (e) {
            reject(e);
            return;
          }
          if (ok) resolve();
          else if (w.error) reject(new Error(`${what}: stream error ${w.error.message}`));
          else if (w.closed) reject(new Error(`${what}: the stream closed (RST_STREAM code ${stream.rstCode})`));
          else w.waiters.push(test);
        };
        test();
      }),
    );
  return w;
}

/** A request; `body` undefined: none; null: the stream is left open for one. */
function request(session, headers, body) {
  const fields = { ":scheme": mode === "tls" ? "https" : "http", ...headers };
  const stream = session.request(fields, { endStream: body === undefined });
  const w = watch(stream);
  if (body !== undefined && body !== null) stream.end(body);
  return w;
}

/** POST /topics/TOPIC?event=TYPE with the token; resolves the event's id. */
async function publish(session, topic, data, type) {
  const path = `/topics/${topic}` + (type ? `?event=${encodeURIComponent(type)}` : "");
  const w = request(
    session,
    { ":method": "POST", ":path": path, authorization: `Bearer ${token}`, "content-type": "text/plain" },
    data,
  );
  await w.until(`the answer to publishing to ${topic}`, () => w.ended);
  assert(w.head[":status"] === 200, `publish: status ${w.head[":status"]}: ${w.body().toString("utf8").trim()}`);
  const answer = JSON.parse(w.body().toString("utf8"));
  assert(typeof answer.id === "string" && answer.id.length > 0, `publish: no id in ${w.body()}`);
  return answer.id;
}

// --- Server-Sent Events ------------------------------------------------------

/** An event stream's events, parsed as the WHATWG rules say. */
function sse(session, topic, lastEventId) {
  const headers = { ":method": "GET", ":path": `/topics/${topic}/events`, accept: "text/event-stream" };
  if (lastEventId !== undefined) headers["last-event-id"] = lastEventId;
  const w = request(session, headers);
  w.events = [];
  w.retry = null;
  let text = "";
  let field = { data: [], event: "", id: null };
  const decoder = new TextDecoder("utf-8");
  w.stream.on("data", (chunk) => {
    text += decoder.decode(chunk, { stream: true });
    for (;;) {
      const at = text.search(/\r\n|\r|\n/);
      if (at < 0) break;
      const line = text.slice(0, at);
      text = text.slice(at + (text.startsWith("\r\n", at) ? 2 : 1));
      if (line === "") {
        if (field.data.length > 0) {
          w.events.push({ id: field.id, event: field.event || "message", data: field.data.join("\n") });
        }
        field = { data: [], event: "", id: field.id };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "data") field.data.push(value);
      else if (name === "event") field.event = value;
      else if (name === "id" && !value.includes("\0")) field.id = value;
      else if (name === "retry" && /^[0-9]+$/.test(value)) w.retry = Number(value);
    }
    // watch()'s own listener ran before this one: wake the waiters again.
    w.poke();
  });
  /** Waits for the response head and the `retry:` line the server opens with. */
  w.open = async () => {
    await w.until(`${topic}/events opens`, () => w.head !== null && w.retry !== null);
    assert(w.head[":status"] === 200, `${topic}/events: status ${w.head[":status"]}`);
    const type = w.head["content-type"] || "";
    assert(type.startsWith("text/event-stream"), `${topic}/events: content-type ${type}`);
  };
  return w;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function checkSseFanOut() {
  const session = await connect();
  try {
    const topic = `node-sse-${run}`;
    const streams = [sse(session, topic), sse(session, topic), sse(session, topic)];
    await Promise.all(streams.map((s) => s.open()));
    const ids = new Set(streams.map((s) => s.stream.id));
    assert(ids.size === streams.length, `the event streams share a stream id: ${[...ids]}`);
    const data = "line one\nline two from node:http2 ✓";
    const id = await publish(session, topic, data, "node-update");
    const want = { id, event: "node-update", data };
    for (const [i, s] of streams.entries()) {
      await s.until(`event stream ${i + 1} gets the event`, () => s.events.length >= 1);
      assert(same(s.events, [want]), `event stream ${i + 1} got ${JSON.stringify(s.events)}, want ${JSON.stringify([want])}`);
    }
    assert(session.errors.length === 0, `session errors: ${session.errors.map((e) => e.message)}`);
  } finally {
    session.destroy();
  }
}

async function checkSseResume() {
  const session = await connect();
  try {
    const topic = `node-resume-${run}`;
    const ids = [];
    for (const n of [1, 2, 3]) ids.push(await publish(session, topic, `step ${n}`, "step"));
    const s = sse(session, topic, ids[0]);
    await s.open();
    await s.until("the events after Last-Event-ID are replayed", () => s.events.length >= 2);
    // One more, published live: it must come next, with nothing between.
    ids.push(await publish(session, topic, "step 4", "step"));
    await s.until("the live event after the replay", () => s.events.length >= 3);
    const want = [2, 3, 4].map((n) => ({ id: ids[n - 1], event: "step", data: `step ${n}` }));
    assert(same(s.events, want), `got ${JSON.stringify(s.events)}, want ${JSON.stringify(want)}`);
  } finally {
    session.destroy();
  }
}

// --- WebSocket over an extended CONNECT (RFC 8441) ---------------------------

/** A masked client frame (RFC 6455 section 5.2) with FIN set. */
function wsFrame(opcode, payload) {
  const n = payload.length;
  let head;
  if (n < 126) {
    head = Buffer.from([0x80 | opcode, 0x80 | n]);
  } else if (n < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  const mask = crypto.randomBytes(4);
  const masked = Buffer.alloc(n);
  for (let i = 0; i < n; i++) masked[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, masked]);
}

/**
 * The first whole server frame of `data`: { fin, opcode, payload, rest },
 * or null while it is incomplete. A server frame must not be masked.
 */
function wsParse(data) {
  if (data.length < 2) return null;
  const fin = (data[0] & 0x80) !== 0;
  assert((data[0] & 0x70) === 0, `a server frame with RSV bits set: ${data[0].toString(16)}`);
  const opcode = data[0] & 0x0f;
  assert((data[1] & 0x80) === 0, "a masked server frame");
  let n = data[1] & 0x7f;
  let at = 2;
  if (n === 126) {
    if (data.length < 4) return null;
    n = data.readUInt16BE(2);
    at = 4;
  } else if (n === 127) {
    if (data.length < 10) return null;
    const big = data.readBigUInt64BE(2);
    assert(big <= BigInt(16 << 20), `a server frame of ${big} bytes`);
    n = Number(big);
    at = 10;
  }
  if (data.length < at + n) return null;
  return { fin, opcode, payload: data.subarray(at, at + n), rest: data.subarray(at + n) };
}

/** Opens a WebSocket on `path` as a stream of `session`. */
async function websocket(session, path) {
  assert(
    session.remoteSettings.enableConnectProtocol === true,
    `SETTINGS_ENABLE_CONNECT_PROTOCOL is ${session.remoteSettings.enableConnectProtocol}`,
  );
  const stream = session.request(
    {
      ":method": "CONNECT",
      ":protocol": "websocket",
      ":scheme": mode === "tls" ? "https" : "http",
      ":path": path,
      "sec-websocket-version": "13",
    },
    { endStream: false },
  );
  const w = watch(stream);
  await w.until(`the answer to CONNECT ${path}`, () => w.head !== null);
  assert(w.head[":status"] === 200, `CONNECT ${path}: status ${w.head[":status"]}`);
  let pending = Buffer.alloc(0);
  /** The next whole message (frames of one message joined). */
  w.next = async (what) => {
    let message = null;
    await w.until(what, () => {
      pending = Buffer.concat([pending, w.take()]);
      for (;;) {
        const frame = wsParse(pending);
        if (frame === null) return false;
        pending = Buffer.from(frame.rest);
        if (frame.opcode === 0x9 || frame.opcode === 0xa) continue; // a ping or pong
        if (message === null) {
          assert(frame.opcode !== 0, "a continuation frame with no message begun");
          message = { opcode: frame.opcode, parts: [Buffer.from(frame.payload)] };
        } else {
          assert(frame.opcode === 0, `opcode ${frame.opcode} inside a fragmented message`);
          message.parts.push(Buffer.from(frame.payload));
        }
        if (frame.fin) return true;
      }
    });
    return { opcode: message.opcode, payload: Buffer.concat(message.parts) };
  };
  w.send = (opcode, payload) => stream.write(wsFrame(opcode, payload));
  /** Sends close 1000, expects close 1000 back and the stream's end. */
  w.close = async () => {
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    w.send(0x8, code);
    const reply = await w.next("the close frame back");
    assert(reply.opcode === 0x8, `after close: opcode ${reply.opcode}`);
    assert(reply.payload.length >= 2 && reply.payload.readUInt16BE(0) === 1000, `close payload ${reply.payload.toString("hex")}`);
    stream.end();
    await w.until("the stream ends after the close", () => w.ended);
  };
  return w;
}

async function checkWebSocketEcho() {
  const session = await connect();
  try {
    const ws = await websocket(session, "/echo");
    const big = Buffer.alloc(70_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    const messages = [
      [0x1, Buffer.from("hello over RFC 8441 from node:http2")],
      [0x1, Buffer.from("é".repeat(150))], // a 16-bit length
      [0x2, big], // a 64-bit length, more than one stream window
    ];
    for (const [opcode, payload] of messages) {
      ws.send(opcode, payload);
      const got = await ws.next(`the echo of ${payload.length} bytes`);
      assert(got.opcode === opcode, `echo: opcode ${got.opcode}, want ${opcode}`);
      assert(got.payload.equals(payload), `echo: ${got.payload.length} bytes differ from the ${payload.length} sent`);
    }
    await ws.close();
  } finally {
    session.destroy();
  }
}

async function checkWebSocketTopic() {
  const session = await connect();
  try {
    const topic = `chat.node-${run}`;
    // Resuming from an event published first makes delivery independent of
    // when the subscription takes effect: everything after it must come.
    const first = await publish(session, topic, "before", "note");
    const ws = await websocket(session, `/topics/${topic}/ws?lastEventId=${encodeURIComponent(first)}`);
    const id = await publish(session, topic, "published over another stream", "note");
    const got = await ws.next("the published event over the WebSocket");
    assert(got.opcode === 0x1, `event: opcode ${got.opcode}`);
    const event = JSON.parse(got.payload.toString("utf8"));
    const want = { topic, id, event: "note", data: "published over another stream" };
    assert(same(event, want), `got ${JSON.stringify(event)}, want ${JSON.stringify(want)}`);
    // A chat topic takes a text message as a publish; the publisher gets
    // the event back as every subscriber does.
    ws.send(0x1, Buffer.from("sent as a masked frame"));
    const echoed = JSON.parse((await ws.next("the message's own event")).payload.toString("utf8"));
    assert(
      echoed.topic === topic && echoed.data === "sent as a masked frame" && typeof echoed.id === "string" && echoed.id !== id,
      `got ${JSON.stringify(echoed)}`,
    );
    await ws.close();
  } finally {
    session.destroy();
  }
}

// --- A refused publish ---------------------------------------------------------

/**
 * A publish with no token gets 401 on its stream (not a stream error), and
 * the session goes on. `early`: the body is held back until the answer
 * comes, so the server must refuse on the head alone.
 */
async function checkRefused(early) {
  const session = await connect();
  try {
    const headers = { ":method": "POST", ":path": `/topics/node-refused-${run}`, "content-type": "text/plain" };
    const w = request(session, headers, early ? null : "no token here");
    await w.until("the refusal", () => w.head !== null);
    assert(w.head[":status"] === 401, `status ${w.head[":status"]}, want 401`);
    const challenge = w.head["www-authenticate"] || "";
    assert(challenge.startsWith("Bearer"), `www-authenticate: ${challenge}`);
    await w.until("the refusal's end", () => w.ended);
    if (early && !w.stream.closed && !w.stream.destroyed) w.stream.end("the body, late");
    await w.until("the stream closes", () => w.closed);
    assert(w.error === null, `stream error: ${w.error && w.error.message}`);
    assert(!w.stream.rstCode, `the stream was reset with code ${w.stream.rstCode}`);
    // The session is still good.
    const h = request(session, { ":method": "GET", ":path": "/healthz" });
    await h.until("GET /healthz after the refusal", () => h.ended);
    assert(h.head[":status"] === 200, `healthz: status ${h.head[":status"]}`);
    assert(session.errors.length === 0, `session errors: ${session.errors.map((e) => e.message)}`);
  } finally {
    session.destroy();
  }
}

const checks = [
  ["three event streams and a publish on one session get the event (id, event, data)", checkSseFanOut],
  ["Last-Event-ID on a new stream resumes with exactly the events after it", checkSseResume],
  ["RFC 8441 WebSocket echo (masked frames, 7/16/64-bit lengths) and close", checkWebSocketEcho],
  ["RFC 8441 WebSocket on a topic gets a publish and its own message, and closes", checkWebSocketTopic],
  ["a publish without a token gets 401 and the session goes on", () => checkRefused(false)],
  ["a publish without a token, its body held back, gets 401 before the body", () => checkRefused(true)],
];

let failed = 0;
for (const [name, check] of checks) {
  try {
    await check();
    console.log(`ok ${label}: ${name}`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${label}: ${name}: ${e && e.message ? e.message : e}`);
  }
}
process.exit(failed ? 1 : 0);
