// What the single-script Chromium tests (conformance/h2/browser.mjs,
// conformance/h3/browser.mjs, conformance/h3/webtransport.mjs, admin.mjs)
// share: their pass/fail tally and summary line, starting and stopping
// `tether serve`, and Chromium's launch flags. Each script is started by
// a shell script that sources setup.sh beside this file (Chromium,
// playwright-core, the binary).

import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';

/** The flags every Chromium these tests start gets, besides its own. */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking'];

/**
 * A tally of checks printed as "ok   NAME" or "FAIL NAME: DETAIL", and
 * `summary()`, which prints "LABEL: N passed, M failed" (what .ci/run
 * counts) and sets the exit status.
 */
export function tally(label) {
  let passed = 0;
  let failed = 0;
  const failures = [];
  return {
    check(name, ok, detail = '') {
      if (ok) {
        passed++;
        console.log(`ok   ${name}`);
      } else {
        failed++;
        failures.push(name);
        console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
      }
    },
    summary() {
      // Repeated last, where a truncated log still shows them.
      for (const name of failures) console.log(`failed: ${name}`);
      console.log(`${label}: ${passed} passed, ${failed} failed`);
      process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
    },
  };
}

/**
 * Starts `BIN serve ARGS` (its pid appended to WORK/pids, so that the
 * shell script can end it if this process dies first); resolves once
 * every pattern in `wait` matched its standard output, with
 * `{ proc, matches, log }` (`matches[i]` the match of `wait[i]`, `log()`
 * its standard error so far).
 */
export function startServer({ bin, work, args, wait }) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, ['serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    appendFileSync(join(work, 'pids'), `${proc.pid}\n`);
    let out = '';
    let log = '';
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`no start in 10 s:\n${log}`)); }, 10_000);
    proc.stderr.on('data', (d) => { log += d; });
    proc.stdout.on('data', (d) => {
      out += d;
      const matches = wait.map((pattern) => pattern.exec(out));
      if (matches.every(Boolean)) {
        clearTimeout(timer);
        resolve({ proc, matches, log: () => log });
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited (${code}):\n${log}`)); });
  });
}

/** SIGTERM, then SIGKILL if it has not exited 10 s later. */
export async function stopServer(server) {
  if (server.proc.exitCode !== null || server.proc.signalCode !== null) return;
  const exited = new Promise((res) => server.proc.once('exit', res));
  server.proc.kill('SIGTERM');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** A fresh profile directory under WORK for one browser. */
export function freshProfile(work) {
  return mkdtempSync(join(work, 'profile-'));
}

/**
 * A page whose responses' protocols CDP reports (`protocols`: URL ->
 * protocol, the last seen; `wsStatus()`: the last WebSocket handshake's
 * status: 101 over HTTP/1.1, 200 over HTTP/2 or HTTP/3).
 */
export async function watchedPage(browser) {
  const page = await browser.newPage();
  const cdp = await page.context().newCDPSession(page);
  const protocols = new Map();
  cdp.on('Network.responseReceived', ({ response }) => protocols.set(response.url, response.protocol));
  let wsStatus = null;
  cdp.on('Network.webSocketHandshakeResponseReceived', ({ response }) => { wsStatus = response.status; });
  await cdp.send('Network.enable');
  return { page, protocols, wsStatus: () => wsStatus };
}
