// Rendezvous subsetting, the pure part: each client ranks keys by a hash of (its id, the
// key) and takes the best; keys spread evenly over many clients; keys that come or go move
// only the subsets they enter or leave; a failed key is kept but does not count; a key
// leaving stays until its replacement serves.
import t from 'tap';
import { chooseSubset, keepLeaving, rendezvousOrder, type SubsetStanding } from '../lib/anchors/subset.js';

const keys = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `svc/k${i + from}`);
const subsetOf = (client: string, all: string[], size: number) => chooseSubset(rendezvousOrder(client, all), size, () => 'unknown');

t.test('the order is a function of (client, keys): the same each time, different for another client', async (t) => {
  const all = keys(50);
  t.same(rendezvousOrder('c1', all), rendezvousOrder('c1', [...all].reverse()), 'the input order does not matter');
  t.notSame(rendezvousOrder('c1', all).slice(0, 10), rendezvousOrder('c2', all).slice(0, 10), 'another client, another subset');
  t.same(subsetOf('c1', keys(3), 10).sort(), keys(3).sort(), 'fewer keys than the size: all of them');
});

t.test('1,000 clients, 100 keys, 10 each: every key is in about 100 subsets', async (t) => {
  const all = keys(100);
  const counts = new Map<string, number>(all.map((k) => [k, 0]));
  for (let c = 0; c < 1000; c++) for (const key of subsetOf(`client-${c}`, all, 10)) counts.set(key, counts.get(key)! + 1);
  const values = [...counts.values()];
  const [min, max] = [Math.min(...values), Math.max(...values)];
  // Binomial(1000, 0.1): σ ≈ 9.5; over 100 keys the extremes stay within about ±3.5σ.
  t.ok(min >= 65 && max <= 135, `per key: min ${min}, max ${max} subsets (mean 100)`);
});

t.test('keys that come or go move only the subsets they enter or leave', async (t) => {
  const all = keys(100);
  const removed = new Set(all.slice(0, 10));
  const fewer = all.filter((k) => !removed.has(k));
  const more = [...all, ...keys(10, 100)];
  let moved = 0;
  for (let c = 0; c < 200; c++) {
    const before = subsetOf(`client-${c}`, all, 10);
    const afterRemoval = new Set(subsetOf(`client-${c}`, fewer, 10));
    const lost = before.filter((k) => !afterRemoval.has(k));
    if (!lost.every((k) => removed.has(k))) t.fail(`client-${c} lost a key that stayed`);
    moved += lost.length;
    const afterAdding = subsetOf(`client-${c}`, more, 10);
    const joined = afterAdding.filter((k) => !before.includes(k));
    if (!joined.every((k) => !all.includes(k))) t.fail(`client-${c} took an old key when new ones came`);
  }
  t.ok(moved > 0 && moved <= 0.2 * 200 * 10, `removing 10% of the keys moved ${moved} of 2,000 subset places (the removed keys' own)`);
});

t.test('a failed key stays in the subset but does not count: the subset widens by one', async (t) => {
  const order = ['a', 'b', 'c', 'd', 'e'];
  const standing = (failed: string[]) => (key: string): SubsetStanding => (failed.includes(key) ? 'failed' : 'serving');
  t.same(chooseSubset(order, 3, standing([])), ['a', 'b', 'c']);
  t.same(chooseSubset(order, 3, standing(['b'])), ['a', 'b', 'c', 'd'], 'b failed: d joins, b stays (its anchors watch for its return)');
  t.same(chooseSubset(order, 2, standing(['a', 'b', 'c', 'd', 'e'])), ['a', 'b', 'c', 'd'], 'all failed: twice the size, no more');
});

t.test('make before break: a key dropped stays while it serves and its replacement does not yet', async (t) => {
  const order = ['new', 'a', 'b', 'c'];
  const chosen = ['new', 'a', 'b'];
  const current = new Set(['a', 'b', 'c']);
  const connecting = (key: string): SubsetStanding => (key === 'new' ? 'unknown' : 'serving');
  t.same(keepLeaving(chosen, current, order, 3, connecting), ['new', 'a', 'b', 'c'], 'c stays while new connects');
  t.same(keepLeaving(chosen, current, order, 3, () => 'serving'), ['new', 'a', 'b'], 'new serves: c goes');
});
