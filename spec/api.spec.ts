// The public API, pinned. It reads the entry points that package.json `exports` lists,
// imports each built file, and compares the names it exports (and the members of every
// exported class) with the lists written below. An addition or a removal fails with the
// name: if it is meant, write it here in the same change, so that the API changes only
// on purpose. Type-only exports (interfaces, types) have no runtime name and are not
// seen here; the consumer spec type-checks their use.
import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';

type Kind = 'class' | 'function' | 'object' | 'string' | 'number' | 'boolean' | 'symbol' | 'undefined' | 'null' | 'array' | 'bigint';

/** Exported names and their kind, per entry point (the keys of package.json `exports`). */
const EXPECTED_EXPORTS: Record<string, Record<string, Kind> | 'file'> = {
  '.': {
    AcquireAbortedError: 'class',
    AcquireTimeoutError: 'class',
    AnchorPool: 'class',
    AnchorPoolError: 'class',
    ConfigError: 'class',
    DEFAULT_LIMITS: 'object',
    EtcdAuthError: 'class',
    ClientIdTakenError: 'class',
    EtcdUnavailableError: 'class',
    ForeignLeaseError: 'class',
    InvalidTargetError: 'class',
    Lease: 'class',
    LeaseReleasedError: 'class',
    NoAnchorAvailableError: 'class',
    PoolClosedError: 'class',
    ReadyTimeoutError: 'class',
    TooManyWaitersError: 'class',
    consoleLogger: 'function',
    createPool: 'function',
    createSource: 'function',
    isAnchorPoolError: 'function',
    isNeverSent: 'function',
    parseAddress: 'function',
    parseEndpointValue: 'function',
    parseTarget: 'function',
    register: 'function',
    registerAnchorpool: 'function',
    registerPoolMetrics: 'function',
    registrationValue: 'function',
    serveMetrics: 'function',
    silentLogger: 'object',
  },
  './grpc': {
    registerAnchorpool: 'function',
  },
  './metrics': {
    registerPoolMetrics: 'function',
    serveMetrics: 'function',
  },
  './package.json': 'file',
};

/**
 * Members of every exported class: its prototype and those of its own base classes, up to
 * (not including) Error, EventEmitter or Object, whose members are Node's. `name()` is a
 * method, `name` a getter (`get`/`set`/`get set`), `[Symbol.x]()` a symbol-keyed method.
 * `extends` names the Node base the chain ends in.
 */
const EXPECTED_CLASSES: Record<string, { extends: 'EventEmitter' | 'Error' | 'Object'; members: string[] }> = {
  AnchorPool: {
    extends: 'EventEmitter',
    members: ['acquire()', 'anchors()', 'client()', 'close()', 'closed (get)', 'metrics()', 'ready()', 'release()', 'snapshot()', 'stats()', 'tryAcquire()', 'use()'],
  },
  Lease: {
    extends: 'Object',
    members: ['[Symbol.asyncDispose]()', '[Symbol.dispose]()', 'address (get)', 'anchor (get)', 'channel (get)', 'client()', 'key (get)', 'release()', 'released (get)'],
  },
  AnchorPoolError: { extends: 'Error', members: [] },
  ...Object.fromEntries(
    [
      'AcquireAbortedError',
      'AcquireTimeoutError',
      'ClientIdTakenError',
      'ConfigError',
      'EtcdAuthError',
      'EtcdUnavailableError',
      'ForeignLeaseError',
      'InvalidTargetError',
      'LeaseReleasedError',
      'NoAnchorAvailableError',
      'PoolClosedError',
      'ReadyTimeoutError',
      'TooManyWaitersError',
    ].map((name) => [name, { extends: 'Error' as const, members: [] }]),
  ),
};

const root = new URL('../../', import.meta.url);
const packageJson = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { exports?: unknown };

/** The file a subpath resolves to for `import` under Node (types skipped), or why not. */
function importTarget(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(importTarget).find((target) => target !== undefined);
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [condition, nested] of Object.entries(value)) {
    if (condition === 'import' || condition === 'node' || condition === 'default') {
      const target = importTarget(nested);
      if (target !== undefined) return target;
    }
  }
  return undefined;
}

function entryPoints(exports: unknown): Map<string, string | undefined> {
  if (typeof exports === 'string' || Array.isArray(exports)) return new Map([['.', importTarget(exports)]]);
  if (typeof exports !== 'object' || exports === null) return new Map();
  const keys = Object.keys(exports);
  // An object of conditions (no subpaths) is the "." entry.
  if (!keys.some((key) => key.startsWith('.'))) return new Map([['.', importTarget(exports)]]);
  return new Map(Object.entries(exports).map(([subpath, value]) => [subpath, importTarget(value)]));
}

function kindOf(value: unknown): Kind {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'function') return /^class\b/.test(Function.prototype.toString.call(value)) ? 'class' : 'function';
  return typeof value as Kind;
}

function symbolName(symbol: symbol): string {
  if (symbol === Symbol.dispose) return '[Symbol.dispose]';
  if (symbol === Symbol.asyncDispose) return '[Symbol.asyncDispose]';
  if (symbol === Symbol.asyncIterator) return '[Symbol.asyncIterator]';
  if (symbol === Symbol.iterator) return '[Symbol.iterator]';
  return `[${String(symbol)}]`;
}

const NODE_BASES = new Map<object, 'EventEmitter' | 'Error' | 'Object'>([
  [EventEmitter.prototype, 'EventEmitter'],
  [Error.prototype, 'Error'],
  [Object.prototype, 'Object'],
]);

