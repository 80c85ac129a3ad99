// The package as a user gets it: `npm pack` the repo (built by npm test's pretest),
// install the tarball into a temporary project without the network (from the local npm
// cache that `npm ci` filled, through a lockfile), and use it from ESM, from CommonJS `require()` (Node ≥
// 20.19 loads ES modules), from TypeScript with `moduleResolution` node16 and bundler,
// and through its `anchorpool` command. A `pass:///` target needs no etcd.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NPM_FLAGS = ['--offline', '--no-audit', '--no-fund', '--loglevel=error'];
const PROM_CLIENT = /[\\/]node_modules[\\/]prom-client[\\/]/;

const dir = mkdtempSync(join(tmpdir(), 'anchorpool-consumer-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const app = join(dir, 'app');

/** Runs outside tap's process tracking: tap adds its loaders to child Node processes through NODE_OPTIONS. */
function run(command: string, args: string[], cwd = app): { status: number | null; out: string } {
  const r = spawnSync('/usr/bin/env', ['-u', 'NODE_OPTIONS', command, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}
const node = (args: string[]) => run(process.execPath, ['--no-warnings', ...args]);

function write(files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(app, name), text);
}

// --ignore-scripts: npm test's pretest has just built (and pruned) build/; a prepack
// rebuild here would rewrite build/ under the other specs of the same run.
const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' })) as [
  { filename: string; integrity: string; files: { path: string }[]; size: number; unpackedSize: number },
];
const files = packed[0].files.map((f) => f.path);

t.test('the tarball holds the library and its command, nothing of the repo’s machinery', async (t) => {
  t.comment(`${files.length} files, ${packed[0].size} bytes packed, ${packed[0].unpackedSize} unpacked`);
  for (const expected of ['package.json', 'README.md', 'bin/anchorpool.js', 'build/lib/index.js', 'build/lib/index.d.ts', 'build/lib/native/index.js', 'build/lib/pool/metrics.js']) {
    t.ok(files.includes(expected), `has ${expected}`);
  }
  t.same(files.filter((f) => !/^(bin\/|build\/lib\/|package\.json$|README\.md$|LICENSE$)/.test(f)), [], 'only bin/, build/lib/, package.json, README, LICENSE');
  t.same(files.filter((f) => /demo|echo|etcd-dev|testkit|spec|scripts|\.map$/.test(f)), [], 'no demo, echo backends, etcd-dev, test kit, specs, scripts or source maps');
});

// The cache holds the tarballs `npm ci` fetched, not the registry's package documents, so
// `npm install <name>` cannot resolve offline. The project gets a lockfile instead: the
// tarball, plus the entries of the repo's own lockfile that its dependencies (and
// @grpc/grpc-js and prom-client, which a user adds) need, and `npm ci --offline` installs it.
type LockEntry = { version?: string; resolved?: string; integrity?: string; dev?: boolean; devOptional?: boolean; optional?: boolean; peer?: boolean } & Record<string, unknown>;
const repoLock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string>; peerDependencies: Record<string, string> };

/** Where Node (and npm) find `name` from the package at lock path `from`. */
function locate(from: string, name: string): string | undefined {
  for (let base = from; ; ) {
    const candidate = `${base === '' ? '' : `${base}/`}node_modules/${name}`;
    if (repoLock.packages[candidate] !== undefined) return candidate;
    if (base === '') return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut < 0 ? '' : base.slice(0, cut);
  }
}

const appDeps: Record<string, string> = { [manifest.name]: `file:../${packed[0].filename}`, '@grpc/grpc-js': repoLock.packages['node_modules/@grpc/grpc-js']!.version!, 'prom-client': manifest.peerDependencies['prom-client']! };
const lockPackages: Record<string, LockEntry> = {
  '': { name: 'consumer', version: '1.0.0', dependencies: appDeps },
  [`node_modules/${manifest.name}`]: { version: manifest.version, resolved: `file:../${packed[0].filename}`, integrity: packed[0].integrity, dependencies: manifest.dependencies, peerDependencies: manifest.peerDependencies, bin: { anchorpool: 'bin/anchorpool.js' } },
};
const queue: [string, string][] = [...Object.keys(manifest.dependencies), '@grpc/grpc-js', 'prom-client'].map((name) => ['', name]);
while (queue.length > 0) {
  const [from, name] = queue.shift()!;
  const at = locate(from, name);
  if (at === undefined || lockPackages[at] !== undefined) continue;
  const { dev: _dev, devOptional: _devOptional, ...entry } = repoLock.packages[at]!;
  lockPackages[at] = entry;
  for (const field of ['dependencies', 'optionalDependencies'] as const) {
    for (const dep of Object.keys((entry[field] as Record<string, string> | undefined) ?? {})) queue.push([at, dep]);
  }
}

mkdirSync(app);
write({
  'package.json': JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies: appDeps }),
  'package-lock.json': JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages: lockPackages }),
});
const install = run('npm', ['ci', ...NPM_FLAGS]);

t.test('installs from the local npm cache, without the network', async (t) => {
  t.equal(install.status, 0, install.out);
});

