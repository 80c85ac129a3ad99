// The coordinated assignment, the pure part: every client computes the fleet's subsets
// from the same ids and keys; each client gets `size` distinct keys, every key is in
// ⌊C·S/K⌋ or ⌈C·S/K⌉ subsets, and keys or clients that come or go move about as few
// places as rendezvous does.
import t from 'tap';
import { assignSubsets, coordinatedOrder } from '../lib/anchors/coordinated-assignment.js';
import { rendezvousOrder } from '../lib/anchors/subset.js';

const keys = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `svc/k${i + from}`);
/** Ids that sort in no particular relation to their number (as hostnames and pod names do). */
const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `client-${((i + from) * 2654435761) % 2 ** 32}`);

function counts(assignment: ReadonlyMap<string, readonly string[]>, all: readonly string[]): number[] {
  const byKey = new Map<string, number>(all.map((k) => [k, 0]));
  for (const subset of assignment.values()) for (const key of subset) byKey.set(key, byKey.get(key)! + 1);
  return [...byKey.values()];
}

/** Share of the places (client, key) of `before` held by clients in both that `after` no longer has. */
function moved(before: ReadonlyMap<string, readonly string[]>, after: ReadonlyMap<string, readonly string[]>): number {
  let places = 0;
  let gone = 0;
  for (const [id, subset] of before) {
    const now = after.get(id);
    if (now === undefined) continue;
    places += subset.length;
    gone += subset.filter((key) => !now.includes(key)).length;
  }
  return gone / places;
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

t.test('every client gets `size` distinct keys and every key is in ⌊C·S/K⌋ or ⌈C·S/K⌉ subsets', async (t) => {
  for (const [clients, keyCount, size] of [
    [1000, 100, 10],
    [333, 100, 10],
    [7, 30, 3],
    [20, 10, 2],
    [1, 50, 5],
  ] as const) {
    const all = keys(keyCount);
    const assignment = assignSubsets(ids(clients), all, size);
    const c = counts(assignment, all);
    const whole = [...assignment.values()];
    t.equal(whole.length, clients, `${clients} clients, ${keyCount} keys, size ${size}: a subset for every client`);
    t.ok(
      whole.every((s) => s.length === size && new Set(s).size === size),
      `… each of ${size} distinct keys`,
    );
    const low = Math.floor((clients * size) / keyCount);
    t.ok(Math.min(...c) >= low && Math.max(...c) <= Math.ceil((clients * size) / keyCount), `… ${Math.min(...c)} to ${Math.max(...c)} subsets per key (bounds ${low}..${Math.ceil((clients * size) / keyCount)})`);
  }
});

t.test('small fleets of every shape keep the bounds (the last clients to fill swap when only their own keys have room)', async (t) => {
  let cases = 0;
  let failures = 0;
  const examples: string[] = [];
  for (let size = 1; size <= 6; size++) {
    for (let keyCount = size + 1; keyCount <= 24; keyCount += 1) {
      for (const clients of [2, 3, 5, 8, 13, 21, 34]) {
        const all = keys(keyCount, size * 100);
        const assignment = assignSubsets(ids(clients, keyCount * 1000 + size), all, size);
        const c = counts(assignment, all);
        const ok =
          [...assignment.values()].every((s) => s.length === size && new Set(s).size === size) &&
          Math.min(...c) >= Math.floor((clients * size) / keyCount) &&
          Math.max(...c) <= Math.ceil((clients * size) / keyCount);
        cases += 1;
        if (!ok) {
          failures += 1;
          if (examples.length < 3) examples.push(`C ${clients} K ${keyCount} S ${size}: ${Math.min(...c)}..${Math.max(...c)}`);
        }
      }
    }
  }
  t.equal(failures, 0, `${cases} fleets (C 2–34, K up to 24, S 1–6) within the bounds${examples.length ? `; e.g. ${examples.join(', ')}` : ''}`);
});

t.test('the same lists give the same assignment, whatever their order; fewer keys than the size: all of them', async (t) => {
  const all = keys(40);
  const fleet = ids(50);
  const a = assignSubsets(fleet, all, 4);
  const b = assignSubsets([...fleet].reverse(), [...all].reverse(), 4);
  t.same([...a].sort(), [...b].sort(), 'reversed inputs: the same subsets');
  t.same([...assignSubsets(fleet, keys(3), 10).get(fleet[0]!)!].sort(), keys(3).sort(), '3 keys, size 10: all three');
});

t.test("a client's order: its subset first, then its other keys by its own score (where a failed key's replacement comes from)", async (t) => {
  const all = keys(30);
  const fleet = ids(12);
  const order = coordinatedOrder(fleet[0]!, fleet, all, 4);
  t.same(order.slice(0, 4), assignSubsets(fleet, all, 4).get(fleet[0]!), 'the first four are its subset');
  t.same([...order].sort(), [...all].sort(), 'then every other key, once');
  t.same(coordinatedOrder(fleet[0]!, fleet, all, 4), order, 'the same order each time');
});

t.test('keys or clients that come or go move about as many places as rendezvous (1,000 clients, 100 keys, size 10)', async (t) => {
  const all = keys(100);
  const fleet = ids(1000);
  const grown = [...all, ...keys(10, 100)];
  const shrunk = all.slice(10);
  const base = assignSubsets(fleet, all, 10);
  const rendezvous = (f: readonly string[], k: readonly string[]) => new Map(f.map((id) => [id, rendezvousOrder(id, k).slice(0, 10)]));
  const rBase = rendezvous(fleet, all);
  const added = moved(base, assignSubsets(fleet, grown, 10));
  const removed = moved(base, assignSubsets(fleet, shrunk, 10));
  const rAdded = moved(rBase, rendezvous(fleet, grown));
  const rRemoved = moved(rBase, rendezvous(fleet, shrunk));
  const joined = moved(base, assignSubsets([...fleet, ...ids(100, 1000)], all, 10));
  const left = moved(base, assignSubsets(fleet.slice(100), all, 10));
  t.comment(`places moved: +10 keys ${pct(added)} (rendezvous ${pct(rAdded)}, least possible ${pct(10 / 110)}); −10 keys ${pct(removed)} (rendezvous ${pct(rRemoved)}, least ${pct(0.1)}); +100 clients ${pct(joined)}; −100 clients ${pct(left)}`);
  // The least possible is the new keys' share (10/110) or the removed keys' (10/100); the room each key has shrinks or grows a little besides.
  t.ok(added <= 0.13, `10 keys added: ${pct(added)} of the places moved (≤ 13%)`);
  t.ok(removed <= 0.13, `10 keys removed: ${pct(removed)} (≤ 13%)`);
  t.ok(joined <= 0.05 && left <= 0.05, `100 clients joining or leaving: ${pct(joined)} / ${pct(left)} of the others' places (≤ 5%)`);
});
