// AnchorSet with fake anchors: the slot table both paths share. Plans applied by
// (key, index), eligibility counted as anchors flip, events of replaced or draining
// anchors kept away from the picker, drainAll and closeAll.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AnchorState } from '../lib/anchors/anchor.js';
import { AnchorSet } from '../lib/anchors/anchor-set.js';
import type { DesiredEntry } from '../lib/anchors/reconcile.js';
import { fakeAnchors, type FakeAnchor, type FakeAnchorOptions } from './fakes/fake-anchor.js';

type Desired = Record<string, [addr: string, anchors: number]>;
const desired = (d: Desired) => new Map<string, DesiredEntry>(Object.entries(d).map(([key, [addr, anchors]]) => [key, { addr, anchors }]));

interface OwnerEvent {
  readonly event: 'state' | 'eligible';
  readonly anchor: string;
  readonly detail?: string;
}

function rig(options: FakeAnchorOptions & { drainTimeoutMillis?: number } = {}) {
  const fakes = fakeAnchors(options);
  const events: OwnerEvent[] = [];
  const set = new AnchorSet<FakeAnchor>(
    fakes.factory,
    {
      state: (anchor, state: AnchorState, previous: AnchorState) => events.push({ event: 'state', anchor: anchor.label, detail: `${previous}->${state}` }),
      eligible: (anchor) => events.push({ event: 'eligible', anchor: anchor.label }),
    },
    { drainTimeoutMillis: options.drainTimeoutMillis ?? 10_000 },
  );
  const labels = (anchors: Iterable<FakeAnchor>) => [...anchors].map((a) => a.label);
  const pickN = (n: number) => Array.from({ length: n }, () => set.pick()?.label ?? 'none');
  return { fakes, set, events, labels, pickN };
}

t.test('apply() creates anchors by (key, index), and applying the same entries again changes nothing', async (t) => {
  const { fakes, set, labels } = rig();
  t.same(set.apply(desired({ a: ['10.0.0.1:1', 2], b: ['10.0.0.2:1', 1] })), { created: 3, drained: 0 });
  t.same(labels(set.active()), ['a#0', 'a#1', 'b#0']);
  t.same(fakes.created.map((a) => `${a.label}@${a.address}`), ['a#0@10.0.0.1:1', 'a#1@10.0.0.1:1', 'b#0@10.0.0.2:1']);
  t.same(fakes.created.map((a) => a.starts), [1, 1, 1], 'each started once');
  t.equal(set.wanted, 3);
  t.equal(set.activeCount, 3);
  t.same(set.byState(), { IDLE: 3, CONNECTING: 0, READY: 0, TRANSIENT_FAILURE: 0 });
  t.same(set.apply(desired({ a: ['10.0.0.1:1', 2], b: ['10.0.0.2:1', 1] })), { created: 0, drained: 0 }, 'same entries: no plan');
  t.equal(fakes.created.length, 3, 'nothing new made');
  t.same(fakes.created.map((a) => a.starts), [1, 1, 1], 'nothing restarted');
  t.equal(set.get('a', 1), fakes.created[1], 'get() finds the anchor of a slot');
  t.equal(set.get('a', 2), undefined);
});

t.test('N growing keeps the survivors and creates the new indexes; N shrinking drains the highest', async (t) => {
  const { fakes, set, labels } = rig();
  set.apply(desired({ a: ['10.0.0.1:1', 2] }));
  const [a0, a1] = fakes.created as [FakeAnchor, FakeAnchor];
  t.same(set.apply(desired({ a: ['10.0.0.1:1', 4] })), { created: 2, drained: 0 });
  t.equal(set.get('a', 0), a0, 'a#0 is the same anchor');
  t.equal(set.get('a', 1), a1, 'a#1 is the same anchor');
  t.same(labels(fakes.created), ['a#0', 'a#1', 'a#2', 'a#3']);
  t.same(set.apply(desired({ a: ['10.0.0.1:1', 1] })), { created: 0, drained: 3 });
  t.same(labels(set.active()), ['a#0']);
  t.equal(set.wanted, 1);
  t.same(fakes.created.map((a) => a.closed), [false, true, true, true], 'the three highest drained (no lease: closed at once)');
  t.equal(set.drainingCount, 0, 'and gone from the set');
});

t.test('a changed address drains every anchor of the key and creates new ones; a deleted key drains its anchors', async (t) => {
  const { fakes, set, labels, events } = rig();
  set.apply(desired({ a: ['10.0.0.1:1', 2], b: ['10.0.0.2:1', 1] }));
  const old = [...fakes.created];
  t.same(set.apply(desired({ a: ['10.0.0.9:1', 2], b: ['10.0.0.2:1', 1] })), { created: 2, drained: 2 });
  t.same(old.map((a) => a.closed), [true, true, false]);
  t.same(labels(set.active()).toSorted(), ['a#0', 'a#1', 'b#0']);
  t.same([set.get('a', 0)!.address, set.get('a', 1)!.address], ['10.0.0.9:1', '10.0.0.9:1']);
  t.not(set.get('a', 0), old[0], 'a new anchor holds a#0');
  t.same(set.apply(desired({ a: ['10.0.0.9:1', 2] })), { created: 0, drained: 1 });
  t.ok(old[2]!.closed, 'b#0 closed');
  t.same(
    events.filter((e) => e.detail?.endsWith('->SHUTDOWN')).map((e) => e.anchor),
    ['a#1', 'a#0', 'b#0'],
    'the owner hears each close as a SHUTDOWN state (highest index first)',
  );
  t.same(old.map((a) => a.shutdowns), [1, 1, 1], 'each transport shut down once');
});

