// Behind an L4 load balancer: the fault suite's HAProxy runs (scripts/faults/l4-refresh.ts)
// as a bench table. HAProxy (TCP mode, balance roundrobin) fronts 2 echo backends, then 4,
// registered as one address with 8 anchors; each row is one second after the new backends
// joined, with each backend's share of the calls (counted by the backends), once with
// refresh off and once with anchorMaxAgeMillis on. The bar is the issue's: with refresh
// on, from one max age (+15%) after they joined, the busiest backend serves ≤ 1.5× the
// least busy.
//
//   npm run bench -- --only l4-refresh [--quick]
import { L4_MAX_AGE_MILLIS, measureL4Shares, settledShares, type L4Run } from '../faults/l4-refresh.js';
import { summarize, type Scenario, type ScenarioRow } from './scenario.js';

function rows(run: L4Run, label: string): ScenarioRow[] {
  return run.windows.map((w) => {
    const total = Math.max(1, w.calls.reduce((a, b) => a + b, 0));
    const values = Object.fromEntries(w.calls.map((n, i) => [`p${i + 1}`, summarize([(n / total) * 100])]));
    return { contender: `${label}, ${(w.endsAtMillis / 1000).toFixed(1)} s`, values: { ...values, calls: summarize([total]) } };
  });
}

export const l4RefreshScenario: Scenario = {
  id: 'l4-refresh',
  title: 'Behind HAProxy (TCP, roundrobin): shares per backend after 2 more join, refresh off and on',
  async run(context) {
    const short = context.quick;
    const maxAgeMillis = short ? L4_MAX_AGE_MILLIS.short : L4_MAX_AGE_MILLIS.full;
    const off = await measureL4Shares({ short }, 0);
    const on = await measureL4Shares({ short }, maxAgeMillis);
    const { calls: after, spread } = settledShares(on, maxAgeMillis);
    const offEnd = off.windows.at(-1)!.calls;
    return {
      id: 'l4-refresh',
      title: this.title,
      settings: { anchors: 8, backends: '2, then 4 (HAProxy runtime API: enable server)', maxAgeMillis, jitter: '±15%', callers: 16, windowMillis: 1000 },
      metrics: [
        { name: 'p1', unit: '% of calls', higherIsBetter: false },
        { name: 'p2', unit: '% of calls', higherIsBetter: false },
        { name: 'p3', unit: '% of calls', higherIsBetter: true },
        { name: 'p4', unit: '% of calls', higherIsBetter: true },
        { name: 'calls', unit: 'calls in the second', higherIsBetter: true },
      ],
      primary: 'p3',
      groups: [
        { name: 'refresh off', rows: rows(off, 'off') },
        { name: `refresh on (anchorMaxAgeMillis ${maxAgeMillis})`, rows: rows(on, 'on') },
      ],
      bars: [
        { label: 'refresh on: busiest backend <= 1.5x the least busy from one max age on', pass: after.some((n) => n > 0) && spread <= 1.5, detail: `${after.join('/')} calls = ${spread.toFixed(2)}x` },
        { label: '0 failed calls, refresh off and on', pass: off.failed === 0 && on.failed === 0, detail: `off ${off.failed} of ${off.calls}, on ${on.failed} of ${on.calls}` },
      ],
      notes: [
        `Refresh off: the two backends that joined got ${offEnd[2]! + offEnd[3]!} of ${offEnd.reduce((a, b) => a + b, 0)} calls in the last second: every connection stays where it landed.`,
        `Refresh on: ${on.refreshes} refreshes during the run; each replacement is a new TCP connection, which HAProxy's round robin hands to the next server.`,
      ],
    };
  },
};
