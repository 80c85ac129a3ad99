// The import check as a test: dependency-cruiser with the repo's .dependency-cruiser.cjs
// passes on the built tree (build/, fresh from `npm test`'s pretest), and fails, naming
// the rule, on a small tree that breaks each rule, so the check is known to be able to fail.
// A scan of lib/'s sources adds what the built tree cannot show: grpc-js's experimental
// API and its type-only deep imports are used from lib/grpc-js/ only.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const CRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

function cruise(cwd: string, dirs: string[]): { status: number | null; output: string } {
  const r = spawnSync(process.execPath, [CRUISE, ...dirs, '--config', CONFIG, '--output-type', 'err'], { cwd, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

t.test('the repository passes the import check', async (t) => {
  const { status, output } = cruise(ROOT, ['build/lib', 'build/spec', 'build/scripts', 'build/testkit', 'build/etcd-dev']);
  t.equal(status, 0, output);
  t.match(output, /no dependency violations found/);
});

t.test('a tree that breaks every rule fails the check, with each rule named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'anchorpool-imports-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files: Record<string, string> = {
    'package.json': '{ "type": "module" }',
    'lib/index.js': "export { a } from './a.js';\n",
    'lib/a.js': "import '../scripts/tool.js';\nimport '../testkit/kit.js';\nexport const a = 1;\n",
    'lib/cycle-one.js': "import './cycle-two.js';\n",
    'lib/cycle-two.js': "import './cycle-one.js';\n",
    'lib/internal-thing.js': 'export const x = 1;\n',
    'scripts/tool.js': "import '../lib/internal-thing.js';\nimport '../lib/index.js';\nimport '../spec/x.spec.js';\n",
    'spec/x.spec.js': "import '../scripts/tool.js';\nimport '../lib/index.js';\n",
    'testkit/kit.js': "import '../spec/x.spec.js';\n",
    // Layers inside lib/: core imports nothing of lib/, pool and native never each other.
    'lib/core/base.js': "import '../pool/lease.js';\n",
    'lib/pool/lease.js': "import '../native/policy.js';\nimport '../core/ok.js';\n",
    'lib/native/policy.js': "import '../anchors/anchor.js';\n",
    'lib/anchors/anchor.js': "import '../discovery/source.js';\n",
    'lib/discovery/source.js': 'export const s = 1;\n',
    'lib/core/ok.js': 'export const ok = 1;\n',
  };
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const { status, output } = cruise(dir, ['lib', 'scripts', 'spec', 'testkit']);
  t.not(status, 0, 'the check fails');
  for (const rule of ['no-circular', 'lib-stays-in-lib', 'testkit-not-spec-or-scripts', 'spec-not-scripts', 'scripts-not-spec', 'scripts-use-lib-entries']) {
    t.match(output, new RegExp(`error ${rule}:`), `reports ${rule}`);
  }
  t.match(output, /scripts-use-lib-entries: scripts\/tool\.js → lib\/internal-thing\.js/, 'a deep import from scripts/ is named');
  t.match(output, /error lib-core-imports-only-itself: lib\/core\/base\.js → lib\/pool\/lease\.js/, 'core/ imports nothing of lib/');
  t.match(output, /error lib-pool-imports-only-[a-z-]+: lib\/pool\/lease\.js → lib\/native\/policy\.js/, 'pool/ does not import native/');
  t.notMatch(output, /lib\/pool\/lease\.js → lib\/core\/ok\.js/, 'a layer may import the ones below it');
  t.notMatch(output, /lib\/native\/policy\.js → lib\/anchors\/anchor\.js/, 'native/ may import anchors/');
  t.match(output, /error lib-anchors-imports-only-[a-z-]+: lib\/anchors\/anchor\.js → lib\/discovery\/source\.js/, 'anchors/ does not import discovery/');
  t.notMatch(output, /scripts-use-lib-entries: scripts\/tool\.js → lib\/index\.js/, 'the public entry is allowed');
});

t.test("grpc-js internals are reached from lib/grpc-js/ only, type imports included", async (t) => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const lib = join(ROOT, 'lib');
  const sources = (readdirSync(lib, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
  const reaching = sources.filter((f) => /from '@grpc\/grpc-js\/build\/|\bexperimental\b[^'\n]*from '@grpc\/grpc-js'/.test(readFileSync(join(lib, f), 'utf8')));
  t.same(reaching.map((f) => f.split('/')[0]).filter((folder) => folder !== 'grpc-js'), [], `files that reach grpc-js internals: ${reaching.join(', ')}`);
  t.ok(reaching.length > 0, 'and the scan finds the adapter itself');
});
