// One option model, proved: every anchor option (lib/anchors/anchor-options.ts) is accepted,
// refused and defaulted alike by createPool(), registerAnchorpool() and the
// anchored_round_robin policy's JSON config. The spec walks the schema itself, so an
// option added there without samples here fails the first test.
import t from 'tap';
import { z } from 'zod';
import { anchorOptionsShape, type ResolvedAnchorOptions } from '../lib/anchors/anchor-options.js';
import { createPool } from '../lib/pool/pool.js';
import { resolvePoolOptions } from '../lib/pool/pool-options.js';
import { registerAnchorpool, resolveRegisterOptions } from '../lib/native/register-anchorpool.js';
import { AnchoredRoundRobinConfig } from '../lib/native/policy-config.js';
import { register } from '../lib/discovery/registration.js';
import { readFileSync } from 'node:fs';

interface Samples {
  accepted: unknown[];
  refused: unknown[];
  /** What every path applies when the option is not given. */
  default: unknown;
  /** Fields of the same parent the option needs beside it (e.g. mode: 'coordinated'). */
  siblings?: Record<string, unknown>;
}

/** Top-level options, and `parent.child` for the fields of the nested ones. */
const samples: Record<string, Samples> = {
  maxStreamsPerAnchor: { accepted: [1, 2, 100, 1_000_000], refused: [0, -1, 1.5, '16', 1_000_001, null], default: 100 },
  pick: { accepted: ['round-robin', 'least-loaded'], refused: ['random', '', 1], default: 'round-robin' },
  anchorMaxAgeMillis: { accepted: [0, 1, 60_000, 2 ** 31 - 1], refused: [-1, 1.5, 2 ** 31, '300'], default: 0 },
  extraAnchorIdleMillis: { accepted: [0, 1, 30_000, 2 ** 31 - 1], refused: [-1, 0.5, 2 ** 31, 'x'], default: 30_000 },
  healthCheck: { accepted: [{}, { serviceName: 'svc' }], refused: ['svc', { serviceName: 1 }, { bogus: 1 }], default: undefined },
  'healthCheck.serviceName': { accepted: ['', 'anchorpool.test.Echo'], refused: [1, null], default: '' },
  'healthCheck.retryInitialMillis': { accepted: [1, 100, 2 ** 31 - 1], refused: [0, -1, 1.5, 2 ** 31], default: 100 },
  'healthCheck.retryMaxMillis': { accepted: [1, 5000], refused: [0, '5000'], default: 5000 },
  outlierDetection: { accepted: [{}], refused: ['on', { bogus: 1 }], default: undefined },
  'outlierDetection.consecutiveFailures': { accepted: [0, 5, 1_000_000], refused: [-1, 1.5, 1_000_001], default: 5 },
  'outlierDetection.intervalMillis': { accepted: [1, 10_000], refused: [0, 2 ** 31], default: 10_000 },
  'outlierDetection.failurePercentage': { accepted: [0, 50.5, 100], refused: [-1, 101], default: 85 },
  'outlierDetection.requestVolume': { accepted: [1, 50], refused: [0, 1.5], default: 50 },
  'outlierDetection.baseEjectionTimeMillis': { accepted: [1, 30_000], refused: [0, -5], default: 30_000 },
  'outlierDetection.maxEjectionTimeMillis': { accepted: [1, 300_000], refused: [0], default: 300_000 },
  'outlierDetection.maxEjectionPercent': { accepted: [0, 10, 100], refused: [-1, 101], default: 10 },
  'outlierDetection.failureCodes': { accepted: [[], [14], [1, 16]], refused: [[0], [17], 14], default: [2, 4, 8, 13, 14, 15] },
  liveness: {
    accepted: [false, {}, { quietMillis: 500 }],
    refused: [true, 'on', null, { bogus: 1 }],
    default: { quietMillis: 1000, pingTimeoutMillis: 2000, minPingIntervalMillis: 300_000 },
  },
  'liveness.quietMillis': { accepted: [1, 1000, 2 ** 31 - 1], refused: [0, -1, 1.5, 2 ** 31, '1000'], default: 1000 },
  'liveness.pingTimeoutMillis': { accepted: [1, 2000], refused: [0, 2 ** 31, null], default: 2000 },
  'liveness.minPingIntervalMillis': { accepted: [0, 300_000], refused: [-1, 0.5], default: 300_000 },
  connectTimeoutMillis: { accepted: [0, 1, 3000, 2 ** 31 - 1], refused: [-1, 1.5, 2 ** 31, '3000'], default: 3000 },
  slowStart: { accepted: [{}, { windowMillis: 5000 }], refused: [true, 'on', { bogus: 1 }], default: undefined },
  'slowStart.windowMillis': { accepted: [1, 30_000, 2 ** 31 - 1], refused: [0, -1, 1.5, 2 ** 31, '30s'], default: 30_000 },
  'slowStart.aggression': { accepted: [0.5, 1, 2, 100], refused: [0, -1, 101, '1'], default: 1 },
  'slowStart.minWeightPercent': { accepted: [0, 10, 100], refused: [-1, 101, null], default: 10 },
  zone: { accepted: ['eu-west-1a', 'europe-west1-b', 'a', 'zone/a:1_x.y'], refused: ['', ' a', 'a b', 'zone!', 'x'.repeat(129), 1, null], default: undefined },
  zoneRouting: { accepted: [{}, { spillBelowPercent: 80 }], refused: ['on', { bogus: 1 }], default: { spillBelowPercent: 100, panicBelowPercent: 50 } },
  'zoneRouting.spillBelowPercent': { accepted: [50, 70.5, 100], refused: [-1, 101, '100'], default: 100 },
  'zoneRouting.panicBelowPercent': { accepted: [0, 25, 50], refused: [-1, 101, null], default: 50 },
  subset: { accepted: [{}, { size: 20 }], refused: [true, 10, { bogus: 1 }], default: undefined },
  'subset.size': { accepted: [1, 10, 10_000], refused: [0, -1, 1.5, 10_001, '10'], default: 10 },
  'subset.mode': { accepted: ['rendezvous', 'coordinated'], refused: ['random', '', 1], default: 'rendezvous' },
  'subset.clientId': { accepted: ['a', 'pod-7f9c.1:a_b', 'x'.repeat(256)], refused: ['', 'x'.repeat(257), 'a/b', 'a b', 7, null], default: undefined },
  'subset.clientsPrefix': { accepted: ['clients/echo/'], refused: ['', 7], default: undefined, siblings: { mode: 'coordinated' } },
  'subset.ttlSeconds': { accepted: [2, 10, 2_147_483], refused: [1, 1.5, 2_147_484, '10'], default: undefined, siblings: { mode: 'coordinated' } },
};

