// Issue 22, zone-aware routing: 6 grpc-js Echo backends in 3 zones (a1 a2 in a, b1 b2 in
// b, c1 c2 in c), each registered in etcd with 2 anchors and its zone in the value
// ({"addr":…,"anchors":2,"zone":"a"}), and a caller in zone a with health checks on, on
// each path in turn: the lease pool (pool.client() with `zone: 'a', healthCheck: {}`) and a
// plain grpc-js client on etcd:/// (`{"anchored_round_robin":{"zone":"a","healthCheck":{}}}`),
// each under 16 closed-loop callers. The paths run one after the other on the same etcd
// and backends, so that the backends' own counts (Backend.stats().calls, counted when a
// call starts on the server) are one path's calls; they are read every 250 ms.
//
// Phases, each a run of 250 ms windows that start at the phase's flip:
//   1. every backend SERVING: the share of the calls in zone a;
//   2. a2 reports NOT_SERVING: zone a should keep a1's share (what a1 took in phase 1,
//      about half: the defaults spillBelowPercent 100 / panicBelowPercent 50 keep
//      h / 100 = 2 of 4 anchors = 50% local), the missing share spilling to b and c by
//      their anchors in rotation (4 each: half each);
//   3. a1 too: nothing of zone a is in rotation, so every call leaves it;
//   4. both SERVING again: calls come back to zone a (the time is reported, no bar).
//
// Tolerances. Which zone a call goes to is drawn at random by the shares (zone-cursors.ts,
// Math.random), so a share measured over N calls has a binomial spread
// σ = √(p(1−p)/N). A 250 ms window holds about 200 calls on 2 busy cores (the figure
// prints the smallest), σ ≈ 3.5 points at p = 50%, so no fixed band both follows the
// issue's words and stays clear of the noise. A window is "in the band" when each zone is
// within ±max(7 points, 4σ at that window's N and the zone's expected share) of it: 7
// points is the routing error this accepts, 4σ keeps a correct split from missing it by
// chance. 4σ and not 3σ because a run of 4 windows is 12 tests: at 3σ a correct split
// fails one about 3% of the time (CI saw it: one window at 3.0σ, 750 ms after the flip,
// long after a2's last call), at 4σ under 0.1%. The shares have settled when 4 windows in a
// row (1 s) are in the band; the time to settle is the end of the first of those windows,
// measured from the flip (conservative: the shares were in the band by then, within one
// window of 250 ms). Over the phase from 1 s after the flip on (N ≈ 1 000 calls or more)
// each zone must be within ±max(5 points, 3σ), and a2 takes no call then. Zone a's
// expected share with a2 out is what a1 took with both serving (measured), b's and c's
// the rest split by their anchors in rotation.
import * as grpc from '@grpc/grpc-js';
import type { AnchorPool } from '../../lib/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { EchoClient } from '../../testkit/echo/echo-service.js';
import type { EtcdCluster } from '../../etcd-dev/etcd-dev.mjs';
import { check, sleep, type FaultCheck, type FaultContext, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';
import { ClosedLoop, type CallRecord } from './closed-loop.js';

const PREFIX = 'zone-routing/';
const LOCAL_ZONE = 'a';
const ZONES = ['a', 'b', 'c'] as const;
type Zone = (typeof ZONES)[number];
const LAYOUT: readonly { readonly name: string; readonly zone: Zone }[] = [
  { name: 'a1', zone: 'a' },
  { name: 'a2', zone: 'a' },
  { name: 'b1', zone: 'b' },
  { name: 'b2', zone: 'b' },
  { name: 'c1', zone: 'c' },
  { name: 'c2', zone: 'c' },
];
const ANCHORS = 2;
const SERVER_DELAY_MILLIS = 5;
const CALLERS_PER_PATH = 16;
const CALL_DEADLINE_MILLIS = 5000;
const WINDOW_MILLIS = 250;
/** The issue's bars. */
const LOCAL_BAR_PERCENT = 99;
const SETTLE_BAR_MILLIS = 1000;
/** See the header: one window's band, and the band of a phase's steady part, each widened to 3σ of its calls when that is wider. */
const WINDOW_BAND_POINTS = 7;
const STEADY_BAND_POINTS = 5;
const WINDOW_SIGMAS = 4;
const STEADY_SIGMAS = 3;

/** The band in points around an expected share of `expectedPercent` over `calls` calls: at least `points`, widened to `sigmas` binomial σ. */
function band(points: number, sigmas: number, expectedPercent: number, calls: number): number {
  const p = expectedPercent / 100;
  return Math.max(points, sigmas * 100 * Math.sqrt((p * (1 - p)) / Math.max(calls, 1)));
}
/** Windows in a row in the band that count as settled (1 s). */
const SETTLED_RUN = 4;

type Path = 'pool.client()' | 'etcd:///';
type PhaseName = 'all serve' | 'a2 NOT_SERVING' | 'a1+a2 NOT_SERVING' | 'both SERVING again';

/** Calls each backend counted on its side in one window, in LAYOUT order, with the window's bounds in ms from its phase's flip. */
interface Window {
  readonly from: number;
  readonly to: number;
  readonly counts: readonly number[];
}

interface Shares {
  readonly calls: number;
  /** Percent of the calls per zone and per backend. */
  readonly zone: Record<Zone, number>;
  readonly backend: Record<string, number>;
}

function sharesOf(windows: readonly Window[]): Shares {
  const counts = LAYOUT.map((_, i) => windows.reduce((sum, w) => sum + w.counts[i]!, 0));
  const calls = counts.reduce((a, b) => a + b, 0);
  const pct = (n: number): number => (calls === 0 ? NaN : (100 * n) / calls);
  const zone = Object.fromEntries(ZONES.map((z) => [z, pct(LAYOUT.reduce((sum, b, i) => sum + (b.zone === z ? counts[i]! : 0), 0))])) as Record<Zone, number>;
  const backend = Object.fromEntries(LAYOUT.map((b, i) => [b.name, pct(counts[i]!)]));
  return { calls, zone, backend };
}

interface Phase {
  readonly name: PhaseName;
  /** performance.now() of the sample the phase starts with, taken just before its flip. */
  readonly at: number;
  readonly windows: Window[];
  /** The pool's own view (stats().zones) at the phase's end, pool path only. */
  zonesReport?: string;
}

interface PathRun {
  readonly path: Path;
  readonly phases: Phase[];
  readonly records: CallRecord[];
  readonly examples: string[];
  /** Calls the backends counted between the first and last sample, and the calls this path started in that span. */
  readonly serverCalls: number;
  readonly clientCalls: number;
}

interface Durations {
  readonly warmUp: number;
  readonly serve: number;
  readonly oneOut: number;
  readonly bothOut: number;
  readonly back: number;
}

const DURATIONS: Durations = { warmUp: 1000, serve: 3000, oneOut: 4000, bothOut: 3000, back: 3000 };
const SHORT_DURATIONS: Durations = { warmUp: 500, serve: 1500, oneOut: 2500, bothOut: 2000, back: 2000 };

/** Runs the four phases on one client, reading the backends' call counts every WINDOW_MILLIS. */
async function runPath(context: FaultContext, path: Path, client: grpc.Client, backends: readonly Backend[], durations: Durations, pool?: AnchorPool): Promise<PathRun> {
  const load = new ClosedLoop(client, CALLERS_PER_PATH, CALL_DEADLINE_MILLIS);
  const phases: Phase[] = [];
  let first: number | undefined;
  let last: { at: number; calls: number[] } | undefined;
  let serverCalls = 0;
  const sample = async (): Promise<{ at: number; calls: number[] }> => {
    const at = performance.now();
    const calls = (await Promise.all(backends.map((b) => b.stats()))).map((s) => s.calls);
    return { at, calls };
  };
  const a1 = backends[0]!;
  const a2 = backends[1]!;
  const steps: { name: PhaseName; millis: number; flip: () => Promise<unknown> }[] = [
    { name: 'all serve', millis: durations.serve, flip: async () => undefined },
    { name: 'a2 NOT_SERVING', millis: durations.oneOut, flip: () => a2.setHealth('NOT_SERVING') },
    { name: 'a1+a2 NOT_SERVING', millis: durations.bothOut, flip: () => a1.setHealth('NOT_SERVING') },
    { name: 'both SERVING again', millis: durations.back, flip: () => Promise.all([a1.setHealth('SERVING'), a2.setHealth('SERVING')]) },
  ];
  try {
    await sleep(durations.warmUp);
    last = await sample();
    first = last.at;
    for (const step of steps) {
      const phase: Phase = { name: step.name, at: last.at, windows: [] };
      phases.push(phase);
      await step.flip();
      for (let i = 1; i <= step.millis / WINDOW_MILLIS; i++) {
        await sleep(Math.max(0, phase.at + i * WINDOW_MILLIS - performance.now()));
        const next = await sample();
        const counts = next.calls.map((n, j) => n - last!.calls[j]!);
        serverCalls += counts.reduce((a, b) => a + b, 0);
        phase.windows.push({ from: last.at - phase.at, to: next.at - phase.at, counts });
        last = next;
      }
      if (pool !== undefined) {
        const report = pool.stats().zones;
        phase.zonesReport = report === undefined ? 'no zone report' : `${report.mode}: ${report.zones.map((z) => `${z.zone} ${z.healthy}/${z.total} share ${(100 * z.share).toFixed(0)}%`).join(', ')}`;
      }
      context.log(`${path}: ${step.name}: ${phaseLine(phase)}${phase.zonesReport === undefined ? '' : ` (pool.stats().zones ${phase.zonesReport})`}`);
    }
  } finally {
    await load.stop();
  }
  const clientCalls = load.records.filter((r) => r.at >= first! && r.at < last!.at).length;
  return { path, phases, records: load.records, examples: load.examples, serverCalls, clientCalls };
}

const pct = (v: number): string => (Number.isNaN(v) ? '–' : `${v.toFixed(1)}%`);
const ms = (v: number | undefined): string => (v === undefined ? 'never' : `${Math.round(v)} ms`);

function phaseLine(phase: Phase): string {
  const s = sharesOf(phase.windows);
  return `${s.calls} calls, a ${pct(s.zone.a)} b ${pct(s.zone.b)} c ${pct(s.zone.c)} (${LAYOUT.map((b) => `${b.name} ${pct(s.backend[b.name]!)}`).join(' ')})`;
}

/** The end of the first window (ms from the flip) that starts SETTLED_RUN windows in a row (or all that remain) for which `ok` holds; undefined: none. */
function settledBy(windows: readonly Window[], ok: (w: Window) => boolean): number | undefined {
  for (let k = 0; k < windows.length; k++) {
    const run = windows.slice(k, k + SETTLED_RUN);
    if (run.length > 0 && run.every(ok)) return windows[k]!.to;
  }
  return undefined;
}

/** Client side, precise: ms from `from` to the start of the last call a backend of `zone` answered before `until`. */
function lastCallIn(records: readonly CallRecord[], zone: Zone, from: number, until: number): number | undefined {
  const names = new Set(LAYOUT.filter((b) => b.zone === zone).map((b) => b.name));
  let lastAt: number | undefined;
  for (const r of records) if (r.server !== undefined && names.has(r.server) && r.at >= from && r.at < until) lastAt = Math.max(lastAt ?? -Infinity, r.at);
  return lastAt === undefined ? undefined : lastAt - from;
}

function lastCallOn(records: readonly CallRecord[], server: string, from: number, until: number): number | undefined {
  let lastAt: number | undefined;
  for (const r of records) if (r.server === server && r.at >= from && r.at < until) lastAt = Math.max(lastAt ?? -Infinity, r.at);
  return lastAt === undefined ? undefined : lastAt - from;
}

function firstCallIn(records: readonly CallRecord[], zone: Zone, from: number): number | undefined {
  const names = new Set(LAYOUT.filter((b) => b.zone === zone).map((b) => b.name));
  for (const r of records) if (r.server !== undefined && names.has(r.server) && r.at >= from) return r.at - from;
  return undefined;
}

interface Evaluated {
  readonly checks: FaultCheck[];
  readonly table: string[];
  readonly figure: string;
}

function evaluate(run: PathRun): Evaluated {
  const [serve, oneOut, bothOut, back] = run.phases as [Phase, Phase, Phase, Phase];
  const { path, records } = run;
  const table: string[] = [];
  const row = (phase: Phase, label: string, s: Shares, settle: string, failed: number): void => {
    table.push(`${path.padEnd(14)} | ${label.padEnd(24)} | ${pct(s.zone.a).padStart(6)} | ${pct(s.zone.b).padStart(6)} | ${pct(s.zone.c).padStart(6)} | ${settle.padEnd(44)} | ${String(failed).padStart(6)} | ${String(sharesOf(phase.windows).calls).padStart(6)}`);
  };
  const failedIn = (phase: Phase, next: Phase | undefined): number => {
    const until = next?.at ?? Infinity;
    return records.filter((r) => r.failed !== undefined && r.at >= phase.at && r.at < until).length;
  };
  const allWindows = run.phases.flatMap((p) => p.windows);
  const minWindow = Math.min(...allWindows.filter((w) => w.counts.some((n) => n > 0)).map((w) => w.counts.reduce((a, b) => a + b, 0)));

  // 1. All serve.
  const s1 = sharesOf(serve.windows);
  const minWindowA = Math.min(...serve.windows.map((w) => sharesOf([w]).zone.a));
  row(serve, 'all serve', s1, `(per-window min a ${pct(minWindowA)})`, failedIn(serve, oneOut));

  // 2. a2 out: zone a keeps a1's share (a1's share of all calls in phase 1); the rest spills to b and c by their anchors in rotation.
  const anchorsOf = (zone: Zone): number => LAYOUT.filter((b) => b.zone === zone).length * ANCHORS;
  const keptA = s1.backend['a1']!;
  const expected: Record<Zone, number> = { a: keptA, b: ((100 - keptA) * anchorsOf('b')) / (anchorsOf('b') + anchorsOf('c')), c: ((100 - keptA) * anchorsOf('c')) / (anchorsOf('b') + anchorsOf('c')) };
  const inBand = (s: Shares, points: number, sigmas: number): boolean => ZONES.every((z) => Math.abs(s.zone[z] - expected[z]) <= band(points, sigmas, expected[z], s.calls));
  const settle2 = settledBy(oneOut.windows, (w) => inBand(sharesOf([w]), WINDOW_BAND_POINTS, WINDOW_SIGMAS));
  const steady2 = sharesOf(oneOut.windows.filter((w) => w.from >= SETTLE_BAR_MILLIS));
  const a2Steady = oneOut.windows.filter((w) => w.from >= SETTLE_BAR_MILLIS).reduce((sum, w) => sum + w.counts[1]!, 0);
  const a2Last = lastCallOn(records, 'a2', oneOut.at, bothOut.at);
  const outOfBandAfter = settle2 === undefined ? 0 : oneOut.windows.filter((w) => w.to > settle2 && !inBand(sharesOf([w]), WINDOW_BAND_POINTS, WINDOW_SIGMAS)).length;
  row(oneOut, 'a2 NOT_SERVING', steady2, `in band by ${ms(settle2)}; a2's last call ${ms(a2Last)}`, failedIn(oneOut, bothOut));

  // 3. a1 out too: every call leaves zone a.
  const bothWindowsWithA = bothOut.windows.filter((w) => w.counts[0]! + w.counts[1]! > 0);
  const left3 = bothWindowsWithA.length === 0 ? 0 : bothWindowsWithA[bothWindowsWithA.length - 1]!.to;
  const lastA3 = lastCallIn(records, 'a', bothOut.at, back.at);
  const steady3 = sharesOf(bothOut.windows.filter((w) => w.from >= SETTLE_BAR_MILLIS));
  row(bothOut, 'a1+a2 NOT_SERVING', steady3, `0% in a from ${ms(left3)}; last call in a ${ms(lastA3)}`, failedIn(bothOut, back));

  // 4. Both back: calls return to zone a (reported).
  const settle4 = settledBy(back.windows, (w) => sharesOf([w]).zone.a >= LOCAL_BAR_PERCENT);
  const firstA4 = firstCallIn(records, 'a', back.at);
  const steady4 = sharesOf(back.windows.filter((w) => w.from >= SETTLE_BAR_MILLIS));
  row(back, 'a1+a2 SERVING again', steady4, `≥ ${LOCAL_BAR_PERCENT}% in a by ${ms(settle4)}; first call in a ${ms(firstA4)}`, failedIn(back, undefined));

  const failed = records.filter((r) => r.failed !== undefined);
  const byCode = new Map<string, number>();
  for (const r of failed) byCode.set(r.failed!, (byCode.get(r.failed!) ?? 0) + 1);
  const failures = failed.length === 0 ? '0' : [...byCode].map(([code, n]) => `${n} ${code}`).join(', ');
  const steadyBand = ZONES.map((z) => `${z} ±${band(STEADY_BAND_POINTS, STEADY_SIGMAS, expected[z], steady2.calls).toFixed(1)}`).join(' ');
  table.push(
    `${path.padEnd(14)} | expected with a2 out: a ${pct(expected.a)} (a1's share with all serving) b ${pct(expected.b)} c ${pct(expected.c)}; band per window ±max(${WINDOW_BAND_POINTS} points, ${WINDOW_SIGMAS}σ) (smallest window ${minWindow} calls: a ±${band(WINDOW_BAND_POINTS, WINDOW_SIGMAS, expected.a, minWindow).toFixed(1)}, b ±${band(WINDOW_BAND_POINTS, WINDOW_SIGMAS, expected.b, minWindow).toFixed(1)} points), over the phase from 1 s on (${steady2.calls} calls) ${steadyBand} points; windows out of band after settling: ${outOfBandAfter} of ${oneOut.windows.length}`,
    `${path.padEnd(14)} | steady (from 1 s after the flip): a2 out a ${pct(steady2.zone.a)} (a1 ${pct(steady2.backend['a1']!)}, a2 ${pct(steady2.backend['a2']!)}) b ${pct(steady2.zone.b)} c ${pct(steady2.zone.c)}; both out a ${pct(steady3.zone.a)} b ${pct(steady3.zone.b)} c ${pct(steady3.zone.c)}; back a ${pct(steady4.zone.a)}`,
    `${path.padEnd(14)} | calls the backends counted ${run.serverCalls}, calls this path started in that span ${run.clientCalls}; failed over the whole run ${failures}${run.examples.length ? ` (${run.examples.join(' | ')})` : ''}`,
  );

  const checks = [
    check(`${path}: ≥ ${LOCAL_BAR_PERCENT}% of calls in zone a while both its backends serve`, s1.zone.a >= LOCAL_BAR_PERCENT, `${pct(s1.zone.a)} of ${s1.calls} calls in zone a (b ${pct(s1.zone.b)}, c ${pct(s1.zone.c)}; smallest 250 ms window ${pct(minWindowA)})`),
    check(
      `${path}: when one of zone a's two flips NOT_SERVING, zone a keeps its healthy backend's share and the missing share spills to b and c`,
      inBand(steady2, STEADY_BAND_POINTS, STEADY_SIGMAS) && a2Steady === 0,
      `from 1 s after a2's flip: a ${pct(steady2.zone.a)} (a1 ${pct(steady2.backend['a1']!)}; a1 had ${pct(keptA)} with both serving), b ${pct(steady2.zone.b)}, c ${pct(steady2.zone.c)}, expected a ${pct(expected.a)} / b ${pct(expected.b)} / c ${pct(expected.c)} ± max(${STEADY_BAND_POINTS} points, ${STEADY_SIGMAS}σ) (${steadyBand}); a2 took ${a2Steady} calls (${steady2.calls} in all)`,
    ),
    check(
      `${path}: … within ${SETTLE_BAR_MILLIS / 1000} s`,
      settle2 !== undefined && settle2 <= SETTLE_BAR_MILLIS,
      `250 ms windows from the flip in the band (±max(${WINDOW_BAND_POINTS} points, ${WINDOW_SIGMAS}σ) of a ${pct(expected.a)} / b ${pct(expected.b)} / c ${pct(expected.c)}, ${SETTLED_RUN} in a row) by ${ms(settle2)}; a2's last call started ${ms(a2Last)} after the flip; first windows a/b/c: ${oneOut.windows
        .slice(0, 4)
        .map((w) => {
          const s = sharesOf([w]);
          return `${s.zone.a.toFixed(0)}/${s.zone.b.toFixed(0)}/${s.zone.c.toFixed(0)}`;
        })
        .join(', ')}`,
    ),
    check(
      `${path}: when both flip, 100% leaves zone a within ${SETTLE_BAR_MILLIS / 1000} s`,
      left3 <= SETTLE_BAR_MILLIS && steady3.zone.a === 0,
      `no call in zone a in any 250 ms window ending after ${ms(left3)} from a1's flip; the last call in zone a started ${ms(lastA3)} after it; from 1 s on ${pct(steady3.zone.a)} in a (b ${pct(steady3.zone.b)}, c ${pct(steady3.zone.c)}) of ${steady3.calls}`,
    ),
    check(`${path}: 0 calls fail`, failed.length === 0, `${records.length} calls over all four phases, failed: ${failures}${run.examples.length ? ` (${run.examples.join(' | ')})` : ''}`),
  ];
  const figure = `${path}: all serve a ${pct(s1.zone.a)}; a2 out a ${pct(steady2.zone.a)} b ${pct(steady2.zone.b)} c ${pct(steady2.zone.c)} in band by ${ms(settle2)}; both out 0% in a from ${ms(left3)}; back ≥ ${LOCAL_BAR_PERCENT}% in a by ${ms(settle4)}; ${failures} failed`;
  return { checks, table, figure };
}

async function putAll(rig: FaultRig, cluster: EtcdCluster, backends: readonly Backend[]): Promise<void> {
  const etcd = rig.etcdClient(cluster);
  for (const [i, b] of backends.entries()) await etcd.put(`${PREFIX}${LAYOUT[i]!.name}`).value(JSON.stringify({ addr: b.address, anchors: ANCHORS, zone: LAYOUT[i]!.zone }));
}

export const zoneRoutingScenario: FaultScenario = {
  id: 'zone-routing',
  title: 'zone-aware routing: 6 backends in 3 zones, the caller in zone a; ≥ 99% stays in a, one of a\'s two NOT_SERVING spills its share to b and c within 1 s, both → 100% leaves a within 1 s, 0 failed calls, on both paths',
  async run(context) {
    const durations = context.short ? SHORT_DURATIONS : DURATIONS;
    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(1);
      const backends = LAYOUT.map((b) => new Backend({ name: b.name, delayMillis: SERVER_DELAY_MILLIS }));
      rig.defer(() => Promise.all(backends.map((b) => b.kill())));
      await Promise.all(backends.map((b) => b.start()));
      await putAll(rig, cluster, backends);
      const runs: PathRun[] = [];

      const pool = rig.pool({ target: `etcd:///${PREFIX}`, etcd: { hosts: cluster.hosts }, drainTimeoutMillis: 2000, zone: LOCAL_ZONE, healthCheck: {} });
      await pool.ready();
      runs.push(await runPath(context, 'pool.client()', pool.client(EchoClient), backends, durations, pool));
      await pool.close();

      const native = await rig.nativeClient(cluster, PREFIX, { zone: LOCAL_ZONE, healthCheck: {} });
      runs.push(await runPath(context, 'etcd:///', native, backends, durations));
      native.close();

      const evaluated = runs.map(evaluate);
      context.log(`table: % by zone over the whole phase for 'all serve', from 1 s after the flip for the others; failed and calls over the whole phase`);
      context.log(`${'path'.padEnd(14)} | ${'phase'.padEnd(24)} | ${'% a'.padStart(6)} | ${'% b'.padStart(6)} | ${'% c'.padStart(6)} | ${'time to settle (from the flip)'.padEnd(44)} | failed | calls`);
      for (const e of evaluated) for (const line of e.table) context.log(line);
      return {
        id: this.id,
        title: this.title,
        figure: evaluated.map((e) => e.figure).join('; '),
        checks: evaluated.flatMap((e) => e.checks),
        settings: {
          backends: LAYOUT.map((b) => `${b.name}@${b.zone}`).join(' '),
          anchors: ANCHORS,
          callersPerPath: CALLERS_PER_PATH,
          serverDelayMillis: SERVER_DELAY_MILLIS,
          windowMillis: WINDOW_MILLIS,
          windowBandPoints: WINDOW_BAND_POINTS,
          steadyBandPoints: STEADY_BAND_POINTS,
          windowSigmas: WINDOW_SIGMAS,
          steadySigmas: STEADY_SIGMAS,
          phasesMillis: `${durations.serve}/${durations.oneOut}/${durations.bothOut}/${durations.back}`,
          table: evaluated.flatMap((e) => e.table).join('\n'),
        },
      };
    } finally {
      await rig.stop();
    }
  },
};