t.test('new anchors are scheduled before they start: one READY from start() is pickable from its first event', async (t) => {
  const fakes = fakeAnchors({ startState: 'READY' });
  const seen: string[] = [];
  const set: AnchorSet<FakeAnchor> = new AnchorSet<FakeAnchor>(
    fakes.factory,
    {
      state: (anchor) => seen.push(`state ${anchor.label}`),
      // An owner may pick right away when told an anchor became eligible.
      eligible: (anchor) => seen.push(`eligible ${anchor.label}, picked ${set.pick()?.label ?? 'none'}`),
    },
    { drainTimeoutMillis: 1000 },
  );
  set.apply(desired({ a: ['10.0.0.1:1', 1] }));
  t.same(seen, ['eligible a#0, picked a#0', 'state a#0'], 'the owner hears eligible (and can pick it), then the state');
  t.equal(set.eligibleSlots, 1);
});

t.test('pick() interleaves by weight over eligible anchors; the eligible count follows every flip', async (t) => {
  const { fakes, set, pickN } = rig({ maxLeases: 1 });
  set.apply(desired({ a: ['10.0.0.1:1', 2], b: ['10.0.0.2:1', 1] }));
  const [a0, a1, b0] = fakes.created as [FakeAnchor, FakeAnchor, FakeAnchor];
  t.equal(set.eligibleSlots, 0);
  t.equal(set.pick(), undefined, 'nothing READY: nothing to pick');
  a0.drive('CONNECTING');
  t.equal(set.eligibleSlots, 0, 'CONNECTING is not eligible');
  for (const a of [a0, a1, b0]) a.drive('READY');
  t.equal(set.eligibleSlots, 3);
  t.ok(set.hasReady());
  t.same(pickN(6), ['a#0', 'b#0', 'a#1', 'a#0', 'b#0', 'a#1'], 'a(2), b(1): a b a');
  b0.drive('TRANSIENT_FAILURE');
  t.equal(set.eligibleSlots, 2);
  t.same(pickN(4), ['a#0', 'a#1', 'a#0', 'a#1'], 'b skipped');
  a0.take();
  t.equal(set.eligibleSlots, 1, 'an anchor at its lease cap is not eligible');
  t.same(pickN(2), ['a#1', 'a#1']);
  a1.take();
  t.equal(set.eligibleSlots, 0);
  t.equal(set.pick(), undefined, 'every READY anchor at its cap: nothing');
  t.ok(set.hasReady(), 'though READY ones exist');
  a0.give();
  t.equal(set.eligibleSlots, 1, 'a slot given back makes it eligible again');
  a0.drive('IDLE');
  t.equal(set.eligibleSlots, 0);
  t.same(set.byState(), { IDLE: 1, CONNECTING: 0, READY: 1, TRANSIENT_FAILURE: 1 });
});

t.test('events from a replaced or draining anchor never change what can be picked', async (t) => {
  const { fakes, set, events, pickN } = rig();
  set.apply(desired({ a: ['10.0.0.1:1', 1], b: ['10.0.0.2:1', 1] }));
  const [oldA, b0] = fakes.created as [FakeAnchor, FakeAnchor];
  oldA.drive('READY');
  b0.drive('READY');
  oldA.take(); // a lease held: the replaced anchor drains instead of closing
  set.apply(desired({ a: ['10.0.0.9:1', 1], b: ['10.0.0.2:1', 1] }));
  t.ok(oldA.draining && !oldA.closed, 'the replaced anchor drains while its lease is held');
  t.equal(set.drainingCount, 1);
  t.equal(set.eligibleSlots, 1, 'only b is eligible');
  events.length = 0;
  oldA.drive('IDLE');
  oldA.drive('READY');
  oldA.take();
  oldA.give();
  t.equal(oldA.streams, 1);
  t.equal(set.eligibleSlots, 1, 'its flips do not count');
  t.same(pickN(4), ['b#0', 'b#0', 'b#0', 'b#0'], 'and it is never picked');
  t.same(
    events.map((e) => `${e.event} ${e.anchor} ${e.detail ?? ''}`.trim()),
    ['state a#0 READY->IDLE', 'state a#0 IDLE->READY'],
    'the owner still hears its state changes, never "eligible"',
  );
  const fresh = set.get('a', 0)!;
  fresh.drive('READY');
  t.same(pickN(2).toSorted(), ['a#0', 'b#0']);
  t.not(set.pick(), oldA);
  oldA.give();
  t.ok(oldA.closed, 'closes with its last lease');
  t.equal(set.drainingCount, 0);
  oldA.drive('READY');
  t.equal(oldA.state, 'SHUTDOWN', 'a closed anchor ignores its transport');
  t.equal(set.eligibleSlots, 2);
});

