// zoneShares(): where calls go by zone, for a caller in zone a. A pure function, so
// every regime is a table row: all local, spill in proportion to what is missing, panic,
// no local zone, nothing healthy; and properties over random fleets.
import t from 'tap';
import fc from 'fast-check';
import { DEFAULT_ZONE_THRESHOLDS, zoneShares, type ZoneLoad } from '../lib/anchors/zone-shares.js';

const zones = (spec: Record<string, [total: number, healthy: number]>): ZoneLoad[] =>
  Object.entries(spec).map(([zone, [total, healthy]]) => ({ zone, total, healthy }));
const rounded = (shares: ReadonlyMap<string, number>) => Object.fromEntries([...shares].map(([zone, share]) => [zone, Math.round(share * 1000) / 1000]));

t.test('the regimes, with the default thresholds (spill below 100%, panic below 50%)', async (t) => {
  const rows: [string, Record<string, [number, number]>, string, Record<string, number>][] = [
    ['all of a serves: every call stays in a', { a: [2, 2], b: [2, 2], c: [2, 2] }, 'local', { a: 1, b: 0, c: 0 }],
    ['one of a\'s two is out: a keeps its healthy half, the rest spills to b and c by their health', { a: [2, 1], b: [2, 2], c: [2, 2] }, 'spill', { a: 0.5, b: 0.25, c: 0.25 }],
    ['the spill follows the other zones\' healthy weight', { a: [4, 3], b: [2, 2], c: [2, 1] }, 'spill', { a: 0.75, b: 0.167, c: 0.083 }],
    ['all of a is out: everything leaves a (panic spreads by health)', { a: [2, 0], b: [2, 2], c: [2, 2] }, 'panic', { a: 0, b: 0.5, c: 0.5 }],
    ['below the panic threshold zones are ignored: shares by health, a included', { a: [10, 4], b: [10, 10], c: [10, 6] }, 'panic', { a: 0.2, b: 0.5, c: 0.3 }],
    ['nothing healthy elsewhere: a keeps everything, however few serve', { a: [4, 1], b: [2, 0] }, 'local', { a: 1, b: 0 }],
    ['no key in a at all: shares by health', { b: [2, 2], c: [2, 1] }, 'no-local', { b: 0.667, c: 0.333 }],
    ['nothing healthy anywhere: no shares', { a: [2, 0], b: [2, 0] }, 'none', { a: 0, b: 0 }],
  ];
  for (const [name, spec, mode, expected] of rows) {
    const result = zoneShares('a', zones(spec), DEFAULT_ZONE_THRESHOLDS);
    t.equal(result.mode, mode, `${name}: mode`);
    t.same(rounded(result.shares), expected, `${name}: shares`);
  }
});

t.test('spillBelowPercent lets the local zone absorb a loss before calls leave it', async (t) => {
  const thresholds = { spillBelowPercent: 75, panicBelowPercent: 25 };
  t.same(rounded(zoneShares('a', zones({ a: [4, 3], b: [4, 4] }), thresholds).shares), { a: 1, b: 0 }, '75% healthy: still all local');
  const half = zoneShares('a', zones({ a: [4, 2], b: [4, 4] }), thresholds);
  t.equal(half.mode, 'spill');
  t.same(rounded(half.shares), { a: 0.667, b: 0.333 }, '50% of 75%: a keeps two thirds');
  t.equal(zoneShares('a', zones({ a: [4, 0], b: [4, 4] }), { spillBelowPercent: 0, panicBelowPercent: 0 }).shares.get('a'), 0, 'thresholds at 0: a zone with nothing healthy still gets nothing');
});

t.test('properties: shares are in [0, 1], sum to 1 when anything is healthy, and never go to a zone with nothing healthy', async (t) => {
  const load = fc.record({ total: fc.integer({ min: 0, max: 20 }), lost: fc.integer({ min: 0, max: 20 }) }).map(({ total, lost }) => ({ total, healthy: Math.max(0, total - lost) }));
  fc.assert(
    fc.property(
      fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), load, { minKeys: 1 }),
      fc.integer({ min: 0, max: 100 }),
      fc.integer({ min: 0, max: 100 }),
      (spec, x, y) => {
        const thresholds = { spillBelowPercent: Math.max(x, y), panicBelowPercent: Math.min(x, y) };
        const loads = Object.entries(spec).map(([zone, l]) => ({ zone, ...l }));
        const { mode, shares } = zoneShares('a', loads, thresholds);
        const sum = [...shares.values()].reduce((s, v) => s + v, 0);
        const anyHealthy = loads.some((l) => l.healthy > 0);
        if (!anyHealthy) return mode === 'none' && sum === 0;
        if (Math.abs(sum - 1) > 1e-9) return false;
        return loads.every((l) => shares.get(l.zone)! >= 0 && shares.get(l.zone)! <= 1 && (l.healthy > 0 || shares.get(l.zone) === 0));
      },
    ),
    { numRuns: 2000 },
  );
  t.pass('2000 random fleets');
});