// The caller's zone falls back to ANCHORPOOL_ZONE; the defaults above are for a process without it.
delete process.env.ANCHORPOOL_ZONE;

/** Nested options whose parent is on by default: their fields have their defaults without the parent given. */
const onByDefault = new Set(['liveness', 'zoneRouting']);

/** The option names of a zod field: itself, and `name.child` for an object's fields (through default, optional, and `false | {…}`). */
function namesOf(name: string, field: z.ZodType): string[] {
  let inner: z.ZodType = field;
  while (inner instanceof z.ZodDefault || inner instanceof z.ZodPrefault || inner instanceof z.ZodOptional) inner = inner.unwrap() as z.ZodType;
  if (inner instanceof z.ZodUnion) inner = (inner.options as z.ZodType[]).find((option) => option instanceof z.ZodObject) ?? inner;
  if (!(inner instanceof z.ZodObject)) return [name];
  return [name, ...Object.entries(inner.shape as Record<string, z.ZodType>).map(([child]) => `${name}.${child}`)];
}

const names = Object.entries(anchorOptionsShape).flatMap(([name, field]) => namesOf(name, field as z.ZodType));

/** `{a: v}` for `a`, `{a: {b: v}}` for `a.b`. */
function given(name: string, value: unknown): Record<string, unknown> {
  const [parent, child] = name.split('.') as [string, string | undefined];
  return child === undefined ? { [parent]: value } : { [parent]: { ...samples[name]?.siblings, [child]: value } };
}

