// Make-before-break refresh in the AnchorSet, with fake anchors and short ages: an anchor
// at its maximum age gets a replacement for its slot, which takes the slot only once it
// is eligible; the old one keeps taking picks until then and drains after. One
// replacement per key at a time; one that does not connect in time is closed, the old
// anchor stays and is tried again later.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { AnchorSet } from '../lib/anchors/anchor-set.js';
import type { RefreshSettings } from '../lib/anchors/anchor-refresh.js';
import type { DesiredEntry } from '../lib/anchors/reconcile.js';
import { fakeAnchors, type FakeAnchor } from './fakes/fake-anchor.js';

const entry = (addr: string, anchors: number, maxAgeMillis?: number): DesiredEntry => (maxAgeMillis === undefined ? { addr, anchors } : { addr, anchors, maxAgeMillis });

function rig(refresh: Partial<RefreshSettings> = {}) {
  const fakes = fakeAnchors({ startState: 'READY' });
  const refreshed: { old: string; fresh: string; ageMillis: number }[] = [];
  const describe = (a: FakeAnchor) => `${a.label}@${a.generation}`;
  const set = new AnchorSet<FakeAnchor>(
    fakes.factory,
    {
      state: () => undefined,
      eligible: () => undefined,
      
      refreshed: (old, fresh, ageMillis) => refreshed.push({ old: describe(old), fresh: describe(fresh), ageMillis }),
    },
    { drainTimeoutMillis: 10_000, refresh: { connectTimeoutMillis: 200, retryMillis: 100, jitter: 0, random: () => 0.5, ...refresh } },
  );
  const picks = (n: number) => Array.from({ length: n }, () => { const a = set.pick(); return a === undefined ? 'none' : describe(a); });
  return { fakes, set, refreshed, picks, describe };
}