function classMembers(constructor: Function): { extends: string; members: string[] } {
  const members = new Set<string>();
  let prototype: object | null = constructor.prototype as object;
  while (prototype !== null && !NODE_BASES.has(prototype)) {
    for (const key of Reflect.ownKeys(prototype)) {
      if (key === 'constructor') continue;
      const descriptor = Object.getOwnPropertyDescriptor(prototype, key)!;
      const name = typeof key === 'symbol' ? symbolName(key) : key;
      const accessor = [descriptor.get && 'get', descriptor.set && 'set'].filter(Boolean).join(' ');
      members.add(accessor !== '' ? `${name} (${accessor})` : typeof descriptor.value === 'function' ? `${name}()` : `${name} (value)`);
    }
    prototype = Object.getPrototypeOf(prototype) as object | null;
  }
  return { extends: prototype === null ? 'null' : NODE_BASES.get(prototype)!, members: [...members].sort() };
}

/** Every difference between what is and what is written, one sentence each. */
function differences(what: string, actual: Record<string, string>, expected: Record<string, string>): string[] {
  const out: string[] = [];
  const label = (name: string, kind: string | undefined): string => (kind === undefined || kind === '' ? name : `${name} (${kind})`);
  for (const name of Object.keys(actual).sort()) {
    if (!(name in expected)) out.push(`${what}: ${label(name, actual[name])} was added; if it is meant to be public, write it into spec/api.spec.ts`);
    else if (actual[name] !== expected[name]) out.push(`${what}: ${name} is now ${actual[name]}, was ${expected[name]}`);
  }
  for (const name of Object.keys(expected).sort()) {
    if (!(name in actual)) out.push(`${what}: ${label(name, expected[name])} was removed; if that is meant, take it out of spec/api.spec.ts`);
  }
  return out;
}

const entries = entryPoints(packageJson.exports);
const modules = new Map<string, Record<string, unknown>>();
const unloaded = new Set<string>();

t.test('package.json exports lists exactly the pinned entry points', async (t) => {
  const listed = Object.fromEntries([...entries.keys()].map((subpath) => [subpath, '']));
  const pinned = Object.fromEntries(Object.keys(EXPECTED_EXPORTS).map((subpath) => [subpath, '']));
  const problems = differences('package.json exports', listed, pinned);
  for (const problem of problems) t.fail(problem);
  if (problems.length === 0) t.pass(`entries: ${[...entries.keys()].join(', ')}`);
});

for (const [subpath, target] of entries) {
  t.test(`entry ${subpath}`, async (t) => {
    if (target === undefined) return void t.fail(`entry ${subpath}: no import/default target in package.json exports`);
    const file = new URL(target, root);
    if (!existsSync(file)) {
      unloaded.add(subpath);
      return void t.fail(`entry ${subpath}: ${target} does not exist (not built?)`);
    }
    const expected = EXPECTED_EXPORTS[subpath];
    if (!/\.[cm]?js$/.test(target)) {
      t.equal(expected, 'file', `entry ${subpath} (${target}) is a plain file`);
      return;
    }
    let module: Record<string, unknown>;
    try {
      module = (await import(file.href)) as Record<string, unknown>;
    } catch (err) {
      unloaded.add(subpath);
      return void t.fail(`entry ${subpath}: ${target} does not load: ${String(err)}`);
    }
    modules.set(subpath, module);
    const actual = Object.fromEntries(Object.keys(module).map((name) => [name, kindOf(module[name])]));
    const problems = differences(`entry ${subpath}`, actual, typeof expected === 'object' ? expected : {});
    for (const problem of problems) t.fail(problem);
    if (problems.length === 0) t.pass(`entry ${subpath}: ${Object.keys(actual).length} names, as pinned`);
  });
}

t.test('members of every exported class', async (t) => {
  if (unloaded.size > 0) return void t.fail(`not checked: entries ${[...unloaded].join(', ')} did not load`);
  const classes = new Map<string, Function>();
  for (const [subpath, module] of modules) {
    for (const [name, value] of Object.entries(module)) {
      if (kindOf(value) !== 'class') continue;
      const seen = classes.get(name);
      if (seen !== undefined && seen !== value) t.fail(`${name} is exported by two entries (${subpath} and another) as different classes`);
      classes.set(name, value as Function);
    }
  }
  const actual = Object.fromEntries([...classes].map(([name, constructor]) => [name, classMembers(constructor)]));
  const problems = differences(
    'exported classes',
    Object.fromEntries(Object.keys(actual).map((name) => [name, 'class'])),
    Object.fromEntries(Object.keys(EXPECTED_CLASSES).map((name) => [name, 'class'])),
  );
  for (const [name, members] of Object.entries(actual)) {
    const expected = EXPECTED_CLASSES[name];
    if (expected === undefined) continue;
    if (members.extends !== expected.extends) problems.push(`${name} now extends ${members.extends}, was ${expected.extends}`);
    problems.push(
      ...differences(
        name,
        Object.fromEntries(members.members.map((member) => [member, ''])),
        Object.fromEntries(expected.members.map((member) => [member, ''])),
      ),
    );
  }
  for (const problem of problems) t.fail(problem);
  if (problems.length === 0) t.pass(`${classes.size} classes, members as pinned`);
});

t.test('internal protocol methods are not on AnchorPool', async (t) => {
  const internal = ['anchorState', 'anchorEligibility', 'anchorClosed', 'observeAcquireWait', 'releaseAtEnd', 'describeTarget', 'hasReadyAnchor', 'onStateChange'];
  if (unloaded.has('.')) return void t.fail('not checked: the main entry did not load');
  const pool = modules.get('.')?.['AnchorPool'] as Function | undefined;
  if (pool === undefined) return void t.fail('the main entry exports no AnchorPool');
  const members = classMembers(pool).members.map((member) => member.replace(/\(\)$| \(.*\)$/, ''));
  for (const name of internal) t.notOk(members.includes(name), `AnchorPool has no ${name}`);
});
