// Outlier ejection in the lease pool: outcomes reported with lease.release(outcome) (fake
// anchors, no network) and by pool.client() calls (a real backend answering UNAVAILABLE):
// failures eject the endpoint entry, leases already out run on, application errors never
// eject, and the entry returns after its ejection time.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../lib/core/logger.js';
import { createPool } from '../lib/pool/pool.js';
import { createPoolWithAnchors } from '../lib/pool/pool.js';
import type { PoolOptions } from '../lib/pool/pool-options.js';
import { callEcho, EchoClient, startBackend } from '../testkit/tap-backend.js';
import { waitFor } from '../testkit/tap-etcd.js';
import { fakeAnchors, type FakeAnchor } from './fakes/fake-anchor.js';

// a (2 anchors) and b (1 anchor); quick settings so the spec runs in a second.
const TARGET = 'pass:///10.0.0.1:1#2,10.0.0.2:1#1';
const QUICK = { consecutiveFailures: 3, intervalMillis: 100, baseEjectionTimeMillis: 250, maxEjectionPercent: 50, failurePercentage: 0 };

async function fakePool(t: Test, options: Partial<PoolOptions> = {}) {
  const fakes = fakeAnchors({ startState: 'READY' });
  const pool = createPoolWithAnchors({ target: TARGET, logger: silentLogger, outlierDetection: QUICK, ...options }, fakes.factory);
  t.teardown(() => pool.close());
  await fakes.whenCreated(3);
  return { pool, fakes, all: fakes.created as FakeAnchor[] };
}

t.test('failures in a row eject the entry: no lease on it until its time is up, leases already out run on', async (t) => {
  const { pool } = await fakePool(t);
  const events: string[] = [];
  pool.on('endpoint-ejected', (e) => events.push(`ejected ${e.key} ${e.reason} x${e.times}`));
  pool.on('endpoint-returned', (e) => events.push(`returned ${e.key}`));
  const held = await pool.acquire();
  // Fail calls on b only: its key is static/1.
  let failures = 0;
  while (failures < 3) {
    const lease = await pool.acquire();
    if (lease.key === 'static/1') {
      lease.release(grpc.status.UNAVAILABLE);
      failures += 1;
    } else lease.release();
  }
  t.same(events, ['ejected static/1 consecutive-failures x1'], 'the 3rd failure in a row ejected b');
  t.same(pool.stats().ejected, ['static/1']);
  t.match(pool.anchors().find((a) => a.key === 'static/1'), { ejected: true, eligible: false });
  const during = new Set<string>();
  for (let i = 0; i < 30; i++) {
    const lease = await pool.acquire();
    during.add(lease.key);
    lease.release();
  }
  t.same([...during], ['static/0'], 'while ejected every lease goes to a');
  t.doesNotThrow(() => held.release(), 'a lease taken before the ejection is released as usual');
  await waitFor(() => events.includes('returned static/1'), { what: 'b back', timeoutMs: 3000 });
  const after = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const lease = await pool.acquire();
    after.add(lease.key);
    lease.release();
  }
  t.ok(after.has('static/1'), 'back in rotation after its ejection time');
  t.equal(pool.stats().ejections, 1);
});

t.test('application errors and successes never eject; an error object counts by its code', async (t) => {
  const { pool } = await fakePool(t);
  for (let i = 0; i < 20; i++) {
    const lease = await pool.acquire();
    const appError = Object.assign(new Error('bad request'), { code: grpc.status.INVALID_ARGUMENT });
    lease.release(i % 2 === 0 ? grpc.status.NOT_FOUND : appError);
  }
  t.same(pool.stats().ejected, [], 'NOT_FOUND and INVALID_ARGUMENT are the application\'s, not the backend\'s');
  let ejected = 0;
  pool.on('endpoint-ejected', () => (ejected += 1));
  for (let i = 0; i < 10 && ejected === 0; i++) {
    const lease = await pool.acquire();
    lease.release(Object.assign(new Error('deadline'), { code: grpc.status.DEADLINE_EXCEEDED }));
  }
  t.equal(ejected, 1, 'ServiceError-like DEADLINE_EXCEEDED failures eject');
});

t.test('maxEjectionPercent: with both entries failing, only one is ejected at 50%', async (t) => {
  const { pool } = await fakePool(t);
  for (let i = 0; i < 30; i++) (await pool.acquire()).release(grpc.status.UNAVAILABLE);
  t.equal(pool.stats().ejected.length, 1, 'one of two: the other keeps serving');
  await pool.close();
  await sleep(0);
});

