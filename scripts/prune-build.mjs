// Deletes compiled files in build/ whose source is gone (a moved or deleted .ts leaves
// its old .js, .d.ts and .js.map behind, which tsc never removes). Without this, a stale
// build/lib file would be packed, counted by coverage, and a stale spec would still run.
// Only orphans are removed, so it is safe while other builds or tests use build/.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

const BUILD = 'build';
const OUTPUT = /\.(d\.ts|js\.map|js|d\.mts|mjs\.map|mjs)$/;

/** @param {string} dir @returns {string[]} */
function files(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

let removed = 0;
for (const file of files(BUILD)) {
  const match = OUTPUT.exec(file);
  if (match === null) continue;
  const stem = relative(BUILD, file).slice(0, -match[0].length);
  const sources = /mjs|mts/.test(match[1]) ? [`${stem}.mjs`, `${stem}.mts`] : [`${stem}.ts`, `${stem}.js`];
  if (sources.some((s) => existsSync(s))) continue;
  rmSync(file, { force: true });
  removed++;
}
if (removed > 0) process.stdout.write(`prune-build: removed ${removed} orphaned file(s) from ${BUILD}/\n`);