t.test('at its age an anchor is replaced in its slot, make before break', async (t) => {
  const fakes = fakeAnchors({ startState: 'CONNECTING' });
  const refreshed: string[] = [];
  const set = new AnchorSet<FakeAnchor>(fakes.factory, { state: () => undefined, eligible: () => undefined, refreshed: (o, f, age) => refreshed.push(`${o.label}@${o.generation}→${f.generation} after ${Math.round(age)} ms`) }, { drainTimeoutMillis: 10_000, refresh: { connectTimeoutMillis: 5000, retryMillis: 100, jitter: 0, random: () => 0.5 } });
  t.teardown(() => set.closeAll());
  set.apply(new Map([['a', entry('10.0.0.1:1', 1, 50)]]));
  const old = fakes.created[0]!;
  old.drive('READY');
  await sleep(80);
  t.equal(fakes.created.length, 2, 'a replacement was made at 50 ms');
  const fresh = fakes.created[1]!;
  t.same([fresh.label, fresh.generation, fresh.address, fresh.starts], ['a#0', 1, '10.0.0.1:1', 1], 'for the same slot and address, a new generation, started');
  t.equal(set.get('a', 0), old, 'while it connects, the old anchor keeps the slot');
  t.equal(set.pick(), old, 'and takes the picks');
  old.take(); // a lease running on it
  t.notOk(old.draining);
  fresh.drive('READY');
  t.equal(set.get('a', 0), fresh, 'eligible: the replacement holds the slot');
  t.equal(set.pick(), fresh, 'and takes the picks');
  t.ok(old.draining && !old.closed, 'the old anchor drains: its lease runs on');
  t.same([...set.draining()], [old]);
  old.give();
  t.ok(old.closed, 'and closes with its last lease');
  t.equal(refreshed.length, 1);
  t.match(refreshed[0], /^a#0@0→1 after \d+ ms$/);
  t.same(set.refreshCounts(), { done: 1, failed: 0, connecting: 0 });
});

t.test('one replacement per key at a time; other keys refresh beside it', async (t) => {
  const { fakes, set, refreshed } = rig({ connectTimeoutMillis: 5000 });
  t.teardown(() => set.closeAll());
  set.apply(new Map([['a', entry('10.0.0.1:1', 3, 40)], ['b', entry('10.0.0.2:1', 1, 40)]]));
  await sleep(70);
  // Each replacement is READY at once, so a's three go one after another and b's beside them.
  t.same(refreshed.map((r) => `${r.old}→${r.fresh}`).sort(), ['a#0@0→a#0@1', 'a#1@0→a#1@1', 'a#2@0→a#2@1', 'b#0@0→b#0@1']);
  t.same([...set.active()].map((a) => `${a.label}@${a.generation}`), ['a#0@1', 'a#1@1', 'a#2@1', 'b#0@1']);
  t.equal(fakes.created.length, 8);
});

t.test('a slow replacement holds back the rest of its key: never two of a key connecting at once', async (t) => {
  const fakes = fakeAnchors({ startState: 'CONNECTING' });
  const set = new AnchorSet<FakeAnchor>(fakes.factory, { state: () => undefined, eligible: () => undefined }, { drainTimeoutMillis: 10_000, refresh: { connectTimeoutMillis: 5000, retryMillis: 100, jitter: 0, random: () => 0.5 } });
  t.teardown(() => set.closeAll());
  set.apply(new Map([['a', entry('10.0.0.1:1', 3, 30)]]));
  for (const a of fakes.created) a.drive('READY');
  await sleep(60);
  t.equal(fakes.created.length, 4, 'all three are due, one replacement is made');
  t.same(set.refreshCounts().connecting, 1);
  fakes.created[3]!.drive('READY');
  t.equal(fakes.created.length, 5, 'its swap starts the next one');
  fakes.created[4]!.drive('READY');
  t.equal(fakes.created.length, 6);
  fakes.created[5]!.drive('READY');
  t.equal(fakes.created.length, 6, 'and no more: every slot is fresh');
  t.same(set.refreshCounts(), { done: 3, failed: 0, connecting: 0 });
});

t.test('a replacement that does not connect in time is closed; the old anchor stays and is tried again', async (t) => {
  const fakes = fakeAnchors({ startState: 'CONNECTING' });
  const set = new AnchorSet<FakeAnchor>(fakes.factory, { state: () => undefined, eligible: () => undefined }, { drainTimeoutMillis: 10_000, refresh: { connectTimeoutMillis: 60, retryMillis: 60, jitter: 0, random: () => 0.5 } });
  t.teardown(() => set.closeAll());
  set.apply(new Map([['a', entry('10.0.0.1:1', 1, 20)]]));
  const old = fakes.created[0]!;
  old.drive('READY');
  await sleep(40);
  const first = fakes.created[1]!;
  t.notOk(first.closed, 'a replacement is connecting');
  await sleep(60);
  t.ok(first.closed, 'not eligible within 60 ms: closed');
  t.equal(set.get('a', 0), old, 'the old anchor keeps its slot');
  t.notOk(old.draining);
  t.equal(set.pick(), old);
  t.same(set.refreshCounts(), { done: 0, failed: 1, connecting: 0 });
  await sleep(80);
  t.equal(fakes.created.length, 3, 'tried again after retryMillis');
  fakes.created[2]!.drive('READY');
  t.equal(set.get('a', 0), fakes.created[2], 'this time it made it');
  t.same(set.refreshCounts(), { done: 1, failed: 1, connecting: 0 });
});

t.test('a key deleted or moved while its replacement connects: the replacement is closed with the old anchors', async (t) => {
  const fakes = fakeAnchors({ startState: 'CONNECTING' });
  const set = new AnchorSet<FakeAnchor>(fakes.factory, { state: () => undefined, eligible: () => undefined }, { drainTimeoutMillis: 10_000, refresh: { connectTimeoutMillis: 5000, retryMillis: 100, jitter: 0, random: () => 0.5 } });
  t.teardown(() => set.closeAll());
  set.apply(new Map([['a', entry('10.0.0.1:1', 1, 20)], ['b', entry('10.0.0.2:1', 1, 20)]]));
  for (const a of fakes.created) a.drive('READY');
  await sleep(40);
  const [aFresh, bFresh] = [fakes.created[2]!, fakes.created[3]!];
  set.apply(new Map([['b', entry('10.0.0.3:1', 1, 20)]]));
  t.ok(aFresh.closed, "a deleted: its replacement is closed");
  t.ok(bFresh.closed, 'b moved: the replacement for its old address is closed');
  aFresh.drive('READY');
  t.equal(set.get('a', 0), undefined, 'a late READY of a closed replacement changes nothing');
  t.same(set.refreshCounts().connecting, 0);
});

t.test('jitter: the age is spread ±15% (random 0 → 0.85×, random → 1 → 1.15×)', async (t) => {
  const early = rig({ jitter: 0.15, random: () => 0 });
  const late = rig({ jitter: 0.15, random: () => 0.999 });
  t.teardown(() => early.set.closeAll());
  t.teardown(() => late.set.closeAll());
  early.set.apply(new Map([['a', entry('10.0.0.1:1', 1, 200)]]));
  late.set.apply(new Map([['a', entry('10.0.0.1:1', 1, 200)]]));
  await sleep(190);
  t.equal(early.refreshed.length, 1, 'at 0.85 × 200 = 170 ms the early one is refreshed');
  t.equal(late.refreshed.length, 0, 'the late one (230 ms) not yet');
  await sleep(70);
  t.equal(late.refreshed.length, 1, 'by 260 ms it is');
});

t.test('without a maximum age nothing is refreshed; a new age in apply() starts the clocks', async (t) => {
  const { fakes, set, refreshed } = rig();
  t.teardown(() => set.closeAll());
  set.apply(new Map([['a', entry('10.0.0.1:1', 2)]]));
  await sleep(60);
  t.equal(refreshed.length, 0);
  set.apply(new Map([['a', entry('10.0.0.1:1', 2, 30)]]));
  await sleep(50);
  t.equal(refreshed.length, 2, 'both anchors refreshed once the key has an age');
  set.apply(new Map([['a', entry('10.0.0.1:1', 2, 0)]]));
  const made = fakes.created.length;
  await sleep(60);
  t.equal(fakes.created.length, made, 'age 0: off again');
});

t.test('drainAll and closeAll stop every clock and close replacements under way', async (t) => {
  const fakes = fakeAnchors({ startState: 'CONNECTING' });
  const set = new AnchorSet<FakeAnchor>(fakes.factory, { state: () => undefined, eligible: () => undefined }, { drainTimeoutMillis: 10_000, refresh: { connectTimeoutMillis: 5000, retryMillis: 100, jitter: 0, random: () => 0.5 } });
  set.apply(new Map([['a', entry('10.0.0.1:1', 2, 20)]]));
  for (const a of fakes.created) a.drive('READY');
  await sleep(35);
  t.equal(fakes.created.length, 3, 'one replacement connecting');
  set.closeAll();
  t.ok(fakes.created.every((a) => a.closed), 'everything closed, the replacement too');
  await sleep(50);
  t.equal(fakes.created.length, 3, 'no clock left running');
});
