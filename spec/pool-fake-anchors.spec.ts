// The pool facade with fake anchors (createPoolWithAnchors): the static source needs no
// network, and the test drives the anchors to READY. Leases, waiters, errors, close()
// and ready() as a user sees them, with no child process and no connection.
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AcquireAbortedError,
  AcquireTimeoutError,
  ForeignLeaseError,
  LeaseReleasedError,
  NoAnchorAvailableError,
  PoolClosedError,
  ReadyTimeoutError,
  TooManyWaitersError,
} from '../lib/core/errors.js';
import type { Lease } from '../lib/pool/lease.js';
import { silentLogger } from '../lib/core/logger.js';
import { createPoolWithAnchors, type AnchorPool, type LeaseLeakEvent } from '../lib/pool/pool.js';
import type { PoolOptions } from '../lib/pool/pool-options.js';
import { fakeAnchors, type FakeAnchor, type FakeAnchorOptions } from './fakes/fake-anchor.js';

const TARGET = 'pass:///10.0.0.1:1#2,10.0.0.2:1#1';

/** A pool on TARGET whose 3 anchors are fakes that start CONNECTING; resolves once they exist. */
async function fakePool(t: Test, options: Partial<PoolOptions> = {}, fakeOptions: FakeAnchorOptions = {}) {
  const fakes = fakeAnchors({ startState: 'CONNECTING', ...fakeOptions });
  const pool = createPoolWithAnchors({ target: TARGET, logger: silentLogger, drainTimeoutMillis: 2000, ...options }, fakes.factory);
  t.teardown(() => pool.close());
  await fakes.whenCreated(3);
  const [a0, a1, b0] = fakes.created as [FakeAnchor, FakeAnchor, FakeAnchor];
  return { pool, fakes, a0, a1, b0, all: [a0, a1, b0] };
}

const slot = (lease: Lease) => `${lease.key}#${lease.anchor}`;
const timeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

function outcome<T>(promise: Promise<T>): { readonly value?: T; readonly error?: Error; readonly settled: boolean; readonly at?: number } {
  const state: { value?: T; error?: Error; settled: boolean; at?: number } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { value, settled: true, at: performance.now() }),
    (error: Error) => Object.assign(state, { error, settled: true, at: performance.now() }),
  );
  return state;
}

t.test('the static target becomes 3 fake anchors by (key, index), started, none READY yet', async (t) => {
  const { pool, fakes } = await fakePool(t);
  t.same(fakes.created.map((a) => `${a.label}@${a.address}`), ['static/0#0@10.0.0.1:1', 'static/0#1@10.0.0.1:1', 'static/1#0@10.0.0.2:1']);
  t.same(fakes.created.map((a) => a.starts), [1, 1, 1]);
  const stats = pool.stats();
  t.equal(stats.endpoints, 2);
  t.same(stats.anchors, {
    wanted: 3,
    active: 3,
    draining: 0,
    byState: { IDLE: 0, CONNECTING: 3, READY: 0, TRANSIENT_FAILURE: 0 },
    byHealth: { UNCHECKED: 3, UNKNOWN: 0, SERVING: 0, NOT_SERVING: 0, SERVICE_UNKNOWN: 0 },
    eligible: 0,
  });
  t.equal(pool.tryAcquire(), undefined, 'nothing READY: no lease');
});

t.test('round robin: interleaved a b a, and shares by weight', async (t) => {
  const { pool, all } = await fakePool(t);
  for (const a of all) a.drive('READY');
  const leases = Array.from({ length: 6 }, () => pool.tryAcquire()!);
  t.same(leases.map(slot), ['static/0#0', 'static/1#0', 'static/0#1', 'static/0#0', 'static/1#0', 'static/0#1']);
  t.equal(pool.stats().leased, 6);
  for (const lease of leases) pool.release(lease);
  for (let i = 0; i < 294; i++) await pool.use(() => undefined);
  t.same(
    pool.anchors().map((a) => [`${a.key}#${a.anchor}`, a.acquired, a.leased]),
    [
      ['static/0#0', 100, 0],
      ['static/0#1', 100, 0],
      ['static/1#0', 100, 0],
    ],
    '300 leases: 200 to the #2 entry, 100 to the #1 entry',
  );
  t.equal(pool.stats().acquired, 300);
});