t.test('pool.client() reports its calls: a backend that answers UNAVAILABLE is ejected, its calls go elsewhere', async (t) => {
  const good = await startBackend(t, { name: 'good' });
  const bad = await startBackend(t, { name: 'bad' });
  const pool = createPool({ target: `pass:///${good.address},${bad.address}`, logger: silentLogger, outlierDetection: { ...QUICK, baseEjectionTimeMillis: 60_000 } });
  t.teardown(() => pool.close());
  await pool.ready();
  await waitFor(() => pool.stats().anchors.eligible === 2, { what: 'both anchors READY' });
  const echo = pool.client(EchoClient);
  // 'unavailable:bad' makes only the backend called bad answer UNAVAILABLE.
  const answers: string[] = [];
  for (let i = 0; i < 12; i++) {
    const reply = await callEcho(echo, 2000, 'who').catch((e: grpc.ServiceError) => ({ server: `error ${e.code}` }));
    answers.push(reply.server);
  }
  t.ok(answers.includes('good') && answers.includes('bad'), 'both serve before anything fails');
  let failed = 0;
  while (pool.stats().ejected.length === 0 && failed < 20) {
    await callEcho(echo, 2000, 'unavailable:bad').catch(() => (failed += 1));
  }
  t.same(pool.stats().ejected, ['static/1'], `the backend answering UNAVAILABLE was ejected after ${failed} failed calls`);
  t.equal(failed, 3, 'exactly consecutiveFailures (3) of them: the good backend\'s successes do not reset the bad one\'s count');
  const after = new Set<string>();
  for (let i = 0; i < 20; i++) after.add((await callEcho(echo, 2000, 'who')).server);
  t.same([...after], ['good'], 'every call now goes to the good backend');
});

t.test('pool.use(): a gRPC error thrown by the function is its outcome; other errors are not', async (t) => {
  const { pool } = await fakePool(t, { outlierDetection: { ...QUICK, consecutiveFailures: 3, maxEjectionPercent: 100 } });
  const run = (error: unknown) => pool.use(() => Promise.reject(error)).catch(() => undefined);
  for (let i = 0; i < 12; i++) await run(new Error('a bug of the caller, no code'));
  t.same(pool.stats().ejected, [], 'errors without a gRPC code never eject');
  const unavailable = () => run(Object.assign(new Error('unavailable'), { code: grpc.status.UNAVAILABLE }));
  // gRPC failures interleaved with the caller's own errors: those must not reset the count.
  for (let i = 0; i < 24 && pool.stats().ejected.length === 0; i++) await (i % 2 === 0 ? unavailable() : run(new Error('caller bug')));
  t.equal(pool.stats().ejected.length, 1, 'UNAVAILABLE thrown from use() ejects, although plain errors came in between');
  // One entry, so every lease is on it: failure, scope end, failure, scope end, …
  const fakes = fakeAnchors({ startState: 'READY' });
  const scoped = createPoolWithAnchors({ target: 'pass:///10.0.0.1:1', logger: silentLogger, outlierDetection: { ...QUICK, consecutiveFailures: 2, maxEjectionPercent: 100 } }, fakes.factory);
  t.teardown(() => scoped.close());
  await fakes.whenCreated(1);
  for (let i = 0; i < 2; i++) {
    (await scoped.acquire()).release(grpc.status.UNAVAILABLE);
    {
      using lease = await scoped.acquire();
      void lease; // a scope's end counts as nothing, so it cannot reset the failures
    }
  }
  t.equal(scoped.stats().ejections, 1, 'failure, scope end, failure: ejected (2 in a row), since a scope end counts as nothing');
});

t.test('with subsetting, maxEjectionPercent is a share of the subset, not of every key offered', async (t) => {
  // 20 keys offered, a subset of 2; 50% of the keys offered would allow 10 ejections, the whole subset many times over.
  const target = `pass:///${Array.from({ length: 20 }, (_, i) => `10.0.1.${i + 1}:1#1`).join(',')}`;
  const fakes = fakeAnchors({ startState: 'READY' });
  const pool = createPoolWithAnchors({ target, logger: silentLogger, outlierDetection: { ...QUICK, baseEjectionTimeMillis: 60_000 }, subset: { size: 2, clientId: 'outliers' } }, fakes.factory);
  t.teardown(() => pool.close());
  await fakes.whenCreated(2);
  const ejected: string[] = [];
  pool.on('endpoint-ejected', (e) => ejected.push(e.key));
  // Every call fails, on whatever the subset holds, for a while: each ejection widens the subset by one key.
  const until = Date.now() + 1500;
  while (Date.now() < until) {
    const lease = await pool.acquire({ timeoutMillis: 500 }).catch(() => undefined);
    if (lease === undefined) break;
    lease.release(grpc.status.UNAVAILABLE);
    await sleep(1);
  }
  const subset = pool.stats().subset!;
  const inRotation = subset.keys.filter((k) => !ejected.includes(k.key)).length;
  t.ok(ejected.length >= 1, `an ejection happened (${ejected.length})`);
  t.ok(ejected.length * 100 <= 50 * subset.keys.length || ejected.length === 1, `at most half of the ${subset.keys.length} keys of the subset are ejected (${ejected.length}), not half of the 20 offered`);
  t.ok(inRotation >= 1, `the subset keeps keys in rotation (${inRotation})`);
});
