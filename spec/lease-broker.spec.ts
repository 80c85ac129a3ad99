// LeaseBroker over an AnchorSet of fake anchors, wired as the pool wires them (the
// broker's pick hook is the set's pick, an anchor that becomes eligible wakes the
// broker, one Lifecycle settles the waiters): waiters, priorities, timeouts, aborts,
// limits, release errors, leak reports and a key drained under a held lease.
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { AnchorSet } from '../lib/anchors/anchor-set.js';
import {
  AcquireAbortedError,
  AcquireTimeoutError,
  ConfigError,
  ForeignLeaseError,
  LeaseReleasedError,
  NoAnchorAvailableError,
  PoolClosedError,
  TooManyWaitersError,
} from '../lib/core/errors.js';
import { LeaseBroker, type BrokerOptions, type LeaseLeakEvent } from '../lib/pool/lease-broker.js';
import { Lease } from '../lib/pool/lease.js';
import { Lifecycle } from '../lib/core/lifecycle.js';
import type { DesiredEntry } from '../lib/anchors/reconcile.js';
import { fakeAnchors, type FakeAnchor, type FakeAnchorOptions } from './fakes/fake-anchor.js';

const twoEntries = new Map<string, DesiredEntry>([
  ['a', { addr: '10.0.0.1:1', anchors: 2 }],
  ['b', { addr: '10.0.0.2:1', anchors: 1 }],
]);

function rig(t: Test, options: Partial<BrokerOptions> & FakeAnchorOptions & { drainTimeoutMillis?: number } = {}) {
  const fakes = fakeAnchors(options);
  const lifecycle = new Lifecycle();
  const leaks: LeaseLeakEvent[] = [];
  const set: AnchorSet<FakeAnchor> = new AnchorSet<FakeAnchor>(
    fakes.factory,
    { state: () => undefined, eligible: () => broker.wake() },
    { drainTimeoutMillis: options.drainTimeoutMillis ?? 10_000 },
  );
  const broker: LeaseBroker<FakeAnchor> = new LeaseBroker<FakeAnchor>(
    { acquireTimeoutMillis: 2000, maxWaitingClients: 100, failFast: false, leakDetectionMillis: 0, ...options },
    { pick: () => set.pick(), describe: () => `${set.eligibleSlots} eligible`, leaked: (event) => leaks.push(event) },
    lifecycle,
  );
  set.apply(twoEntries);
  const [a0, a1, b0] = fakes.created as [FakeAnchor, FakeAnchor, FakeAnchor];
  const close = () => lifecycle.close(() => set.drainAll());
  // Leases a test leaves held must not keep the teardown waiting for a drain.
  t.teardown(() => lifecycle.close(async () => set.closeAll()));
  return { fakes, set, broker, lifecycle, leaks, a0, a1, b0, close };
}

/** Settles without throwing, for asserting on a promise's fate later. */
function outcome<T>(promise: Promise<T>): { readonly value?: T; readonly error?: Error; readonly settled: boolean } {
  const state: { value?: T; error?: Error; settled: boolean } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { value, settled: true }),
    (error: Error) => Object.assign(state, { error, settled: true }),
  );
  return state;
}

t.test('a free slot is granted at once, in the interleaved round-robin order, sharing by weight', async (t) => {
  const { broker, a0, a1, b0 } = rig(t);
  for (const a of [a0, a1, b0]) a.drive('READY');
  const first = [];
  for (let i = 0; i < 6; i++) first.push(broker.tryAcquire()!);
  t.same(first.map((l) => `${l.key}#${l.anchor}`), ['a#0', 'b#0', 'a#1', 'a#0', 'b#0', 'a#1'], 'a(2), b(1): a b a');
  t.equal(first[0]!.channel, a0.channel, 'a lease exposes its anchor\'s channel');
  t.equal(first[0]!.address, '10.0.0.1:1');
  t.equal(broker.leased, 6);
  t.same([a0.streams, a1.streams, b0.streams], [2, 2, 2]);
  for (const lease of first) lease.release();
  for (let i = 0; i < 294; i++) (await broker.acquire()).release();
  t.same([a0.acquired, a1.acquired, b0.acquired], [100, 100, 100], '300 leases: 100 per anchor, so 200 to a and 100 to b');
  t.equal(broker.leased, 0);
  t.equal(broker.acquired, 300);
});

