import t from 'tap';
import fc from 'fast-check';
import { buildSchedule } from '../lib/anchors/schedule.js';
import { ScheduleCursor } from '../lib/anchors/schedule-cursor.js';

const entry = (key: string, n: number) => ({ key, anchors: Array.from({ length: n }, (_, i) => `${key}${i}`) });
const longestRun = (keys: string[]) => {
  let best = 0;
  let run = 0;
  keys.forEach((k, i) => {
    run = i > 0 && keys[i - 1] === k ? run + 1 : 1;
    best = Math.max(best, run);
  });
  return best;
};

t.test('a(2), b(1): a b a, so a runs at most twice, also across cycles', async (t) => {
  const cycle = buildSchedule([entry('a', 2), entry('b', 1)]);
  t.same(cycle, ['a0', 'b0', 'a1']);
  t.equal(longestRun([...cycle, ...cycle].map((s) => s[0]!)), 2);
});

t.test('entries of equal weight do not bunch up: a(4), b(1), c(1)', async (t) => {
  const cycle = buildSchedule([entry('a', 4), entry('b', 1), entry('c', 1)]);
  t.equal(longestRun([...cycle, ...cycle].map((s) => s[0]!)), 2);
});

t.test('equal weights alternate entries', async (t) => {
  t.same(buildSchedule([entry('a', 2), entry('b', 2), entry('c', 2)]), ['a0', 'b0', 'c0', 'a1', 'b1', 'c1']);
});

t.test('property: each entry appears exactly N times, and runs stay as short as the weights allow', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 6 }), (weights) => {
      const entries = weights.map((n, i) => entry(String.fromCharCode(97 + i), n));
      const cycle = buildSchedule(entries);
      const keys = cycle.map((slot) => slot[0]!);
      for (const e of entries) if (keys.filter((k) => k === e.key).length !== e.anchors.length) return false;
      if (entries.length === 1) return true;
      // Over two cycles, the heaviest entry runs at most ceil(max / others) + 1 in a row
      // (its gaps, shared evenly, plus one across the cycle boundary).
      const total = weights.reduce((a, b) => a + b, 0);
      const max = Math.max(...weights);
      const bound = Math.ceil(max / (total - max)) + 1;
      return longestRun([...keys, ...keys]) <= bound;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

class Slot {
  constructor(
    readonly name: string,
    public eligible = true,
    public streams = 0,
  ) {}
  /** The key is the name up to its index: a0 and a1 are anchors of key a. */
  get key(): string {
    return this.name.replace(/[0-9]+$/, '');
  }
}

t.test('the picker cycles in schedule order and skips ineligible anchors', async (t) => {
  const a0 = new Slot('a0');
  const b0 = new Slot('b0');
  const a1 = new Slot('a1');
  const picker = new ScheduleCursor<Slot>();
  picker.setSchedule([a0, b0, a1]);
  t.equal(picker.eligibleSlots, 3);
  t.same(Array.from({ length: 6 }, () => picker.pick()?.name), ['a0', 'b0', 'a1', 'a0', 'b0', 'a1']);
  b0.eligible = false;
  picker.eligibilityChanged(false);
  t.same(Array.from({ length: 4 }, () => picker.pick()?.name), ['a0', 'a1', 'a0', 'a1']);
  a0.eligible = false;
  a1.eligible = false;
  picker.eligibilityChanged(false);
  picker.eligibilityChanged(false);
  t.equal(picker.pick(), undefined, 'nothing eligible, nothing picked');
  picker.setSchedule([]);
  t.equal(picker.pick(), undefined, 'an empty schedule picks nothing');
});

/** A seeded random source (mulberry32), so the draws are the same on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('least-loaded: of two distinct eligible anchors drawn, the one with fewer leases wins', async (t) => {
  const busy = new Slot('busy', true, 5);
  const idle = new Slot('idle', true, 0);
  const picker = new ScheduleCursor<Slot>();
  picker.setSchedule([busy, idle]);
  const random = seeded(1);
  const picks = Array.from({ length: 1000 }, () => picker.pickLeastLoaded(random)!.name);
  // The two draws are distinct slots: busy always meets idle, and loses.
  t.equal(picks.filter((n) => n === 'busy').length, 0, 'busy picked 0 of 1000 times');
  idle.streams = 5;
  const even = Array.from({ length: 1000 }, () => picker.pickLeastLoaded(random)!.name).filter((n) => n === 'busy').length;
  t.ok(even > 420 && even < 580, `equal leases: ${even} of 1000, about half`);
  const three = [new Slot('x', true, 3), new Slot('y', true, 1), new Slot('z', true, 2)];
  picker.setSchedule(three);
  const wins = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const name = picker.pickLeastLoaded(random)!.name;
    wins.set(name, (wins.get(name) ?? 0) + 1);
  }
  // y (least) wins both pairs it is drawn in (2 of 3 pairs), z wins x-z, x never wins.
  t.equal(wins.get('x') ?? 0, 0, 'the busiest of three never wins a pair');
  t.ok(Math.abs((wins.get('y') ?? 0) / 3000 - 2 / 3) < 0.04, `the least busy wins its two pairs of three: ${wins.get('y')} of 3000`);
});

t.test('least-loaded: with even load a key is drawn in proportion to its anchors (a: 3, b: 1)', async (t) => {
  const slots = [new Slot('a'), new Slot('a'), new Slot('a'), new Slot('b')];
  const picker = new ScheduleCursor<Slot>();
  picker.setSchedule(slots);
  const random = seeded(7);
  const counts = new Map<string, number>();
  for (let i = 0; i < 8000; i++) {
    const slot = picker.pickLeastLoaded(random)!;
    counts.set(slot.name, (counts.get(slot.name) ?? 0) + 1);
  }
  const share = (counts.get('a') ?? 0) / 8000;
  t.ok(Math.abs(share - 0.75) < 0.02, `a took ${(share * 100).toFixed(1)}% (its N is 3 of 4)`);
});

t.test('least-loaded: never an ineligible anchor; none eligible → undefined; few eligible → found by the scan', async (t) => {
  const slots = Array.from({ length: 50 }, (_, i) => new Slot(`s${i}`, i === 37, 0));
  const picker = new ScheduleCursor<Slot>();
  picker.setSchedule(slots);
  const random = seeded(3);
  t.same(new Set(Array.from({ length: 200 }, () => picker.pickLeastLoaded(random)!.name)), new Set(['s37']), 'the only eligible one, every time');
  slots[37]!.eligible = false;
  picker.eligibilityChanged(false);
  t.equal(picker.pickLeastLoaded(random), undefined);
  slots[3]!.eligible = true;
  slots[40]!.eligible = true;
  picker.eligibilityChanged(true);
  picker.eligibilityChanged(true);
  const seen = new Set(Array.from({ length: 400 }, () => picker.pickLeastLoaded(random)!.name));
  t.same(seen, new Set(['s3', 's40']), 'two of 50 eligible: both are picked, nothing else');
});
