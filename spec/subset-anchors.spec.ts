// Subsetting in the anchor set, with fake anchors: anchors only for the client's subset;
// a failed key widens it and its return narrows it back; keys that outrank the subset
// replace old ones make before break; turning it off brings every key back.
import t from 'tap';
import { setImmediate as turn } from 'node:timers/promises';
import { AnchorSet } from '../lib/anchors/anchor-set.js';
import type { DesiredEntry } from '../lib/anchors/reconcile.js';
import { rendezvousOrder } from '../lib/anchors/subset.js';
import { coordinatedOrder } from '../lib/anchors/coordinated-assignment.js';
import { fakeAnchors, type FakeAnchor } from './fakes/fake-anchor.js';

const CLIENT = 'client-1';
const entries = (keys: string[]) => new Map<string, DesiredEntry>(keys.map((key, i) => [key, { addr: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}:1`, anchors: 2 }]));
const all = Array.from({ length: 20 }, (_, i) => `svc/k${i}`);

function rig(size: number) {
  const fakes = fakeAnchors({ startState: 'READY' });
  const set = new AnchorSet<FakeAnchor>(fakes.factory, { state: () => {}, eligible: () => {} }, { drainTimeoutMillis: 0, subset: { size, mode: 'rendezvous', clientId: CLIENT } });
  const keysWithAnchors = () => [...new Set([...set.active()].map((a) => a.key))].sort();
  const anchorsOf = (key: string) => [...set.active()].filter((a) => a.key === key);
  return { set, fakes, keysWithAnchors, anchorsOf };
}

t.test('anchors only for the subset: the 5 keys of highest rank for this client, 2 anchors each', async (t) => {
  const { set, keysWithAnchors } = rig(5);
  set.apply(entries(all));
  const expected = rendezvousOrder(CLIENT, all).slice(0, 5).sort();
  t.same(keysWithAnchors(), expected);
  t.equal(set.activeCount, 10);
  t.equal(set.wanted, 10, 'wanted counts the subset');
  t.match(set.subsetReport(), { size: 5, clientId: CLIENT, offered: 20 });
  t.same(set.subsetReport()!.keys.map((k) => k.why), ['chosen', 'chosen', 'chosen', 'chosen', 'chosen']);
});

t.test('a key that fails widens the subset by one; when it serves again the extra key drains', async (t) => {
  const { set, keysWithAnchors, anchorsOf } = rig(5);
  set.apply(entries(all));
  const order = rendezvousOrder(CLIENT, all);
  const victim = order[1]!;
  for (const anchor of anchorsOf(victim)) anchor.drive('TRANSIENT_FAILURE');
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 6).sort(), 'the 6th key joins; the failed one stays to be watched');
  t.match(set.subsetReport()!.keys.find((k) => k.key === victim), { why: 'failed, kept to see it return' });
  for (const anchor of anchorsOf(victim)) anchor.drive('CONNECTING');
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 6).sort(), 'retrying its connection does not make it count again');
  for (const anchor of anchorsOf(victim)) anchor.drive('READY');
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 5).sort(), 'it serves again: the subset narrows back to 5');
});

t.test('a new key that outranks the subset replaces its last key, and only that one', async (t) => {
  const { set, fakes, keysWithAnchors } = rig(3);
  const base = all.slice(0, 10);
  set.apply(entries(base));
  const order = rendezvousOrder(CLIENT, base);
  const newcomer = Array.from({ length: 200 }, (_, i) => `svc/new${i}`).find((k) => rendezvousOrder(CLIENT, [k, ...base]).indexOf(k) < 2)!;
  const made = fakes.created.length;
  set.apply(entries([...base, newcomer]));
  t.same(fakes.created.slice(made).map((a) => a.key), [newcomer, newcomer], 'only the newcomer gets anchors');
  await turn();
  t.same(keysWithAnchors(), [...order.slice(0, 2), newcomer].sort(), `once it serves, ${order[2]} (the last of the subset) has drained`);
});

t.test('a leaving key stays while its replacement connects', async (t) => {
  const fakes = fakeAnchors({ startState: 'CONNECTING' });
  const set = new AnchorSet<FakeAnchor>(fakes.factory, { state: () => {}, eligible: () => {} }, { drainTimeoutMillis: 0, subset: { size: 3, mode: 'rendezvous', clientId: CLIENT } });
  const base = all.slice(0, 10);
  set.apply(entries(base));
  for (const anchor of [...set.active()]) anchor.drive('READY');
  await turn();
  const order = rendezvousOrder(CLIENT, base);
  const newcomer = Array.from({ length: 200 }, (_, i) => `svc/new${i}`).find((k) => rendezvousOrder(CLIENT, [k, ...base]).indexOf(k) < 2)!;
  set.apply(entries([...base, newcomer]));
  const keys = () => [...new Set([...set.active()].map((a) => a.key))].sort();
  t.same(keys(), [...order.slice(0, 3), newcomer].sort(), `${order[2]} stays while ${newcomer} connects`);
  t.match(set.subsetReport()!.keys.find((k) => k.key === order[2]), { why: 'leaving, until its replacement serves' });
  for (const anchor of [...set.active()].filter((a) => a.key === newcomer)) anchor.drive('READY');
  await turn();
  t.same(keys(), [...order.slice(0, 2), newcomer].sort(), `${newcomer} serves: ${order[2]} drains`);
});

t.test('a new config: off brings every key back with the next apply; a larger size adds keys and keeps the client id and the subset', async (t) => {
  const { set, keysWithAnchors } = rig(5);
  set.apply(entries(all));
  const five = keysWithAnchors();
  set.setSubset({ size: 7, mode: 'rendezvous', clientId: CLIENT });
  set.apply(entries(all));
  const seven = keysWithAnchors();
  t.equal(seven.length, 7);
  t.ok(five.every((key) => seven.includes(key)), 'size 5 → 7: the 5 stay, 2 join');
  set.setSubset(undefined);
  set.apply(entries(all));
  t.equal(keysWithAnchors().length, 20);
  t.equal(set.subsetReport(), undefined);
});

t.test('a key ejected, or out of rotation after serving for any reason, stops counting; it counts again once it serves', async (t) => {
  const { set, keysWithAnchors, anchorsOf } = rig(3);
  set.apply(entries(all));
  const order = rendezvousOrder(CLIENT, all);
  set.setEjected(order[0]!, true);
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 4).sort(), 'ejected: the 4th key joins');
  set.setEjected(order[0]!, false);
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 3).sort(), 'returned: back to 3');
  for (const anchor of anchorsOf(order[1]!)) anchor.drive('IDLE'); // a disconnect: READY → IDLE, out of rotation
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 4).sort(), 'disconnected after serving: the 4th key joins');
});

t.test('widening stops at twice the size: when most keys fail at once the fault is likely the client\'s', async (t) => {
  const { set, keysWithAnchors, fakes } = rig(3);
  set.apply(entries(all));
  for (let round = 0; round < 5; round++) {
    for (const anchor of fakes.open()) if (anchor.state !== 'TRANSIENT_FAILURE') anchor.drive('TRANSIENT_FAILURE');
    await turn();
  }
  t.equal(keysWithAnchors().length, 6, 'every key failing: 6 keys (2 × 3), not all 20');
});

t.test('a failed key that leaves the subset forgets its failure; a key removed from etcd while failed goes', async (t) => {
  const { set, keysWithAnchors, anchorsOf } = rig(2);
  const order = rendezvousOrder(CLIENT, all);
  set.apply(entries(all));
  for (const anchor of anchorsOf(order[1]!)) anchor.drive('TRANSIENT_FAILURE');
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 3).sort(), 'widened past the failed key');
  set.apply(entries(all.filter((k) => k !== order[1])));
  await turn();
  t.same(keysWithAnchors(), [order[0]!, order[2]!].sort(), 'removed from etcd: it goes, the subset is the next two');
  set.apply(entries(all));
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 2).sort(), 'back in etcd: it counts afresh (its failure was not kept), and once it serves the third key goes');
});

t.test('drainAll while an evaluation is queued: nothing opens afterwards', async (t) => {
  const { set, fakes, anchorsOf } = rig(2);
  set.apply(entries(all));
  const order = rendezvousOrder(CLIENT, all);
  const made = fakes.created.length;
  for (const anchor of anchorsOf(order[0]!)) anchor.drive('TRANSIENT_FAILURE');
  void set.drainAll();
  await turn();
  t.equal(fakes.created.length, made, 'no anchor made after drainAll');
});

t.test("coordinated: nothing until the place is known, then its share of the fleet's assignment; a failed key widens to its next best", async (t) => {
  const fakes = fakeAnchors({ startState: 'READY' });
  const set = new AnchorSet<FakeAnchor>(fakes.factory, { state: () => {}, eligible: () => {} }, { drainTimeoutMillis: 0, subset: { size: 3, mode: 'coordinated', clientId: CLIENT } });
  const keysWithAnchors = () => [...new Set([...set.active()].map((a) => a.key))].sort();
  set.apply(entries(all));
  t.same(keysWithAnchors(), [], 'no anchors while the place among the clients is unknown');
  t.ok(set.subsetAwaitingPlace());
  const fleet = [CLIENT, ...Array.from({ length: 9 }, (_, i) => `peer-${i}`)].sort();
  const order = coordinatedOrder(CLIENT, fleet, all, 3);
  set.placeSubset({ rank: fleet.indexOf(CLIENT), clients: 10, registered: true, ids: fleet });
  t.same(keysWithAnchors(), order.slice(0, 3).sort(), "10 clients over 20 keys: this client's 3 keys of the assignment");
  t.match(set.subsetReport(), { mode: 'coordinated', coordination: { rank: fleet.indexOf(CLIENT), clients: 10, registered: true } });
  t.notOk('ids' in set.subsetReport()!.coordination!, 'the report leaves the ids out (thousands of them in a fleet)');
  for (const anchor of [...set.active()].filter((a) => a.key === order[1])) anchor.drive('TRANSIENT_FAILURE');
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 4).sort(), "the client's next best key joins for the failed one");
  for (const anchor of [...set.active()].filter((a) => a.key === order[1])) anchor.drive('READY');
  await turn();
  t.same(keysWithAnchors(), order.slice(0, 3).sort(), 'it serves again: the subset narrows back');
  const half = fleet.filter((id, i) => id === CLIENT || i % 2 === 0).slice(0, 5);
  const after = coordinatedOrder(CLIENT, half, all, 3).slice(0, 3);
  set.placeSubset({ rank: half.indexOf(CLIENT), clients: half.length, registered: true, ids: half });
  await turn();
  for (const anchor of set.active()) if (anchor.state !== 'READY') anchor.drive('READY');
  await turn();
  t.same(keysWithAnchors(), [...after].sort(), `half the clients gone: its share among ${half.length}, make before break done`);
});

t.test('coordinated: when etcd does not tell the place in time, the subset starts from the rendezvous order', async (t) => {
  const fakes = fakeAnchors({ startState: 'READY' });
  const set = new AnchorSet<FakeAnchor>(fakes.factory, { state: () => {}, eligible: () => {} }, { drainTimeoutMillis: 0, subset: { size: 3, mode: 'coordinated', clientId: CLIENT } });
  set.apply(entries(all));
  set.placeSubset(undefined);
  t.same([...new Set([...set.active()].map((a) => a.key))].sort(), rendezvousOrder(CLIENT, all).slice(0, 3).sort());
  t.equal(set.subsetReport()!.coordination, undefined, 'no place is reported');
});
