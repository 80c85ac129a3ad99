// Load-driven anchors in the AnchorSet, with fake anchors: a key that allows more than its
// N opens one more anchor (one at a time) when all of its are full and callers wait
// (starved()), never past its maximum; a failed one is closed and the key backs off; the
// extra anchors drain back, newest first, once the load has stayed low; and however many
// anchors a key has opened, its share of the picks follows its N (lanes).
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { AnchorSet } from '../lib/anchors/anchor-set.js';
import type { GrowthSettings } from '../lib/anchors/anchor-growth.js';
import type { DesiredEntry } from '../lib/anchors/reconcile.js';
import { fakeAnchors, type FakeAnchor, type FakeAnchorOptions } from './fakes/fake-anchor.js';
import { waitFor } from '../testkit/tap-etcd.js';

const growth: GrowthSettings = { connectTimeoutMillis: 100, backoffInitialMillis: 80, backoffMaxMillis: 1000, idleMillis: 60, sampleMillis: 20, lowWater: 0.5 };

function rig(fakeOptions: FakeAnchorOptions = { startState: 'READY', maxLeases: 2 }, settings: Partial<GrowthSettings> = {}) {
  const fakes = fakeAnchors(fakeOptions);
  const extra: string[] = [];
  const set = new AnchorSet<FakeAnchor>(
    fakes.factory,
    { state: () => undefined, eligible: () => undefined, extra: (a, change) => extra.push(`${a.label} ${change}`) },
    { drainTimeoutMillis: 10_000, growth: { ...growth, ...settings } },
  );
  /** Takes a lease the way the broker does: pick, then count it on the anchor. */
  const lease = (): FakeAnchor | undefined => {
    const anchor = set.pick();
    anchor?.take();
    return anchor;
  };
  return { fakes, set, extra, lease };
}

const entries = (e: Record<string, DesiredEntry>) => new Map(Object.entries(e));

t.test('a full key opens one more anchor when starved, up to maxAnchors, never more', async (t) => {
  const { fakes, set, extra, lease } = rig();
  t.teardown(() => set.closeAll());
  set.apply(entries({ a: { addr: '10.0.0.1:1', anchors: 1, maxAnchors: 3 } }));
  t.same([lease()?.label, lease()?.label, lease()?.label], ['a#0', 'a#0', undefined], 'its one anchor takes 2 leases, then none is free');
  set.starved();
  t.same(fakes.created.map((a) => a.label), ['a#0', 'a#1'], 'starved: one extra anchor');
  t.ok(set.isExtra(fakes.created[1]!));
  t.notOk(set.isExtra(fakes.created[0]!));
  t.same([lease()?.label, lease()?.label, lease()?.label], ['a#1', 'a#1', undefined]);
  set.starved();
  set.starved();
  t.same(fakes.created.map((a) => a.label), ['a#0', 'a#1', 'a#2'], 'one at a time, and a third');
  lease();
  lease();
  set.starved();
  t.equal(fakes.created.length, 3, 'at maxAnchors (3): no more');
  t.same(extra, ['a#1 opened', 'a#2 opened']);
  t.same(set.extraCounts(), { open: 2, opened: 2, drained: 0, failed: 0 });
  t.equal(set.wanted, 1, 'wanted is still the N the key asks for');
});

t.test('a key that is not full, or down, does not grow', async (t) => {
  const { fakes, set, lease } = rig({ startState: 'CONNECTING', maxLeases: 2 });
  t.teardown(() => set.closeAll());
  set.apply(entries({ a: { addr: '10.0.0.1:1', anchors: 1, maxAnchors: 4 }, b: { addr: '10.0.0.2:1', anchors: 1, maxAnchors: 4 } }));
  set.starved();
  t.equal(fakes.created.length, 2, 'nothing READY: a key that is down gets no extra connection');
  fakes.created[0]!.drive('READY');
  lease();
  set.starved();
  t.equal(fakes.created.length, 2, 'a has a free slot: no growth');
});

t.test("growth adds capacity, not share: with 4 anchors open the key's picks still follow its N", async (t) => {
  const { fakes, set, lease } = rig({ startState: 'READY', maxLeases: 1 });
  t.teardown(() => set.closeAll());
  set.apply(entries({ a: { addr: '10.0.0.1:1', anchors: 1, maxAnchors: 4 }, b: { addr: '10.0.0.2:1', anchors: 1 } }));
  // Fill a three times over so that it opens 3 extra anchors.
  const held: FakeAnchor[] = [];
  for (let i = 0; i < 8; i++) {
    const anchor = lease();
    if (anchor !== undefined) held.push(anchor);
    else set.starved();
  }
  t.equal(fakes.created.filter((a) => a.key === 'a').length, 4, 'a grew to 4 anchors');
  for (const anchor of held) anchor.give();
  const counts = { a: 0, b: 0 };
  for (let i = 0; i < 1000; i++) {
    const anchor = lease()!;
    counts[anchor.key as 'a' | 'b'] += 1;
    anchor.give();
  }
  t.same(counts, { a: 500, b: 500 }, 'a (N 1, 4 open) and b (N 1) share the picks 1:1');
});

