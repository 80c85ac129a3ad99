// tap coverage map: measure coverage of the library (lib/, through build/lib and its
// source maps) for every spec, not of the test harness or the dev scripts.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * @param {string} dir
 * @returns {string[]}
 */
function jsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? jsFiles(join(dir, entry.name)) : entry.name.endsWith('.js') ? [join(dir, entry.name)] : [],
  );
}

/** @returns {string[]} */
export default function coverageMap() {
  return jsFiles('build/lib');
}
