import t from 'tap';
import fc from 'fast-check';
import { buildSchedule } from '../lib/schedule.js';
import { Picker } from '../lib/picker.js';

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
  ) {}
}

t.test('the picker cycles in schedule order and skips ineligible anchors', async (t) => {
  const a0 = new Slot('a0');
  const b0 = new Slot('b0');
  const a1 = new Slot('a1');
  const picker = new Picker<Slot>();
  picker.setSchedule([a0, b0, a1]);
  t.equal(picker.eligibleCount, 3);
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