t.test('an extra anchor that does not connect is closed; the key backs off before it tries again', async (t) => {
  // Anchors start CONNECTING: the test plays each one's connection.
  const { fakes, set, extra, lease } = rig({ startState: 'CONNECTING', maxLeases: 1 });
  t.teardown(() => set.closeAll());
  set.apply(entries({ a: { addr: '10.0.0.1:1', anchors: 1, maxAnchors: 3 } }));
  fakes.created[0]!.drive('READY');
  lease();
  const next = (): FakeAnchor => fakes.created.at(-1)!;
  set.starved();
  const first = next();
  first.drive('TRANSIENT_FAILURE');
  t.ok(first.closed, 'TRANSIENT_FAILURE: closed at once');
  t.same(extra, ['a#1 opened', 'a#1 failed']);
  set.starved();
  t.equal(fakes.created.length, 2, 'backing off: no new attempt right away');
  await sleep(100);
  set.starved();
  t.equal(fakes.created.length, 3, 'after the backoff (80 ms) it tries again');
  await sleep(130);
  t.ok(next().closed, 'one that stays CONNECTING is closed at the connect timeout (100 ms)');
  t.same(set.extraCounts().failed, 2);
});

t.test('extra anchors drain back, newest first, once the load has stayed low; the N stay', async (t) => {
  const { fakes, set, extra, lease } = rig({ startState: 'READY', maxLeases: 1 });
  t.teardown(() => set.closeAll());
  set.apply(entries({ a: { addr: '10.0.0.1:1', anchors: 1, maxAnchors: 3 } }));
  const held: FakeAnchor[] = [];
  for (let i = 0; i < 5; i++) {
    const anchor = lease();
    if (anchor !== undefined) held.push(anchor);
    else set.starved();
  }
  t.equal(held.length, 3, '3 anchors, each with its lease');
  await sleep(150);
  t.equal(set.extraCounts().open, 2, 'fully loaded: nothing drains');
  for (const anchor of held) anchor.give();
  // Two samples after the idle time, one drain each; on a loaded machine timers run late.
  await waitFor(() => extra.filter((e) => e.endsWith('drained')).length >= 2, { what: 'both extras drained', timeoutMs: 5000 });
  t.same(extra.filter((e) => e.endsWith('drained')), ['a#2 drained', 'a#1 drained'], 'idle: newest first');
  t.same([...set.active()].map((a) => a.label), ['a#0'], 'down to its N');
  t.ok(fakes.created[1]!.closed && fakes.created[2]!.closed);
  t.same(set.extraCounts(), { open: 0, opened: 2, drained: 2, failed: 0 });
});

t.test('a changed entry drains the extras first; anchors and lanes start again from the new N', async (t) => {
  const { fakes, set, lease } = rig({ startState: 'READY', maxLeases: 1 });
  t.teardown(() => set.closeAll());
  set.apply(entries({ a: { addr: '10.0.0.1:1', anchors: 1, maxAnchors: 3 } }));
  const held = lease()!;
  set.starved();
  t.equal(fakes.created.length, 2);
  held.give();
  set.apply(entries({ a: { addr: '10.0.0.1:1', anchors: 2, maxAnchors: 4 } }));
  t.ok(fakes.created[1]!.draining || fakes.created[1]!.closed, 'the extra a#1 (index 1) is drained');
  t.same([...set.active()].map((a) => a.label), ['a#0', 'a#1']);
  t.not(set.get('a', 1), fakes.created[1], 'a#1 is a new anchor now, one of the N, not the drained extra');
  t.notOk(set.isExtra(set.get('a', 1)!));
  set.apply(entries({ a: { addr: '10.0.0.1:1', anchors: 2 } }));
  t.same([...set.active()].map((a) => a.label), ['a#0', 'a#1'], 'maxAnchors gone: plain anchors again');
  const picks = Array.from({ length: 4 }, () => set.pick()?.label);
  t.same(picks.sort(), ['a#0', 'a#0', 'a#1', 'a#1'], 'the schedule holds the plain anchors');
});
