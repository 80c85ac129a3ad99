// Lease hot-path benchmark: acquire + release ops/s of anchorpool against, in the same
// run, generic-pool's own acquire/release loop over the same number of resources and a
// bare array round robin (the limit for an async lease). Contenders run interleaved
// (A B C, A B C, …) and the median of the repetitions is reported with its spread.
//
//   node build/scripts/bench/leases.js [--quick] [--json]
//
// anchorpool's anchors are real: a grpc-js backend runs in a child process and every
// anchor is a READY connection to it (4,000 anchors are 4,000 connections).
import { parseArgs } from 'node:util';
import os from 'node:os';
import genericPool from 'generic-pool';
import { createPool, type AnchorPool } from '../../lib/pool.js';
import { silentLogger } from '../../lib/logger.js';
import { Backend } from '../echo/backend.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'boolean' } } });
const SIZES = [8, 4000];
const REPEATS = values.quick ? 3 : 5;
const RUN_MILLIS = values.quick ? 300 : 1000;

type Loop = () => Promise<number>; // runs for RUN_MILLIS, returns ops/s

/** Runs `step` back to back for RUN_MILLIS; checks the clock every 1,000 ops. */
async function timed(step: () => Promise<void>): Promise<number> {
  const start = performance.now();
  let ops = 0;
  for (;;) {
    for (let i = 0; i < 1000; i++) await step();
    ops += 1000;
    const elapsed = performance.now() - start;
    if (elapsed >= RUN_MILLIS) return (ops / elapsed) * 1000;
  }
}

function anchorpoolLoop(pool: AnchorPool): Loop {
  return () =>
    timed(async () => {
      const lease = await pool.acquire();
      lease.release();
    });
}

function genericPoolLoop(size: number): { loop: Loop; close(): Promise<void> } {
  let id = 0;
  const pool = genericPool.createPool({ create: async () => ({ id: id++ }), destroy: async () => undefined }, { max: size, min: size });
  return {
    loop: () =>
      timed(async () => {
        const resource = await pool.acquire();
        // Not awaited, as generic-pool's users (and the baseline figure) do.
        void pool.release(resource);
      }),
    close: async () => {
      await pool.drain();
      await pool.clear();
    },
  };
}

function arrayLoop(size: number): Loop {
  const items = Array.from({ length: size }, (_, i) => ({ i, leases: 0 }));
  let cursor = 0;
  const acquire = async () => {
    const item = items[cursor]!;
    cursor = cursor + 1 === size ? 0 : cursor + 1;
    item.leases += 1;
    return item;
  };
  return () =>
    timed(async () => {
      const item = await acquire();
      item.leases -= 1;
    });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const backend = new Backend({ name: 'bench' });
  await backend.start();
  const results: Record<string, { anchorpool: number[]; genericPool: number[]; array: number[] }> = {};
  try {
    for (const size of SIZES) {
      const pool = createPool({
        target: `pass:///${backend.address}#${size}`,
        maxAnchorsPerKey: 4096,
        logger: silentLogger,
        readyTimeoutMillis: 60_000,
      });
      await pool.ready();
      const readyAt = Date.now();
      while (pool.stats().anchors.byState.READY < size && Date.now() - readyAt < 60_000) await new Promise((r) => setTimeout(r, 50));
      if (pool.stats().anchors.byState.READY < size) throw new Error(`only ${pool.stats().anchors.byState.READY} of ${size} anchors READY`);
      const generic = genericPoolLoop(size);
      await generic.loop(); // warm-up: generic-pool creates its resources lazily
      const loops = { anchorpool: anchorpoolLoop(pool), genericPool: generic.loop, array: arrayLoop(size) };
      const runs = { anchorpool: [] as number[], genericPool: [] as number[], array: [] as number[] };
      for (let r = 0; r < REPEATS; r++) {
        for (const name of Object.keys(loops) as (keyof typeof loops)[]) runs[name].push(await loops[name]());
      }
      results[String(size)] = runs;
      await generic.close();
      await pool.close();
    }
  } finally {
    await backend.kill();
  }

  const summary = Object.fromEntries(
    Object.entries(results).map(([size, runs]) => [
      size,
      {
        anchorpool: { medianOpsPerSec: median(runs.anchorpool), min: Math.min(...runs.anchorpool), max: Math.max(...runs.anchorpool) },
        genericPool: { medianOpsPerSec: median(runs.genericPool), min: Math.min(...runs.genericPool), max: Math.max(...runs.genericPool) },
        arrayRoundRobin: { medianOpsPerSec: median(runs.array), min: Math.min(...runs.array), max: Math.max(...runs.array) },
        ratioVsGenericPool: median(runs.anchorpool) / median(runs.genericPool),
        ratioVsArray: median(runs.anchorpool) / median(runs.array),
      },
    ]),
  );
  const big = summary['4000']!;
  const small = summary['8']!;
  const report = {
    machine: `${os.cpus().length} cores, node ${process.version}`,
    date: new Date().toISOString(),
    settings: { repeats: REPEATS, runMillis: RUN_MILLIS, loop: 'one sequential await acquire(); release() loop' },
    sizes: summary,
    anchors4000Vs8: big.anchorpool.medianOpsPerSec / small.anchorpool.medianOpsPerSec,
    bars: {
      'anchorpool >= 2x generic-pool (8 anchors)': small.ratioVsGenericPool >= 2,
      'anchorpool >= 2x generic-pool (4000 anchors)': big.ratioVsGenericPool >= 2,
      '4000 anchors within 1.3x of 8': small.anchorpool.medianOpsPerSec / big.anchorpool.medianOpsPerSec <= 1.3,
    },
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  const m = (n: number) => `${(n / 1e6).toFixed(2)} M/s`;
  const lines = [
    `lease hot path — ${report.machine}, ${report.date}`,
    `settings: ${REPEATS} interleaved repetitions of ${RUN_MILLIS} ms each; ${report.settings.loop}`,
    '',
    'anchors  anchorpool          generic-pool        array round robin   vs generic-pool  vs array',
  ];
  for (const [size, s] of Object.entries(summary)) {
    lines.push(
      `${size.padEnd(8)} ${m(s.anchorpool.medianOpsPerSec).padEnd(19)} ${m(s.genericPool.medianOpsPerSec).padEnd(19)} ${m(s.arrayRoundRobin.medianOpsPerSec).padEnd(19)} ${s.ratioVsGenericPool.toFixed(2).padStart(6)}×          ${s.ratioVsArray.toFixed(2)}×`,
    );
  }
  lines.push('', `4,000 anchors vs 8: ${report.anchors4000Vs8.toFixed(2)}× the ops/s`);
  for (const [bar, ok] of Object.entries(report.bars)) lines.push(`${ok ? 'PASS' : 'MISS'}  ${bar}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
