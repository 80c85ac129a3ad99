// OutlierDetector, the pure logic of passive ejection: consecutive failures, the failure
// percentage over an interval, ejection time growing with each ejection up to its cap,
// the multiplier coming down after healthy intervals, and the cap on how many entries
// may be out at once (one always may).
import t from 'tap';
import { DEFAULT_OUTLIER_DETECTION, OutlierDetector, type OutlierDetectionSettings } from '../lib/anchors/outlier-detector.js';

const settings = (over: Partial<OutlierDetectionSettings> = {}): OutlierDetectionSettings => ({ ...DEFAULT_OUTLIER_DETECTION, maxEjectionPercent: 100, ...over });

function detector(keys: string[], over: Partial<OutlierDetectionSettings> = {}): OutlierDetector {
  const d = new OutlierDetector(settings(over));
  d.setKeys(keys);
  return d;
}

t.test('5 failures in a row eject; a success in between starts the count again', async (t) => {
  const d = detector(['a', 'b']);
  for (let i = 0; i < 4; i++) t.equal(d.record('a', true, 0), undefined, `failure ${i + 1}: not yet`);
  t.equal(d.record('a', false, 0), undefined, 'a success');
  for (let i = 0; i < 4; i++) d.record('a', true, 0);
  t.notOk(d.isEjected('a'), '4 after the success: still in');
  t.match(d.record('a', true, 1000), { key: 'a', reason: 'consecutive-failures', times: 1, until: 31_000 }, 'the 5th in a row ejects for the base time');
  t.ok(d.isEjected('a'));
  t.notOk(d.isEjected('b'), 'the other entry is untouched');
});

t.test('the ejection ends at the first tick after its time; the next one lasts longer, up to the maximum', async (t) => {
  const d = detector(['a', 'b'], { baseEjectionTimeMillis: 1000, maxEjectionTimeMillis: 2500 });
  const failFive = (now: number) => {
    let last;
    for (let i = 0; i < 5; i++) last = d.record('a', true, now);
    return last;
  };
  t.match(failFive(0), { until: 1000, times: 1 });
  t.same(d.tick(999).returned, [], 'not before its time');
  t.same(d.tick(1000).returned, ['a'], 'back at the first tick after it');
  t.match(failFive(2000), { until: 4000, times: 2 }, 'twice the base the second time');
  d.tick(4000);
  t.match(failFive(5000), { until: 7500, times: 3 }, 'then capped at maxEjectionTimeMillis (2500)');
});

t.test('healthy intervals bring the multiplier back down', async (t) => {
  const d = detector(['a', 'b'], { baseEjectionTimeMillis: 1000 });
  for (let i = 0; i < 5; i++) d.record('a', true, 0);
  d.tick(1000); // back
  d.record('a', false, 1500);
  d.tick(2000); // a whole interval in rotation: times 1 -> 0
  let ejection;
  for (let i = 0; i < 5; i++) ejection = d.record('a', true, 3000);
  t.match(ejection, { times: 1, until: 4000 }, 'the base time again, not twice it');
});

t.test('failure percentage: at least requestVolume calls in the interval and that share failed', async (t) => {
  const d = detector(['a', 'b', 'c'], { consecutiveFailures: 0, failurePercentage: 50, requestVolume: 10 });
  for (let i = 0; i < 10; i++) d.record('a', i % 2 === 0, 0); // 50% of 10
  for (let i = 0; i < 9; i++) d.record('b', true, 0); // 100%, but below the volume
  for (let i = 0; i < 10; i++) d.record('c', i < 4, 0); // 40%
  const { ejected } = d.tick(10_000);
  t.same(ejected.map((e) => [e.key, e.reason]), [['a', 'failure-percentage']], 'only a: b had too few calls, c too few failures');
  t.same(d.tick(20_000).ejected, [], 'a new interval starts from zero');
});

t.test('maxEjectionPercent caps how many are out at once, but one may always be ejected', async (t) => {
  const d = detector(['a', 'b', 'c', 'd'], { maxEjectionPercent: 10 });
  const failFive = (key: string) => {
    let last;
    for (let i = 0; i < 5; i++) last = d.record(key, true, 0);
    return last;
  };
  t.ok(failFive('a'), 'the first ejection is allowed although 1 of 4 is 25% > 10%');
  t.equal(failFive('b'), undefined, 'a second one would make 50%: refused');
  t.equal(d.ejectedCount(), 1);
  const half = detector(['a', 'b', 'c', 'd'], { maxEjectionPercent: 50 });
  for (const key of ['a', 'b', 'c']) for (let i = 0; i < 5; i++) half.record(key, true, 0);
  t.equal(half.ejectedCount(), 2, 'at 50%: two of four');
});

t.test('setKeys forgets removed entries and starts new ones clean; unknown keys are ignored', async (t) => {
  const d = detector(['a']);
  for (let i = 0; i < 5; i++) d.record('a', true, 0);
  d.setKeys(['b']);
  t.notOk(d.isEjected('a'), 'a is gone');
  t.equal(d.record('a', true, 0), undefined, 'an outcome for a key no longer known does nothing');
  t.equal(d.ejectedCount(), 0, 'nothing ejected');
});