t.test('waiters are served by priority, higher first, FIFO within a priority', async (t) => {
  const { broker, a0 } = rig(t, { maxLeases: 1 });
  const order: string[] = [];
  const leases: Lease[] = [];
  const wait = (name: string, priority?: number) =>
    broker.acquire(priority === undefined ? {} : { priority }).then((lease) => {
      order.push(name);
      leases.push(lease);
    });
  const all = [wait('a'), wait('b', 5), wait('c', 0), wait('d', 5), wait('e', -1), wait('f', 5)];
  t.equal(broker.waiting, 6);
  a0.drive('READY');
  await sleep(0);
  t.same(order, ['b'], 'the anchor that became READY serves the first high-priority waiter');
  while (leases.length > 0) {
    leases.shift()!.release();
    await sleep(0);
  }
  await Promise.all(all);
  t.same(order, ['b', 'd', 'f', 'a', 'c', 'e'], 'each release serves the next in order');
  t.equal(broker.waiting, 0);
});

t.test('a waiter is served when an anchor becomes READY, and when a lease is released', async (t) => {
  const { broker, a0, b0 } = rig(t, { maxLeases: 1 });
  const first = broker.acquire();
  t.equal(broker.tryAcquire(), undefined, 'nothing READY');
  b0.drive('CONNECTING');
  b0.drive('READY');
  const lease = await first;
  t.equal(`${lease.key}#${lease.anchor}`, 'b#0', 'served by the anchor that became READY');
  const second = outcome(broker.acquire());
  await sleep(5);
  t.notOk(second.settled, 'b is at its cap: the second caller waits');
  t.equal(broker.tryAcquire(), undefined, 'tryAcquire() does not jump the queue');
  lease.release();
  await sleep(0);
  t.ok(second.value, 'served by the release');
  t.equal(`${second.value!.key}#${second.value!.anchor}`, 'b#0', 'on the slot given back');
  t.equal(a0.streams, 0);
});

t.test('acquire timeout: AcquireTimeoutError, counted, and the waiter leaves the queue', async (t) => {
  const { broker } = rig(t, { acquireTimeoutMillis: 5000 });
  const started = performance.now();
  await t.rejects(broker.acquire({ timeoutMillis: 30 }), AcquireTimeoutError);
  const took = performance.now() - started;
  t.ok(took >= 25 && took < 1000, `the call's own timeout (${took.toFixed(0)} ms)`);
  t.equal(broker.timeouts, 1);
  t.equal(broker.waiting, 0);
  const error = await broker.acquire({ timeoutMillis: 0 }).catch((e: unknown) => e);
  t.type(error, AcquireTimeoutError, 'timeoutMillis 0 waits for nothing');
  t.equal((error as AcquireTimeoutError).code, 'ANCHORPOOL_ACQUIRE_TIMEOUT');
  t.equal(broker.timeouts, 2);
  await t.rejects(broker.acquire({ timeoutMillis: -1 }), ConfigError, 'a negative timeout is a ConfigError');
  await t.rejects(broker.acquire({ priority: Number.NaN }), ConfigError, 'a NaN priority is a ConfigError');
});

