// Builds the package: dist/*.js and *.d.ts with tsc (the npm package's ES
// modules and types), and dist/tether-client.min.js, one minified ES
// module with esbuild; prints its size minified and gzipped and fails when
// the gzipped size is over the limit.
//
//   node build.mjs           build
//   node build.mjs --demo    build, and copy the minified module to the
//                            hub's static directory (crates/hub-app/static/)
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
// 5 KiB until calls to the backend (client.rpc, about 300 bytes) and delta
// updates (the Fossil applier and its use, some 0.6 KiB) came.
const LIMIT = 6 * 1024;
const MIN = join(here, 'dist', 'tether-client.min.js');

rmSync(join(here, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [join(here, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(here, 'tsconfig.json')],
  { stdio: 'inherit' });
await build({
  entryPoints: [join(here, 'src', 'index.ts')],
  bundle: true,
  minify: true,
  // Members whose names end in "_" are the client's own (no wire format,
  // option or DOM name does): shortened, which keeps it under the limit.
  mangleProps: /_$/,
  format: 'esm',
  target: 'es2020',
  outfile: MIN,
  legalComments: 'none',
  banner: { js: '// tether-client (clients/js), built; do not edit.' },
});
const min = readFileSync(MIN);
const gz = gzipSync(min, { level: 9 }).length;
console.log(`tether-client: ${min.length} bytes minified, ${gz} bytes gzipped (limit ${LIMIT})`);
if (gz > LIMIT) {
  console.error(`tether-client: FAILED: ${gz} bytes gzipped is over the ${LIMIT}-byte limit`);
  process.exit(1);
}
if (process.argv.includes('--demo')) {
  copyFileSync(MIN, join(here, '..', '..', 'crates', 'hub-app', 'static', 'tether-client.js'));
}
