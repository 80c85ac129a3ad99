// Issue 12: a backend's health flips under load, with health checks on in the pool and
// the etcd:/// channel (three-path-rig.ts). b2 reports NOT_SERVING, then SERVING again;
// per path the figure is the time from each flip to the last call b2 took (out of
// rotation) and to the first call it took again (back), with 0 failed calls.
import { check, sleep, type FaultScenario } from './fault.js';
import type { PathTally } from './three-path-load.js';
import { runThreePaths } from './three-path-rig.js';

/** The flip → rotation bar the issue sets, on loopback. */
const FLIP_BAR_MILLIS = 1000;

/** Last start of a call b2 answered after `from`, as a delay from `from` (0: none after it). */
function lastAfter(tally: PathTally, server: string, from: number, until: number): number {
  let last = from;
  for (const { at, server: s } of tally.served) if (s === server && at >= from && at < until) last = Math.max(last, at);
  return last - from;
}

/** First start of a call b2 answered after `from`, as a delay (undefined: none). */
function firstAfter(tally: PathTally, server: string, from: number): number | undefined {
  let first: number | undefined;
  for (const { at, server: s } of tally.served) if (s === server && at >= from) first = Math.min(first ?? Infinity, at);
  return first === undefined ? undefined : first - from;
}

export const healthFlipScenario: FaultScenario = {
  id: 'health-flip',
  title: 'health checks on: a backend flips to NOT_SERVING and back under load; out of and back in rotation within 1 s, 0 failed calls',
  async run(context) {
    const outMillis = context.short ? 1500 : 3000;
    const afterMillis = context.short ? 1500 : 3000;
    const result = await runThreePaths(context, { health: true }, async (setup) => {
      const b2 = setup.backends[1]!;
      const flippedAt = performance.now();
      await b2.setHealth('NOT_SERVING');
      await sleep(outMillis);
      const backAt = performance.now();
      await b2.setHealth('SERVING');
      await sleep(afterMillis);
      const rows = setup.load.tallies.map((t) => ({ path: t.path, out: lastAfter(t, 'b2', flippedAt, backAt), back: firstAfter(t, 'b2', backAt), during: t.served.filter((c) => c.server === 'b2' && c.at >= flippedAt + FLIP_BAR_MILLIS && c.at < backAt).length }));
      const ms = (v: number | undefined): string => (v === undefined ? 'never' : `${Math.round(v)} ms`);
      return {
        figure: rows.map((r) => `${r.path}: NOT_SERVING → last call on b2 ${ms(r.out)}, SERVING → first call ${ms(r.back)}`).join('; '),
        checks: rows.flatMap((r) => [
          check(`${r.path}: NOT_SERVING → out of rotation ≤ ${FLIP_BAR_MILLIS} ms`, r.out <= FLIP_BAR_MILLIS && r.during === 0, `last call on b2 ${ms(r.out)} after the flip; ${r.during} calls on it later while NOT_SERVING`),
          check(`${r.path}: SERVING → back in rotation ≤ ${FLIP_BAR_MILLIS} ms`, r.back !== undefined && r.back <= FLIP_BAR_MILLIS, `first call on b2 ${ms(r.back)} after it reported SERVING`),
        ]),
        settings: { outMillis, afterMillis },
      };
    });
    return { id: this.id, title: this.title, ...result };
  },
};