t.test('AbortSignal: AcquireAbortedError before and while waiting', async (t) => {
  const { broker, a0 } = rig(t);
  const reason = new Error('caller gave up');
  const aborted = AbortSignal.abort(reason);
  const before = await broker.acquire({ signal: aborted }).catch((e: unknown) => e);
  t.type(before, AcquireAbortedError, 'already aborted, nothing free: rejected at once');
  t.equal((before as AcquireAbortedError).cause, reason, 'with the abort reason as cause');
  t.equal(broker.waiting, 0);

  const controller = new AbortController();
  const waiting = outcome(broker.acquire({ signal: controller.signal }));
  await sleep(5);
  t.equal(broker.waiting, 1);
  controller.abort(reason);
  await sleep(0);
  t.type(waiting.error, AcquireAbortedError, 'aborted while waiting: rejected at once');
  t.equal((waiting.error as AcquireAbortedError).code, 'ANCHORPOOL_ACQUIRE_ABORTED');
  t.equal(broker.waiting, 0, 'and out of the queue');
  a0.drive('READY');
  await sleep(0); // waiters are served on a microtask
  t.equal(a0.streams, 0, 'an aborted waiter is never served');

  // A caller whose signal is already aborted asked for nothing: a free slot must not be taken either
  // (the same rule as pool.ready(), events.once() and fetch()).
  const free = await broker.acquire({ signal: aborted }).then(
    (lease) => {
      lease.release();
      return lease;
    },
    (e: unknown) => e,
  );
  t.type(free, AcquireAbortedError, 'already aborted with a free slot: rejected too, no lease taken');
});

t.test('maxWaitingClients: TooManyWaitersError beyond it; failFast: NoAnchorAvailableError instead of waiting', async (t) => {
  const { broker } = rig(t, { maxWaitingClients: 2 });
  const waiters = [outcome(broker.acquire()), outcome(broker.acquire())];
  const third = await broker.acquire().catch((e: unknown) => e);
  t.type(third, TooManyWaitersError);
  t.equal((third as TooManyWaitersError).code, 'ANCHORPOOL_TOO_MANY_WAITERS');
  t.equal(broker.waiting, 2);
  t.notOk(waiters.some((w) => w.settled), 'the two waiting stay');

  const none = rig(t, { maxWaitingClients: 0 });
  await t.rejects(none.broker.acquire(), TooManyWaitersError, 'maxWaitingClients 0: nobody waits');

  const fast = rig(t, { failFast: true });
  const error = await fast.broker.acquire().catch((e: unknown) => e);
  t.type(error, NoAnchorAvailableError);
  t.match((error as Error).message, /0 eligible/, 'the message describes the pool');
  t.equal(fast.broker.waiting, 0);
  fast.a0.drive('READY');
  const lease = await fast.broker.acquire();
  t.equal(lease.key, 'a', 'failFast still grants a free slot');
});

t.test('release twice: LeaseReleasedError; a foreign lease or a non-lease: ForeignLeaseError; no Lease from outside', async (t) => {
  const one = rig(t);
  const two = rig(t);
  one.a0.drive('READY');
  two.a0.drive('READY');
  const lease = one.broker.tryAcquire()!;
  const theirs = two.broker.tryAcquire()!;
  t.throws(() => one.broker.release(theirs), ForeignLeaseError, 'another broker\'s lease');
  t.throws(() => one.broker.release({ key: 'a', anchor: 0 } as unknown as Lease), ForeignLeaseError, 'a look-alike object');
  t.equal(two.broker.leased, 1, 'their lease is untouched');
  t.notOk(theirs.released);
  lease.release();
  t.ok(lease.released);
  t.throws(() => lease.release(), LeaseReleasedError, 'a second release()');
  t.throws(() => one.broker.release(lease), LeaseReleasedError, 'or through the broker');
  t.equal(one.broker.leased, 0, 'counted once');
  t.equal(one.a0.streams, 0, 'the anchor\'s slot given back once');
  lease[Symbol.dispose]();
  t.pass('disposing a released lease is a no-op');

  const Construct = Lease as unknown as new (...args: unknown[]) => Lease;
  t.throws(() => new Construct({ release() {}, releaseAtEnd() {} }, one.a0), TypeError, 'new Lease() from outside throws, whatever it is given');
  t.throws(() => new Construct(undefined, one.a0), /handed out by pool\.acquire\(\)/);
});