t.test('waiters by priority, FIFO within one; served as anchors become READY and leases come back', async (t) => {
  const { pool, a0, a1 } = await fakePool(t, {}, { maxLeases: 1 });
  const order: string[] = [];
  const leases: Lease[] = [];
  const wait = (name: string, priority: number) =>
    pool.acquire({ priority }).then((lease) => {
      order.push(name);
      leases.push(lease);
    });
  const all = [wait('low', -1), wait('a', 0), wait('high1', 9), wait('b', 0), wait('high2', 9)];
  t.equal(pool.stats().waiting, 5);
  a0.drive('READY');
  await sleep(0);
  t.same(order, ['high1'], 'an anchor turning READY serves the highest priority');
  a1.drive('READY');
  await sleep(0);
  t.same(order, ['high1', 'high2']);
  pool.release(leases.shift()!);
  await sleep(0);
  t.same(order, ['high1', 'high2', 'a'], 'a released lease serves the next');
  pool.release(leases.shift()!);
  pool.release(leases.shift()!);
  await sleep(0);
  pool.release(leases.shift()!);
  await Promise.all(all);
  t.same(order, ['high1', 'high2', 'a', 'b', 'low']);
  for (const lease of leases) lease.release();
  t.equal(pool.stats().leased, 0);
});

t.test('acquire timeout, abort, maxWaitingClients and failFast, as typed errors', async (t) => {
  const { pool } = await fakePool(t, { acquireTimeoutMillis: 40, maxWaitingClients: 1 });
  await t.rejects(pool.acquire(), AcquireTimeoutError, 'the pool\'s acquireTimeoutMillis');
  t.equal(pool.stats().timeouts, 1, 'counted in stats().timeouts');
  t.equal(pool.stats().waiting, 0);

  await t.rejects(pool.acquire({ signal: AbortSignal.abort() }), AcquireAbortedError, 'aborted before');
  const controller = new AbortController();
  const waiting = pool.acquire({ signal: controller.signal, timeoutMillis: 5000 });
  await t.rejects(pool.acquire(), TooManyWaitersError, 'a second waiter beyond maxWaitingClients 1');
  controller.abort();
  await t.rejects(waiting, { code: 'ANCHORPOOL_ACQUIRE_ABORTED' }, 'aborted while waiting');
  t.equal(pool.stats().timeouts, 1, 'an abort is not a timeout');

  const fast = await fakePool(t, { failFast: true });
  const error = await fast.pool.acquire().catch((e: unknown) => e);
  t.type(error, NoAnchorAvailableError);
  t.match((error as Error).message, /2 endpoint\(s\), 3 anchor\(s\): 3 CONNECTING/, 'the message says what the pool has');
});

t.test('release misuse: LeaseReleasedError, ForeignLeaseError', async (t) => {
  const one = await fakePool(t);
  const two = await fakePool(t);
  one.a0.drive('READY');
  two.a0.drive('READY');
  const lease = await one.pool.acquire();
  const theirs = await two.pool.acquire();
  t.throws(() => one.pool.release(theirs), ForeignLeaseError);
  t.throws(() => one.pool.release({} as Lease), ForeignLeaseError);
  one.pool.release(lease);
  t.throws(() => one.pool.release(lease), LeaseReleasedError);
  t.throws(() => lease.release(), LeaseReleasedError);
  t.equal(one.pool.stats().leased, 0);
  t.equal(two.pool.stats().leased, 1);
  theirs.release();
});

function leakyCaller(pool: AnchorPool): Promise<Lease> {
  return pool.acquire();
}

t.test('lease-leak: emitted with the acquire stack', async (t) => {
  const { pool, a0 } = await fakePool(t, { leakDetectionMillis: 30 });
  a0.drive('READY');
  const leaks: LeaseLeakEvent[] = [];
  pool.on('lease-leak', (event) => leaks.push(event));
  const lease = await leakyCaller(pool);
  await sleep(80);
  t.equal(leaks.length, 1);
  t.same({ key: leaks[0]!.key, anchor: leaks[0]!.anchor, address: leaks[0]!.address }, { key: 'static/0', anchor: 0, address: '10.0.0.1:1' });
  t.match(leaks[0]!.stack, /leakyCaller/);
  lease.release();
});

t.test('close(): waiters rejected at once, acquire after close rejects, one promise, release drains', async (t) => {
  const { pool, a0, all } = await fakePool(t, { drainTimeoutMillis: 5000 }, { maxLeases: 1 });
  a0.drive('READY');
  const held = await pool.acquire();
  const acquireWaiter = outcome(pool.acquire({ timeoutMillis: 5000 }));
  t.equal(pool.stats().waiting, 1);
  const started = performance.now();
  const closing = pool.close();
  t.equal(pool.close(), closing, 'close() twice returns the same promise');
  t.ok(pool.closed);
  await sleep(0);
  t.type(acquireWaiter.error, PoolClosedError, 'the acquire waiter is rejected at once');
  await t.rejects(pool.acquire(), PoolClosedError, 'acquire() during close');
  t.equal(pool.tryAcquire(), undefined);
  let closed = false;
  void closing.then(() => (closed = true));
  await sleep(20);
  t.notOk(closed, 'close() waits for the held lease');
  t.equal(pool.stats().leased, 1, 'still counted while draining');
  pool.release(held);
  await closing;
  t.ok(performance.now() - started < 1000, 'released during close: close() finishes without the drain timeout');
  t.ok(all.every((a) => a.closed), 'every anchor closed');
  t.equal(pool.stats().leased, 0);
  await t.rejects(pool.acquire(), PoolClosedError, 'acquire() after close');
  await t.rejects(pool.ready(), PoolClosedError, 'ready() after close');
});