/** The resolved value of `name` in a path's resolved options (undefined when its parent is off). */
function read(resolved: ResolvedAnchorOptions, name: string): unknown {
  const [parent, child] = name.split('.') as [string, string | undefined];
  const value = (resolved as unknown as Record<string, unknown>)[parent];
  return child === undefined ? value : (value as Record<string, unknown> | undefined)?.[child];
}

// An etcd target: coordinated subsets need one (nothing connects: refused options throw first).
const target = 'etcd:///parity/';
/** Each path: how it resolves options, and how a user's call with them fails. */
const paths = {
  'createPool()': {
    resolve: (options: object) => resolvePoolOptions({ target, ...options }).anchors,
    call: (options: object) => void createPool({ target, ...options }),
  },
  'registerAnchorpool()': {
    resolve: (options: object) => resolveRegisterOptions(options).anchors,
    call: (options: object) => registerAnchorpool(options),
  },
  'the policy config': {
    // Through JSON, as a service config carries it.
    resolve: (options: object) => AnchoredRoundRobinConfig.createFromJson(JSON.parse(JSON.stringify(options))).options,
    call: (options: object) => void AnchoredRoundRobinConfig.createFromJson(JSON.parse(JSON.stringify(options))),
  },
};

t.test('every option in the shared schema has samples here, and every sample names an option', async (t) => {
  t.same([...names].sort(), Object.keys(samples).sort());
});

for (const name of names) {
  const sample = samples[name]!;
  t.test(name, async (t) => {
    for (const [path, { resolve }] of Object.entries(paths)) {
      const parentOn = !name.includes('.') || onByDefault.has(name.split('.')[0]!);
      t.same(read(resolve({}), name), parentOn ? sample.default : undefined, `${path}: the default when not given`);
      if (name.includes('.')) {
        const parent = name.split('.')[0]!;
        t.same(read(resolve({ [parent]: {} }), name), sample.default, `${path}: the default inside ${parent}: {}`);
      }
      for (const value of sample.accepted) {
        const resolved = read(resolve(given(name, value)), name);
        // An object comes back with its defaults filled in: what was given must be in it.
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) t.match(resolved, value, `${path}: accepts ${JSON.stringify(value)}`);
        else t.same(resolved, value, `${path}: accepts ${JSON.stringify(value)}`);
      }
    }
    for (const value of sample.refused) {
      for (const [path, { call }] of Object.entries(paths)) {
        // JSON has no undefined; a refused sample is a real value on every path.
        t.throws(() => call(given(name, value)), { code: 'ANCHORPOOL_CONFIG', message: new RegExp(`${name.replace('.', '\\.')}[.:]`) }, `${path}: refuses ${JSON.stringify(value)}, naming ${name}`);
      }
    }
  });
}

t.test('the rule between options is the same on every path: health checks need a cap of at least 2', async (t) => {
  for (const [path, { call, resolve }] of Object.entries(paths)) {
    t.throws(() => call({ maxStreamsPerAnchor: 1, healthCheck: {} }), { code: 'ANCHORPOOL_CONFIG', message: /maxStreamsPerAnchor: must be at least 2 with healthCheck/ }, path);
    t.equal(resolve({ maxStreamsPerAnchor: 2, healthCheck: {} }).maxStreamsPerAnchor, 2, `${path}: 2 is enough`);
    t.equal(resolve({ maxStreamsPerAnchor: 1 }).maxStreamsPerAnchor, 1, `${path}: 1 without health checks`);
  }
});

