// Issue 12: passive outlier ejection under load. b2 fails every call (UNAVAILABLE; the
// request 'unavailable:b2' fails on b2 only) while b1 and b3 answer, with outlier
// ejection on in the pool and the etcd:/// channel (three-path-rig.ts). Every failure is
// b2's by construction; the figure is b2's share of the calls on each path (a third
// without ejection) and, for the pool, its ejections and the calls that started on b2
// while it was ejected (every failed call is one on b2).
import type { PathTally } from './three-path-load.js';
import { check, sleep, type FaultScenario } from './fault.js';
import { failedCount } from './three-path-load.js';
import { keyOf, runThreePaths } from './three-path-rig.js';

/** b2's share of the calls (failed ones included) on a path may not exceed this with ejection on. */
const SHARE_BAR = 0.05;

export const ejectionScenario: FaultScenario = {
  id: 'ejection',
  title: 'outlier ejection on: a backend fails every call under load; it is ejected on every path, its share falls from a third to under 5%',
  async run(context) {
    const runMillis = context.short ? 3000 : 8000;
    const outlierDetection = { consecutiveFailures: 5, intervalMillis: 500, baseEjectionTimeMillis: 2000, maxEjectionTimeMillis: 10_000 };
    const result = await runThreePaths(
      context,
      { outlierDetection, request: 'unavailable:b2' },
      async (setup) => {
        await sleep(runMillis);
        const windows = setup.ejections.filter((w) => w.key === keyOf(1));
        const share = (t: PathTally): number => {
          const onB2 = t.served.filter((c) => c.server === 'b2').length + failedCount(t);
          return t.calls === 0 ? 0 : onB2 / t.calls;
        };
        const pool = setup.load.tallies.filter((t) => t.path !== 'etcd:///');
        // A lease on b2 while it was ejected would be a failed call that started inside a window.
        const inWindow = pool.reduce((n, t) => n + t.failedAt.filter((at) => windows.some((w) => at > w.from && at < (w.until ?? Infinity))).length, 0);
        const rows = setup.load.tallies.map((t) => `${t.path}: b2 ${(share(t) * 100).toFixed(2)}% of ${t.calls} calls, ${failedCount(t)} failed (all b2's, UNAVAILABLE: ${t.failed.get('UNAVAILABLE') ?? 0})`);
        return {
          figure: `${rows.join('; ')}; pool ejected b2 ${windows.length} time(s) (${windows.map((w) => `${w.times}.: ${w.until === undefined ? 'still ejected' : `${Math.round(w.until - w.from)} ms`}`).join(', ')}), ${inWindow} calls started on it while ejected`,
          checks: [
            ...setup.load.tallies.map((t) => check(`${t.path}: b2's share ≤ ${SHARE_BAR * 100}% (a third without ejection)`, share(t) <= SHARE_BAR, `${(share(t) * 100).toFixed(2)}%`)),
            ...setup.load.tallies.map((t) => check(`${t.path}: the only failures are b2's UNAVAILABLE`, failedCount(t) === (t.failed.get('UNAVAILABLE') ?? 0), [...t.failed].map(([c, n]) => `${n} ${c}`).join(', ') || 'none')),
            check('the pool ejected b2, and gave no lease on it while ejected', windows.length > 0 && inWindow === 0, `${windows.length} ejection(s), ${inWindow} calls started on b2 inside them`),
          ],
          settings: { runMillis, ...outlierDetection },
        };
      },
      true,
    );
    return { id: this.id, title: this.title, ...result };
  },
};
