// Runs one JavaScript snippet of the docs in headless Chromium, as a page
// of the server's own origin would, and prints what it logs: the browser
// half of docs/run-snippets.py's `js run` blocks (the other half is Node).
// A page picks WebSocket where Node 20 falls back to long polling, so a
// snippet that only works on one transport fails here.
//
//   node docs/run-in-chromium.mjs SNIPPET.mjs ORIGIN
//
// The snippet runs as an inline module script of the page
// ORIGIN/tether-client.js (the client the hub serves, shown as text), so
// that its `import ... from "./tether-client.js"` loads that client. console.log and console.error lines go to
// standard output in order. Exits 0 once the snippet's last statement has
// run, 1 on an uncaught error, a rejected promise or 25 s without ending.
//
// Environment: CHROMIUM (the browser; default /usr/bin/chromium). Takes
// playwright-core from conformance/browser/node_modules (its run.sh
// installs it).

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const [snippetPath, origin] = process.argv.slice(2);
if (!snippetPath || !origin) {
  console.error('usage: node docs/run-in-chromium.mjs SNIPPET.mjs ORIGIN');
  process.exit(2);
}
const require = createRequire(new URL('../conformance/browser/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const DONE = '__tether_docs_snippet_done__';
// A module script's top-level await holds the statement after it back
// until the snippet is through; a throw or a rejection never reaches it.
const module = `${readFileSync(snippetPath, 'utf8')}\n;console.log(${JSON.stringify(DONE)});\n`;

let status = 1;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking'], // playwright gives it a fresh profile
});
try {
  const tab = await browser.newPage();
  const ended = new Promise((resolve) => {
    tab.on('console', (message) => {
      if (message.text() === DONE) {
        resolve(0);
      } else if (message.location().url.endsWith('/favicon.ico')) {
        // the browser's own request for the page's icon, not the snippet's
      } else if (message.type() === 'log' || message.type() === 'error' || message.type() === 'warning') {
        console.log(message.text());
      }
    });
    tab.on('pageerror', (error) => {
      console.log(`uncaught in the page: ${error.message}`);
      resolve(1);
    });
  });
  const timeout = new Promise((resolve) => setTimeout(() => {
    console.log('the snippet did not end within 25 s');
    resolve(1);
  }, 25_000));
  // The page is the client's own URL on the server (a real answer of a
  // local address, so Chromium's local network checks let the snippet's
  // connections through, where a page made up by request interception
  // counts as public and is refused them).
  await tab.goto(`${origin}/tether-client.js`);
  await tab.addScriptTag({ type: 'module', content: module });
  status = await Promise.race([ended, timeout]);
} finally {
  await browser.close();
}
process.exit(status);