t.test('the caller\'s zone comes from ANCHORPOOL_ZONE when the option is absent, on every path, checked by the same rule', async (t) => {
  t.teardown(() => {
    delete process.env.ANCHORPOOL_ZONE;
  });
  for (const [path, { call, resolve }] of Object.entries(paths)) {
    process.env.ANCHORPOOL_ZONE = 'eu-west-1b';
    t.equal(resolve({}).zone, 'eu-west-1b', `${path}: from the environment`);
    t.equal(resolve({ zone: 'eu-west-1a' }).zone, 'eu-west-1a', `${path}: the option wins`);
    process.env.ANCHORPOOL_ZONE = '';
    t.equal(resolve({}).zone, undefined, `${path}: an empty variable is no zone`);
    process.env.ANCHORPOOL_ZONE = 'eu west';
    t.throws(() => call({}), { code: 'ANCHORPOOL_CONFIG', message: /zone: must be 1 to 128 characters .*ANCHORPOOL_ZONE environment variable: "eu west"/ }, `${path}: a bad variable is refused, naming it`);
    delete process.env.ANCHORPOOL_ZONE;
  }
});

t.test('the zone thresholds\' rule is the same on every path: panic below spill', async (t) => {
  for (const [path, { call, resolve }] of Object.entries(paths)) {
    t.throws(() => call({ zoneRouting: { spillBelowPercent: 40 } }), { code: 'ANCHORPOOL_CONFIG', message: /zoneRouting\.panicBelowPercent: must not be above spillBelowPercent \(40\)/ }, path);
    t.same(resolve({ zoneRouting: { spillBelowPercent: 40, panicBelowPercent: 40 } }).zoneRouting, { spillBelowPercent: 40, panicBelowPercent: 40 }, `${path}: equal is allowed`);
  }
});

t.test('the options both createPool() and registerAnchorpool() take beside the anchor options agree too', async (t) => {
  const pool = (options: object) => resolvePoolOptions({ target, ...options });
  t.equal(pool({}).readyTimeoutMillis, resolveRegisterOptions({}).settings.readyTimeoutMillis, 'readyTimeoutMillis: one default');
  for (const value of [0, 1, 2 ** 31 - 1]) {
    t.equal(pool({ readyTimeoutMillis: value }).readyTimeoutMillis, value);
    t.equal(resolveRegisterOptions({ readyTimeoutMillis: value }).settings.readyTimeoutMillis, value);
  }
  for (const [option, value] of [['readyTimeoutMillis', -1], ['readyTimeoutMillis', 2 ** 31], ['maxAnchorsPerKey', 0], ['maxAnchorsPerKey', 4097], ['defaultAnchors', 0]] as const) {
    t.throws(() => createPool({ target, [option]: value }), { code: 'ANCHORPOOL_CONFIG', message: new RegExp(option) }, `createPool() refuses ${option} ${value}`);
    t.throws(() => registerAnchorpool({ [option]: value }), { code: 'ANCHORPOOL_CONFIG', message: new RegExp(option) }, `registerAnchorpool() refuses ${option} ${value}`);
  }
});

t.test("register()'s documented anchors range is the one it enforces", async (t) => {
  const declarations = readFileSync(new URL('../lib/discovery/registration.d.ts', import.meta.url), 'utf8');
  const documented = /How many anchors \(connections\)[^*]*?(\d+) to (\d+)/.exec(declarations.replace(/\s*\*\s*/g, ' '));
  t.ok(documented, 'the doc comment states a range');
  const [min, max] = [Number(documented![1]), Number(documented![2])];
  const attempt = (anchors: number) => register({ etcd: { hosts: ['127.0.0.1:9'], dialTimeoutMillis: 50 }, timeoutMillis: 50, prefix: 'svc/', key: 'k', addr: '127.0.0.1:1', anchors });
  for (const refused of [min - 1, max + 1]) {
    await t.rejects(attempt(refused), { code: 'ANCHORPOOL_CONFIG', message: /anchors/ }, `anchors ${refused} refused as invalid`);
  }
  for (const accepted of [min, max]) {
    await t.rejects(attempt(accepted), { code: 'ANCHORPOOL_ETCD_UNAVAILABLE' }, `anchors ${accepted} passes validation (it fails only on the unreachable etcd)`);
  }
});
