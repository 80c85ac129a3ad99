// Lease hot-path scenario: acquire + release per second of anchorpool against, in the same
// process and run, generic-pool's own acquire/release loop over the same number of
// resources and a bare array round robin (about the limit for an async lease), with 8,
// 64 and 4,000 anchors. anchorpool's anchors are real: each is a READY connection to a
// grpc-js backend in a child process. One sequential `await acquire(); release()` loop.
// `anchorpool` is the default pick (round robin); `anchorpool peak-ewma` runs the same
// loop on a pool with pick: 'peak-ewma' (two draws, latency × (leases + 1), and every
// lease timed from acquire to release), so the report gives its cost per acquire.
import genericPool from 'generic-pool';
import { type AnchorPool, createPool, type PickMode, silentLogger } from '../../lib/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { interleave, medianOf, type Scenario, type ScenarioRow } from './scenario.js';

const SIZES = [8, 64, 4000];

/** Runs `step` back to back for `millis`, checking the clock every 1,000 steps; returns ops/s. */
async function opsPerSec(step: () => Promise<void>, millis: number): Promise<number> {
  const start = performance.now();
  let ops = 0;
  for (;;) {
    for (let i = 0; i < 1000; i++) await step();
    ops += 1000;
    const elapsed = performance.now() - start;
    if (elapsed >= millis) return (ops / elapsed) * 1000;
  }
}

/** A pool whose `size` anchors can all take leases (READY, and SERVING when health-checked). */
async function readyPool(address: string, size: number, healthChecked: boolean, pick?: PickMode): Promise<AnchorPool> {
  const pool = createPool({
    target: `pass:///${address}#${size}`,
    maxAnchorsPerKey: 4096,
    logger: silentLogger,
    readyTimeoutMillis: 60_000,
    ...(healthChecked && { healthCheck: {} }),
    ...(pick !== undefined && { pick }),
  });
  await pool.ready();
  const deadline = Date.now() + 60_000;
  while (pool.stats().anchors.eligible < size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (pool.stats().anchors.eligible < size) throw new Error(`only ${pool.stats().anchors.eligible} of ${size} anchors can take leases`);
  return pool;
}

export const leasesScenario: Scenario = {
  id: 'leases',
  title: 'Lease hot path: acquire + release per second',
  async run(context) {
    const runMillis = context.tiny ? 100 : context.quick ? 300 : 1000;
    const sizes = context.tiny ? [8, 64] : SIZES;
    const repeats = context.tiny ? 1 : context.quick ? 3 : 5;
    const backend = new Backend({ name: 'leases' });
    await backend.start();
    const groups: { name: string; rows: ScenarioRow[] }[] = [];
    try {
      for (const size of sizes) {
        context.log(`leases: ${size} anchors`);
        const pool = await readyPool(backend.address, size, false);
        const checked = await readyPool(backend.address, size, true);
        const ewma = await readyPool(backend.address, size, false, 'peak-ewma');
        let id = 0;
        const generic = genericPool.createPool({ create: async () => ({ id: id++ }), destroy: async () => undefined }, { max: size, min: size });
        const items = Array.from({ length: size }, (_, i) => ({ i, leases: 0 }));
        let cursor = 0;
        const arrayAcquire = async () => {
          const item = items[cursor]!;
          cursor = cursor + 1 === size ? 0 : cursor + 1;
          item.leases += 1;
          return item;
        };
        const loops = {
          anchorpool: () =>
            opsPerSec(async () => {
              (await pool.acquire()).release();
            }, runMillis),
          'anchorpool peak-ewma': () =>
            opsPerSec(async () => {
              (await ewma.acquire()).release();
            }, runMillis),
          // Health checks run beside the lease path (one Watch per anchor), not on it.
          'anchorpool+health': () =>
            opsPerSec(async () => {
              (await checked.acquire()).release();
            }, runMillis),
          'generic-pool': () =>
            opsPerSec(async () => {
              // Not awaited, as generic-pool's users (and the baseline figure) do.
              void generic.release(await generic.acquire());
            }, runMillis),
          'array round robin': () =>
            opsPerSec(async () => {
              (await arrayAcquire()).leases -= 1;
            }, runMillis),
        };
        await loops['generic-pool'](); // warm-up: generic-pool creates its resources lazily
        const rows = await interleave(
          Object.fromEntries(
            Object.entries(loops).map(([name, loop]) => [
              name,
              async () => {
                const ops = await loop();
                return { opsPerSec: ops, nsPerOp: 1e9 / ops };
              },
            ]),
          ),
          repeats,
        );
        groups.push({ name: `${size} anchors`, rows });
        await generic.drain();
        await generic.clear();
        await pool.close();
        await checked.close();
        await ewma.close();
      }
    } finally {
      await backend.kill();
    }
    const ours = (size: number) => medianOf(groups.find((g) => g.name === `${size} anchors`)!.rows, 'anchorpool', 'opsPerSec');
    const theirs = (size: number) => medianOf(groups.find((g) => g.name === `${size} anchors`)!.rows, 'generic-pool', 'opsPerSec');
    return {
      id: 'leases',
      title: this.title,
      settings: { anchors: sizes.join(', '), keys: '1 (pass:///address#anchors)', runMillis, repeats, loop: 'one sequential await acquire(); release()', picks: "anchorpool: default (round-robin); anchorpool peak-ewma: pick 'peak-ewma'" },
      metrics: [
        { name: 'opsPerSec', unit: 'ops/s', higherIsBetter: true },
        { name: 'nsPerOp', unit: 'ns per acquire+release', higherIsBetter: false },
      ],
      primary: 'opsPerSec',
      baseline: 'generic-pool',
      groups,
      bars: [
        ...sizes.map((size) => ({
          label: `leases >= 2x generic-pool (${size} anchors)`,
          pass: ours(size) / theirs(size) >= 2,
          detail: `${(ours(size) / theirs(size)).toFixed(2)}x`,
        })),
        ...(sizes.includes(4000)
          ? [{ label: '4,000 anchors within 1.3x of 8', pass: ours(8) / ours(4000) <= 1.3, detail: `4,000 anchors run at ${(ours(4000) / ours(8)).toFixed(2)}x the rate of 8` }]
          : []),
      ],
      notes: sizes.flatMap((size) => {
        const rows = groups.find((g) => g.name === `${size} anchors`)!.rows;
        const ns = (name: string) => medianOf(rows, name, 'nsPerOp');
        const extra = ns('anchorpool peak-ewma') - ns('anchorpool');
        return [
          `${size} anchors: with health checks on (one Watch stream per anchor, beside the lease path) ${(medianOf(rows, 'anchorpool+health', 'opsPerSec') / ours(size)).toFixed(2)}x the rate without`,
          `${size} anchors: pick 'peak-ewma' costs ${extra >= 0 ? '+' : ''}${extra.toFixed(0)} ns per acquire+release over the default pick (medians ${ns('anchorpool peak-ewma').toFixed(0)} vs ${ns('anchorpool').toFixed(0)} ns; ${(medianOf(rows, 'anchorpool peak-ewma', 'opsPerSec') / ours(size)).toFixed(2)}x the default's rate)`,
        ];
      }),
    };
  },
};
