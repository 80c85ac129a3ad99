// slowStartFactor(): Envoy's ramp, max(minWeight, (t / window) ^ (1 / aggression)), 1 after the window.
import t from 'tap';
import { DEFAULT_SLOW_START, slowStartFactor } from '../lib/anchors/slow-start.js';

t.test('linear by default, from the floor of 10% to 1 at the end of the window', async (t) => {
  const s = DEFAULT_SLOW_START;
  t.equal(slowStartFactor(0, s), 0.1, 'the floor at the start');
  t.equal(slowStartFactor(1500, s), 0.1, 'still the floor at 5% of the window');
  t.equal(slowStartFactor(15_000, s), 0.5, 'half way: half');
  t.equal(slowStartFactor(29_999, s), 29_999 / 30_000);
  t.equal(slowStartFactor(30_000, s), 1, 'the window over: full');
  t.equal(slowStartFactor(1e9, s), 1);
});

t.test('aggression bends the curve; minWeightPercent 0 starts from nothing', async (t) => {
  const fast = { windowMillis: 10_000, aggression: 2, minWeightPercent: 0 };
  const slow = { windowMillis: 10_000, aggression: 0.5, minWeightPercent: 0 };
  t.equal(slowStartFactor(2500, fast), 0.5, 'aggression 2: (1/4)^(1/2)');
  t.equal(slowStartFactor(5000, slow), 0.25, 'aggression 0.5: (1/2)^2');
  t.equal(slowStartFactor(0, fast), 0);
  t.equal(slowStartFactor(-5, fast), 0, 'a clock step back counts as the start');
});
