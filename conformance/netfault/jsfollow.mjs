// The browser client (clients/js) as one of the fault runs' subscribers,
// under Node: it follows a topic from the start and prints what happens
// as JSON lines, one per event, gap signal, state change or error, until
// killed.
//
//   node jsfollow.mjs BASE TOPIC DIR
//
// The client is the one the hub serves (BASE/tether-client.js), written to
// DIR and imported, as a page would load it. Node 20 has no WebSocket or
// EventSource of its own, so it runs on the client's third transport,
// long polling, with its own resumption, backoff and gap handling.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [base, topic, dir] = process.argv.slice(2);
const out = (record) => process.stdout.write(JSON.stringify(record) + "\n");

let source = null;
for (let attempt = 0; source === null; attempt++) {
  try {
    const answer = await fetch(`${base}/tether-client.js`);
    if (answer.ok) source = await answer.text();
  } catch (error) {
    if (attempt > 100) throw error;
  }
  if (source === null) await new Promise((done) => setTimeout(done, 200));
}
const module = join(dir, `tether-client-${process.pid}.mjs`);
writeFileSync(module, source);
const { Tether } = await import(pathToFileURL(module).href);

const client = new Tether(base, { transports: ["poll"], pollTimeout: 5 });
client.subscribe(topic, {
  since: "0-0",
  onEvent: (event) => out({ kind: "event", type: event.type, id: event.id, data: event.data }),
  onGap: (gap) => out({ kind: "gap", gap }),
  onState: (state, transport) => out({ kind: "state", state, transport }),
  onError: (error) => out({ kind: "error", why: String(error && error.message) }),
});