function takeAndForget(broker: LeaseBroker<FakeAnchor>): Promise<Lease> {
  return broker.acquire();
}

function waitAndForget(broker: LeaseBroker<FakeAnchor>): Promise<Lease> {
  return broker.acquire();
}

t.test('a lease held past leakDetectionMillis is reported once, with the stack of its acquire()', async (t) => {
  const { broker, leaks, a0, a1 } = rig(t, { leakDetectionMillis: 30 });
  a0.drive('READY');
  a1.drive('CONNECTING');
  const held = await takeAndForget(broker);
  const returned = await broker.acquire();
  returned.release();
  await sleep(80);
  t.equal(leaks.length, 1, 'only the lease still held is reported');
  const [leak] = leaks as [LeaseLeakEvent];
  t.same({ key: leak.key, anchor: leak.anchor, address: leak.address }, { key: held.key, anchor: held.anchor, address: held.address });
  t.ok(leak.heldMillis >= 25, `held for ${leak.heldMillis} ms`);
  t.match(leak.stack, /takeAndForget/, 'the stack names the caller that took it');
  held.release();

  t.equal(a1.streams, 0);
});

t.test('a waiter\'s leak report carries the stack of its acquire(), not of whatever served it', async (t) => {
  const { broker, leaks, a0 } = rig(t, { leakDetectionMillis: 30 });
  const waited = waitAndForget(broker);
  a0.drive('READY');
  const lease = await waited;
  await sleep(80);
  t.equal(leaks.length, 1);
  t.equal(leaks[0]!.anchor, lease.anchor);
  t.match(leaks[0]!.stack, /waitAndForget/, 'the stack names the caller that waited');
  lease.release();
});

t.test('a key removed while a lease is held: its anchor drains and closes only when the lease is released', async (t) => {
  const { broker, set, a0, a1, b0 } = rig(t);
  for (const a of [a0, a1, b0]) a.drive('READY');
  const onA = broker.tryAcquire()!;
  t.equal(onA.key, 'a');
  set.apply(new Map([['b', { addr: '10.0.0.2:1', anchors: 1 }]]));
  t.ok(a0.draining, 'a#0 drains');
  t.notOk(a0.closed, 'but stays open while its lease is held');
  t.ok(a1.closed, 'a#1 had no lease: closed at once');
  const next = [broker.tryAcquire()!, broker.tryAcquire()!];
  t.same(next.map((l) => l.key), ['b', 'b'], 'new leases go to the remaining key only');
  onA.release();
  t.ok(a0.closed, 'closed with its last lease');
  t.equal(set.drainingCount, 0);
  t.equal(broker.leased, 2);
  for (const l of next) l.release();
});

t.test('close: waiters rejected with PoolClosedError at once, acquire after close rejects, leased 0 when done', async (t) => {
  const { broker, close, a0, lifecycle } = rig(t, { maxLeases: 1, drainTimeoutMillis: 10_000 });
  a0.drive('READY');
  const held = await broker.acquire();
  const waiter = outcome(broker.acquire());
  const closing = close();
  await sleep(0);
  t.type(waiter.error, PoolClosedError, 'the waiter is rejected at once, while close() still drains');
  t.equal(broker.waiting, 0);
  await t.rejects(broker.acquire(), PoolClosedError, 'acquire() during close');
  t.equal(broker.tryAcquire(), undefined, 'tryAcquire() during close');
  t.equal(broker.leased, 1, 'the held lease still counts while draining');
  held.release();
  await closing;
  t.ok(lifecycle.finished);
  t.ok(a0.closed);
  t.equal(broker.leased, 0);
  await t.rejects(broker.acquire(), PoolClosedError, 'acquire() after close');
});