t.test('ESM: the main entry and the grpc and metrics subpaths; prom-client loads only when metrics are used', async (t) => {
  write({
    'esm.mjs': `
import { createRequire } from 'node:module';
import { createPool, registerAnchorpool } from 'anchorpool';
import { registerAnchorpool as fromGrpc } from 'anchorpool/grpc';
const require = createRequire(import.meta.url);
const promLoaded = () => Object.keys(require.cache).some((k) => ${PROM_CLIENT}.test(k));
const before = promLoaded();
const metricsEntry = await import('anchorpool/metrics');
registerAnchorpool();
const pool = createPool({ target: 'pass:///127.0.0.1:1' });
const afterImport = promLoaded();
const registry = pool.metrics();
const text = await registry.metrics();
await pool.close();
console.log(JSON.stringify({ same: fromGrpc === registerAnchorpool, metricsEntry: Object.keys(metricsEntry).sort(), before, afterImport, after: promLoaded(), series: text.includes('anchorpool_leases_held') }));
`,
  });
  const r = node(['esm.mjs']);
  t.equal(r.status, 0, r.out);
  const result = JSON.parse(r.out.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
  t.equal(result['same'], true, "anchorpool/grpc's registerAnchorpool is the main entry's");
  t.match(result['metricsEntry'], ['registerPoolMetrics', 'serveMetrics'], 'anchorpool/metrics exports registerPoolMetrics and serveMetrics');
  t.equal(result['before'], false, 'importing anchorpool and anchorpool/grpc does not load prom-client');
  t.equal(result['afterImport'], false, 'nor does importing anchorpool/metrics or creating a pool');
  t.equal(result['after'], true, 'pool.metrics() loads it');
  t.equal(result['series'], true, 'and the registry carries the pool’s series');
});

t.test('the main entry imports without prom-client installed', async (t) => {
  const prom = join(app, 'node_modules/prom-client');
  renameSync(prom, `${prom}.away`);
  try {
    write({ 'no-prom.mjs': "const a = await import('anchorpool'); const p = a.createPool({ target: 'pass:///127.0.0.1:1' }); let e; try { p.metrics(); } catch (err) { e = err; } await p.close(); console.log(typeof a.createPool, e?.code ?? e?.name, e?.message);" });
    const r = node(['no-prom.mjs']);
    t.equal(r.status, 0, r.out);
    t.match(r.out, /^function /, 'anchorpool loads');
    t.match(r.out, /npm install prom-client/, 'pool.metrics() says what to install');
  } finally {
    renameSync(`${prom}.away`, prom);
  }
});

t.test('CommonJS: require() of the ES module package (Node ≥ 20.19)', async (t) => {
  write({
    'cjs.cjs': `
const { createPool, registerAnchorpool } = require('anchorpool');
const grpcEntry = require('anchorpool/grpc');
const metricsEntry = require('anchorpool/metrics');
const pool = createPool({ target: 'pass:///127.0.0.1:1' });
pool.close().then(() => console.log(JSON.stringify({ same: grpcEntry.registerAnchorpool === registerAnchorpool, serve: typeof metricsEntry.serveMetrics })));
`,
  });
  const r = node(['cjs.cjs']);
  t.equal(r.status, 0, r.out);
  t.match(r.out, /\{"same":true,"serve":"function"\}/);
});

t.test('TypeScript: tsc --noEmit with moduleResolution node16 and bundler', async (t) => {
  // The repo's own TypeScript (and its @types/node, unless a dependency brought one).
  if (!existsSync(join(app, 'node_modules/@types/node'))) {
    mkdirSync(join(app, 'node_modules/@types'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules/@types/node'), join(app, 'node_modules/@types/node'));
  }
  write({
    'use.ts': `
import { createPool, registerAnchorpool, type PoolOptions } from 'anchorpool';
import { registerAnchorpool as fromGrpc } from 'anchorpool/grpc';
import { serveMetrics } from 'anchorpool/metrics';
registerAnchorpool({ defaultAnchors: 2 });
fromGrpc();
const options: PoolOptions = { target: 'pass:///127.0.0.1:1' };
const pool = createPool(options);
const registry = pool.metrics();
const text: Promise<string> = registry.metrics();
void serveMetrics;
void text;
await pool.close();
`,
  });
  for (const [name, compilerOptions] of [
    ['node16', { module: 'node16', moduleResolution: 'node16' }],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler' }],
  ] as const) {
    write({ [`tsconfig.${name}.json`]: JSON.stringify({ compilerOptions: { ...compilerOptions, target: 'es2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: false }, files: ['use.ts'] }) });
    const r = run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', `tsconfig.${name}.json`]);
    t.equal(r.status, 0, `moduleResolution ${name}: ${r.out}`);
  }
});

t.test('the anchorpool command: status, watch and register; no demo', async (t) => {
  const r = run(join(app, 'node_modules/.bin/anchorpool'), ['--help']);
  t.equal(r.status, 0, r.out);
  for (const command of ['status', 'watch', 'register']) t.match(r.out, new RegExp(`^\\s+${command}\\s`, 'm'), `lists ${command}`);
  t.notMatch(r.out, /demo/, 'no demo command');
});
