// Issue 13: anchors behind a real L4 load balancer. HAProxy (TCP mode, balance roundrobin)
// fronts echo backends and is registered in etcd as ONE address with 8 anchors. Two
// backends serve at first; then two more are enabled behind HAProxy, as pods are added
// behind a Service. Each run measures every backend's share of the calls per window,
// counted by the backends: once with refresh off, once with anchorMaxAgeMillis on.
// Bars: with refresh on, from one max age (plus its jitter) after the new backends
// appeared, the busiest backend serves at most 1.5× the calls of the least busy (summed
// over the windows from then on; refreshes go on all the time, so one window can catch 3
// connections on one backend and 1 on another while a replacement lands); 0 failed
// calls in both runs. With refresh off the new backends get nothing (reported, not barred:
// it is the problem refresh solves).
import { Backend } from '../../testkit/echo/backend.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';
import { startHaproxy } from '../../testkit/haproxy.js';
import { check, sleep, type FaultCheck, type FaultContext, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';

const ANCHORS = 8;
const LOOPS = 16;
const SPREAD_BAR = 1.5;
const JITTER = 0.15;

export interface L4Run {
  /** Share of each backend's calls per window, after the new backends were enabled. */
  readonly windows: { readonly endsAtMillis: number; readonly calls: number[] }[];
  readonly calls: number;
  readonly failed: number;
  readonly refreshes: number;
}

/** One run: the shares per second after p3 and p4 join, with refresh off (maxAgeMillis 0) or on. The bench's l4-refresh scenario reports the same runs. */
export async function measureL4Shares(context: Pick<FaultContext, 'short'>, maxAgeMillis: number): Promise<L4Run> {
  const windowMillis = 1000;
  const windows = Math.ceil((maxAgeMillis > 0 ? maxAgeMillis * (1 + JITTER) : context.short ? 2000 : 4000) / windowMillis) + 2;
  const rig = new FaultRig();
  try {
    const cluster = await rig.etcd(1);
    const etcd = rig.etcdClient(cluster);
    const backends = ['p1', 'p2', 'p3', 'p4'].map((name) => new Backend({ name, delayMillis: 2 }));
    rig.defer(() => Promise.all(backends.map((b) => b.kill())));
    await Promise.all(backends.map((b) => b.start()));
    const lb = await startHaproxy(backends.map((b, i) => ({ name: `s${i + 1}`, address: b.address, disabled: i >= 2 })));
    rig.defer(() => lb.stop());
    await etcd.put('l4/lb').value(JSON.stringify({ addr: lb.address, anchors: ANCHORS }));
    const pool = rig.pool({ target: 'etcd:///l4/', etcd: { hosts: cluster.hosts }, anchorMaxAgeMillis: maxAgeMillis, drainTimeoutMillis: 5000 });
    await pool.ready();
    const stub = pool.client(EchoClient);
    let running = true;
    let calls = 0;
    let failed = 0;
    const workers = Array.from({ length: LOOPS }, async () => {
      while (running) {
        try {
          await callEcho(stub, 3000);
        } catch {
          failed += 1;
        }
        calls += 1;
      }
    });
    rig.defer(async () => ((running = false), await Promise.all(workers)));
    await sleep(context.short ? 500 : 1000);
    await lb.enable('s3');
    await lb.enable('s4');
    const enabledAt = performance.now();
    let last = await Promise.all(backends.map(async (b) => (await b.stats()).calls));
    const measured: L4Run['windows'][number][] = [];
    for (let w = 0; w < windows; w++) {
      await sleep(windowMillis);
      const now = await Promise.all(backends.map(async (b) => (await b.stats()).calls));
      measured.push({ endsAtMillis: performance.now() - enabledAt, calls: now.map((n, i) => n - last[i]!) });
      last = now;
    }
    running = false;
    await Promise.all(workers);
    return { windows: measured, calls, failed, refreshes: pool.stats().refreshes.done };
  } finally {
    await rig.stop();
  }
}

/**
 * The windows of a refresh-on run that start one max age (+ jitter) after the new backends
 * joined, each backend's calls summed over them, and the busiest-to-least-busy ratio of the sums.
 */
export function settledShares(run: L4Run, maxAgeMillis: number): { windows: L4Run['windows']; calls: number[]; spread: number } {
  const settledAt = maxAgeMillis * (1 + JITTER);
  const windows = run.windows.filter((w) => w.endsAtMillis - 1000 >= settledAt);
  const calls = windows.reduce((sum, w) => sum.map((n, i) => n + w.calls[i]!), [0, 0, 0, 0]);
  return { windows, calls, spread: spread(calls) };
}

const shares = (calls: number[]): string => {
  const total = calls.reduce((a, b) => a + b, 0);
  return calls.map((n) => `${total === 0 ? 0 : Math.round((n / total) * 100)}%`).join('/');
};
const spread = (calls: number[]): number => Math.max(...calls) / Math.max(1, Math.min(...calls));

export const L4_MAX_AGE_MILLIS = { short: 1500, full: 4000 } as const;

export const l4RefreshScenario: FaultScenario = {
  id: 'l4-refresh',
  title: 'one HAProxy address with 8 anchors, 2 backends behind it, then 4: refresh spreads the calls over all 4; 0 failed calls',
  async run(context) {
    const maxAgeMillis = context.short ? L4_MAX_AGE_MILLIS.short : L4_MAX_AGE_MILLIS.full;
    const off = await measureL4Shares(context, 0);
    const on = await measureL4Shares(context, maxAgeMillis);
    // From the first window that starts one max age plus its jitter on: every anchor has been replaced by then.
    const { windows: settled, calls: after } = settledShares(on, maxAgeMillis);
    const lastOff = off.windows.at(-1)!;
    const checks: FaultCheck[] = [
      check(
        'refresh on: from one max age (+15%) after the new backends appeared, busiest backend ≤ 1.5× the least busy',
        settled.length > 0 && spread(after) <= SPREAD_BAR,
        settled.length === 0 ? 'no window after the max age' : `${shares(after)} = ${spread(after).toFixed(2)}× over ${settled.length} s (per second: ${settled.map((w) => `${shares(w.calls)} ${spread(w.calls).toFixed(2)}×`).join(', ')})`,
      ),
      check('refresh on: 0 failed calls', on.failed === 0, `${on.failed} of ${on.calls}`),
      check('refresh off: 0 failed calls', off.failed === 0, `${off.failed} of ${off.calls}`),
    ];
    const table = (run: L4Run) => run.windows.map((w) => `${(w.endsAtMillis / 1000).toFixed(1)} s ${shares(w.calls)}`).join(' | ');
    context.log(`refresh off, shares p1/p2/p3/p4 per window after p3, p4 joined: ${table(off)}`);
    context.log(`refresh on (${maxAgeMillis} ms), shares p1/p2/p3/p4: ${table(on)}`);
    return {
      id: this.id,
      title: this.title,
      figure: `refresh off: new backends ${shares(lastOff.calls)} of the calls at the end (${off.calls} calls, ${off.failed} failed); refresh on (max age ${maxAgeMillis} ms): ${on.refreshes} refreshes, shares from one max age on ${shares(after)} (${spread(after).toFixed(2)}×; ${on.calls} calls, ${on.failed} failed)`,
      checks,
      settings: { anchors: ANCHORS, loops: LOOPS, maxAgeMillis, jitter: JITTER },
    };
  },
};