t.test('drainAll() resolves only when every anchor closed: a held lease is waited for', async (t) => {
  const { fakes, set } = rig({ drainTimeoutMillis: 10_000 });
  set.apply(desired({ a: ['10.0.0.1:1', 2] }));
  const [a0, a1] = fakes.created as [FakeAnchor, FakeAnchor];
  a0.drive('READY');
  a1.drive('READY');
  a0.take();
  let done = false;
  const drained = set.drainAll().then(() => (done = true));
  t.equal(set.pick(), undefined, 'nothing can be picked from then on');
  t.equal(set.activeCount, 0);
  t.equal(set.wanted, 0);
  t.ok(a1.closed, 'the idle anchor closed at once');
  await sleep(20);
  t.notOk(done, 'still pending while a lease is held');
  t.notOk(a0.closed);
  a0.give();
  await drained;
  t.ok(a0.closed, 'closed with its last lease');
  t.equal(set.drainingCount, 0);
});

t.test('drainAll() closes a held anchor after the drain timeout', async (t) => {
  const { fakes, set } = rig({ drainTimeoutMillis: 40 });
  set.apply(desired({ a: ['10.0.0.1:1', 1] }));
  const [a0] = fakes.created as [FakeAnchor];
  a0.drive('READY');
  a0.take();
  const started = performance.now();
  // The drain timer is unref'd (a library never holds the process); the pool holds it while close() runs.
  const keepAlive = setTimeout(() => undefined, 5000);
  await set.drainAll();
  clearTimeout(keepAlive);
  const took = performance.now() - started;
  t.ok(took >= 35, `waited for the drain timeout (${took.toFixed(0)} ms)`);
  t.ok(took < 1000, 'and not much longer');
  t.ok(a0.closed);
  t.equal(a0.streams, 1, 'the lease was still held');
});

t.test('drainAll() waits for anchors already draining, and resolves at once when there is nothing', async (t) => {
  const empty = rig();
  await empty.set.drainAll();
  t.pass('an empty set drains at once');

  const { fakes, set } = rig({ drainTimeoutMillis: 10_000 });
  set.apply(desired({ a: ['10.0.0.1:1', 1] }));
  const [a0] = fakes.created as [FakeAnchor];
  a0.drive('READY');
  a0.take();
  set.apply(desired({}));
  t.equal(set.drainingCount, 1, 'a0 drains (key removed)');
  let done = false;
  const drained = set.drainAll().then(() => (done = true));
  await sleep(10);
  t.notOk(done, 'drainAll() waits for it too');
  a0.give();
  await drained;
  t.ok(done);
});

t.test('closeAll() closes active and draining anchors at once', async (t) => {
  const { fakes, set, events } = rig({ drainTimeoutMillis: 10_000 });
  set.apply(desired({ a: ['10.0.0.1:1', 2], b: ['10.0.0.2:1', 1] }));
  for (const a of fakes.created) a.drive('READY');
  fakes.created[0]!.take();
  set.apply(desired({ a: ['10.0.0.9:1', 2], b: ['10.0.0.2:1', 1] }));
  t.equal(set.drainingCount, 1, 'a#0 (old) drains with its lease');
  events.length = 0;
  set.closeAll();
  t.ok(fakes.created.every((a) => a.closed), 'every anchor ever made is closed');
  t.same(fakes.created.map((a) => a.shutdowns), [1, 1, 1, 1, 1], 'each shut down exactly once');
  t.equal(set.activeCount, 0);
  t.equal(set.drainingCount, 0);
  t.equal(set.eligibleSlots, 0);
  t.equal(set.pick(), undefined);
  t.equal(events.filter((e) => e.detail?.endsWith('->SHUTDOWN')).length, 4, 'the owner hears each of the 4 open anchors close (SHUTDOWN)');
  t.equal(events.filter((e) => e.event === 'eligible').length, 0);
});

t.test('an ejected key that moves to another address starts in rotation; one that is deleted and comes back too', async (t) => {
  const fakes = fakeAnchors({ startState: 'READY' });
  const set = new AnchorSet(fakes.factory, { state: () => undefined, eligible: () => undefined }, { drainTimeoutMillis: 0 });
  set.apply(new Map([['k', { addr: '10.0.0.1:1', anchors: 1 }]]));
  set.setEjected('k', true);
  t.equal(set.get('k', 0)?.ejected, true);
  set.apply(new Map([['k', { addr: '10.0.0.2:1', anchors: 1 }]]));
  t.equal(set.get('k', 0)?.address, '10.0.0.2:1');
  t.equal(set.get('k', 0)?.ejected, false, 'another backend now: not ejected');
  set.setEjected('k', true);
  set.apply(new Map());
  set.apply(new Map([['k', { addr: '10.0.0.2:1', anchors: 1 }]]));
  t.equal(set.get('k', 0)?.ejected, false, 'deleted and back: not ejected');
  set.closeAll();
});
