// PeakEwma: a slower call sets the estimate at once; faster ones pull it down by the
// time they cover (τ = 2 s); an anchor with no calls decays towards 0, so a backend
// that recovered is tried again; an unmeasured one gets one call at a time.
import t from 'tap';
import { PEAK_EWMA_DECAY_MILLIS, PeakEwma } from '../lib/anchors/peak-ewma.js';

const TAU = PEAK_EWMA_DECAY_MILLIS;

t.test('the first call sets the estimate; a slower one is taken at once (the peak)', async (t) => {
  const e = new PeakEwma();
  t.notOk(e.measured);
  t.equal(e.estimate(0), 0);
  e.observe(5, 1000);
  t.ok(e.measured);
  t.equal(e.estimate(1000), 5);
  e.observe(50, 1001);
  t.equal(e.estimate(1001), 50, 'one slow call is enough');
});

t.test('faster calls pull the estimate down by the time they cover, not by their number', async (t) => {
  const many = new PeakEwma();
  const few = new PeakEwma();
  many.observe(50, 0);
  few.observe(50, 0);
  for (let at = 1; at <= TAU; at += 1) many.observe(5, at); // 10,000 calls over τ
  few.observe(5, TAU); // one call after τ
  const expected = 5 + 45 * Math.exp(-1);
  t.ok(Math.abs(many.estimate(TAU) - expected) < 0.01, `many calls over τ: ${many.estimate(TAU).toFixed(2)} ≈ ${expected.toFixed(2)}`);
  t.ok(Math.abs(few.estimate(TAU) - expected) < 0.01, `one call after τ: ${few.estimate(TAU).toFixed(2)} ≈ ${expected.toFixed(2)}`);
});

t.test('without calls the estimate decays towards 0: a stale penalty ends', async (t) => {
  const e = new PeakEwma();
  e.observe(50, 0);
  t.ok(Math.abs(e.estimate(TAU * Math.log(10)) - 5) < 1e-9, 'from 50 ms to 5 ms in τ·ln 10 ≈ 4.6 s');
  e.observe(5, TAU * Math.log(10));
  t.ok(e.estimate(TAU * Math.log(10)) <= 5 + 1e-9, 'a recovered backend measured again stays at its new speed');
});

t.test('a failed call counts as at least twice the estimate', async (t) => {
  const e = new PeakEwma();
  e.observe(10, 0);
  e.observe(1, 0, true);
  t.equal(e.estimate(0), 20, 'a fast failure doubles the estimate');
  e.observe(100, 0, true);
  t.equal(e.estimate(0), 100, 'a slow failure counts its own time');
});

t.test('cost: estimate × (streams + 1); unmeasured: free while idle, a large penalty while busy', async (t) => {
  const fresh = new PeakEwma();
  t.equal(fresh.cost(0, 0), 0, 'a new anchor with nothing in flight is tried');
  t.ok(fresh.cost(1, 0) > 100_000, 'with its first call in flight it waits for that call to speak');
  const e = new PeakEwma();
  e.observe(5, 0);
  t.equal(e.cost(0, 0), 5);
  t.equal(e.cost(3, 0), 20);
});