t.test('close() with a lease never released: finishes after drainTimeoutMillis, leased 0, late release is PoolClosedError', async (t) => {
  const { pool, a0 } = await fakePool(t, { drainTimeoutMillis: 40 });
  a0.drive('READY');
  const lease = await pool.acquire();
  await pool.close();
  t.ok(a0.closed);
  t.equal(pool.stats().leased, 0, 'held leases were reclaimed');
  t.throws(() => lease.release(), PoolClosedError, 'release after close() finished');
  lease[Symbol.dispose]();
  t.pass('a scope ending after close is a no-op');
});

t.test('ready() resolves when a fake anchor becomes READY, ReadyTimeoutError when none does', async (t) => {
  const { pool, b0 } = await fakePool(t);
  const ready = outcome(pool.ready({ timeoutMillis: 2000 }));
  await sleep(10);
  t.notOk(ready.settled, 'pending while every anchor connects');
  b0.drive('READY');
  await sleep(0);
  t.ok(ready.settled && ready.error === undefined, 'resolved by the first READY anchor');
  await pool.ready();
  t.pass('resolves at once while one is READY');

  const other = await fakePool(t);
  await t.rejects(other.pool.ready({ timeoutMillis: 30 }), ReadyTimeoutError);
});

t.test('ready({ timeoutMillis: 3000 }) then close(): rejects at once with PoolClosedError and leaves no timer', async (t) => {
  const { pool } = await fakePool(t);
  const before = timeouts();
  const started = performance.now();
  const ready = outcome(pool.ready({ timeoutMillis: 3000 }));
  await sleep(5);
  t.ok(timeouts() > before, 'ready() holds a timer while it waits');
  await pool.close();
  await sleep(0);
  t.type(ready.error, PoolClosedError);
  t.ok(ready.at! - started < 500, `rejected after ${(ready.at! - started).toFixed(0)} ms, well under 3 s`);
  t.ok(timeouts() <= before, `no timer left (${timeouts()} Timeout(s), ${before} before)`);
});

t.test('ready({ signal }) aborted once the source is ready but no anchor is: AcquireAbortedError at once', async (t) => {
  const { pool } = await fakePool(t);
  t.ok(pool.stats().source.ready, 'the static source is ready');
  const before = timeouts();
  const controller = new AbortController();
  const started = performance.now();
  const ready = outcome(pool.ready({ timeoutMillis: 3000, signal: controller.signal }));
  await sleep(20);
  t.notOk(ready.settled);
  controller.abort(new Error('shutting down'));
  await sleep(0);
  t.type(ready.error, AcquireAbortedError);
  t.equal((ready.error as AcquireAbortedError).code, 'ANCHORPOOL_ACQUIRE_ABORTED');
  t.ok(ready.at! - started < 500, 'at once, not at the timeout');
  t.ok(timeouts() <= before, 'no timer left');
  await t.rejects(pool.ready({ signal: controller.signal }), AcquireAbortedError, 'an aborted signal rejects a new ready() at once');
});

t.test('zones: a waiter for a full local zone is served by another zone as soon as the local one goes out of rotation', async (t) => {
  const fakes = fakeAnchors({ startState: 'READY', maxLeases: 1 });
  const pool = createPoolWithAnchors({ target: 'pass:///10.0.0.1:1@a,10.0.0.2:1@b', logger: silentLogger, zone: 'a', acquireTimeoutMillis: 2000 }, fakes.factory);
  t.teardown(() => pool.close());
  await fakes.whenCreated(2);
  await pool.ready();
  const [local] = fakes.created as [FakeAnchor];
  const held = await pool.acquire();
  t.equal(held.address, '10.0.0.1:1', 'the lease is in zone a');
  const waiting = outcome(pool.acquire());
  await sleep(20);
  t.notOk(waiting.settled, 'zone a is full and serves: the next caller waits there, zone b gets nothing');
  local.drive('TRANSIENT_FAILURE');
  await sleep(20);
  t.ok(waiting.settled && waiting.value?.address === '10.0.0.2:1', 'zone a out of rotation: the waiter gets zone b at once, not when a lease comes back');
  waiting.value?.release();
  held.release();
});
