// Multi-process server: how a client's calls spread over a Node `cluster` server whose
// 2 worker processes share one listening port (scripts/echo/cluster-server.ts, a child
// process; each worker answers Echo with its name and the caller's ip:port). A worker
// only ever sees the connections cluster gave it, so a client with one connection pins
// all its load on one worker. Contenders, each a fresh client per run so every run
// opens its connections anew and cluster deals them out again:
//   one-connection  one grpc-js channel with its own connection (the baseline)
//   anchorpool      a lease pool with 4 anchors (4 connections), every call on a lease
// Each run makes a fixed number of Echo calls, 32 in flight, once every connection is
// READY. `share` is the fraction of the answered calls that came from the busier worker
// (0.5 is an even split, 1.0 all on one worker); the connections each worker served are
// read from the replies (distinct caller ip:port per worker name).
// Cluster's scheduling decides which worker gets a connection, so the scenario runs
// twice: `rr` (Node's default on Linux: the primary accepts and deals connections out in
// turn) and `none` (every worker accepts on the shared socket and the kernel picks).
// Contenders run interleaved (A B, A B, …); metrics are medians with their spread.
//
//   npm run bench -- --only multi-process [--quick]
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { createPool, silentLogger } from '../../lib/index.js';
import { ClusterBackend } from '../../testkit/echo/cluster-backend.js';
import { callEcho, EchoClient, type EchoReply } from '../../testkit/echo/echo-service.js';
import { interleave, medianOf, type BenchContext, type Scenario, type ScenarioResult, type ScenarioRow } from './scenario.js';

const WORKERS = 2;
const IN_FLIGHT = 32;
const ANCHORS = 4;
const CONNECT_TIMEOUT_MILLIS = 10_000;
const SCHEDULING = ['rr', 'none'] as const;
const SCHEDULING_NAMES: Record<(typeof SCHEDULING)[number], string> = {
  rr: 'round robin in the primary (Node default)',
  none: 'kernel picks (SCHED_NONE)',
};

interface Spread {
  /** Answered calls per worker name. */
  calls: Map<string, number>;
  /** Distinct client connections (ip:port) per worker name. */
  peers: Map<string, Set<string>>;
  failed: number;
  elapsedMillis: number;
}

/** `total` calls, `inFlight` at a time, tallied by the worker that answered and the connection it saw. */
async function spread(call: () => Promise<EchoReply>, total: number, inFlight: number): Promise<Spread> {
  const calls = new Map<string, number>();
  const peers = new Map<string, Set<string>>();
  let failed = 0;
  let issued = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (issued < total) {
        issued += 1;
        try {
          const reply = await call();
          calls.set(reply.server, (calls.get(reply.server) ?? 0) + 1);
          const seen = peers.get(reply.server) ?? new Set<string>();
          peers.set(reply.server, seen.add(reply.peer));
        } catch {
          failed += 1;
        }
      }
    }),
  );
  return { calls, peers, failed, elapsedMillis: performance.now() - start };
}

/** Waits until every anchor of the pool is READY: a run must not start with connections still opening. */
async function allAnchorsReady(pool: ReturnType<typeof createPool>): Promise<void> {
  const deadline = Date.now() + CONNECT_TIMEOUT_MILLIS;
  while (pool.stats().anchors.byState.READY < ANCHORS) {
    if (Date.now() > deadline) throw new Error(`anchorpool: only ${pool.stats().anchors.byState.READY} of ${ANCHORS} anchors READY after ${CONNECT_TIMEOUT_MILLIS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function waitForReady(client: grpc.Client): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + CONNECT_TIMEOUT_MILLIS, (err) => (err ? reject(err) : resolve())));
}

interface GroupResult {
  name: string;
  rows: ScenarioRow[];
  /** Per contender, per run: connections per worker, "worker-1:worker-2". */
  splits: Record<string, string[]>;
  failed: Record<string, number>;
}

async function runGroup(scheduling: (typeof SCHEDULING)[number], total: number, repeats: number, context: BenchContext): Promise<GroupResult> {
  const server = new ClusterBackend({ workers: WORKERS, scheduling });
  try {
    await server.start();
    const workerNames = Array.from({ length: WORKERS }, (_, i) => `worker-${i + 1}`);
    const splits: Record<string, string[]> = { 'one-connection': [], anchorpool: [] };
    const failed: Record<string, number> = { 'one-connection': 0, anchorpool: 0 };

    const tally = (name: string, result: Spread): Record<string, number> => {
      const answered = [...result.calls.values()].reduce((a, b) => a + b, 0);
      const busiest = Math.max(0, ...result.calls.values());
      splits[name]!.push(workerNames.map((w) => result.peers.get(w)?.size ?? 0).join(':'));
      failed[name]! += result.failed;
      const perWorker = workerNames.map((w) => result.calls.get(w) ?? 0).join('/');
      context.log(`multi-process [${scheduling}]: ${name} calls per worker ${perWorker}, connections ${splits[name]!.at(-1)}, ${result.failed} failed`);
      return { share: answered > 0 ? busiest / answered : NaN, callsPerSec: (answered / result.elapsedMillis) * 1000 };
    };

    const contenders = {
      'one-connection': async () => {
        // A fresh channel with its own connection: cluster deals this connection out anew.
        const client = new EchoClient(server.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
        try {
          await waitForReady(client);
          return tally('one-connection', await spread(() => callEcho(client), total, IN_FLIGHT));
        } finally {
          client.close();
        }
      },
      anchorpool: async () => {
        const pool = createPool({ target: `pass:///${server.address}#${ANCHORS}`, acquireTimeoutMillis: 30_000, logger: silentLogger });
        try {
          await pool.ready();
          await allAnchorsReady(pool);
          return tally('anchorpool', await spread(() => pool.use((lease) => callEcho(lease.client(EchoClient))), total, IN_FLIGHT));
        } finally {
          await pool.close();
        }
      },
    };
    // Warm-up: the call paths compiled in client and workers; its splits are not kept.
    for (const run of Object.values(contenders)) await run();
    for (const name of Object.keys(splits)) {
      splits[name] = [];
      failed[name] = 0;
    }
    const rows = await interleave(contenders, repeats);
    return { name: SCHEDULING_NAMES[scheduling], rows, splits, failed };
  } finally {
    await server.kill();
  }
}

async function run(context: BenchContext): Promise<ScenarioResult> {
  const total = context.tiny ? 300 : context.quick ? 1000 : 4000;
  const repeats = context.tiny ? 1 : context.quick ? 3 : 5;
  // Other work on this 2-core machine moves callsPerSec (not the shares); the load average says how much there was.
  const loadBefore = os.loadavg()[0]!;
  const groups: GroupResult[] = [];
  for (const scheduling of SCHEDULING) groups.push(await runGroup(scheduling, total, repeats, context));

  return {
    id: 'multi-process',
    title: 'Multi-process server (Node cluster, 2 workers)',
    settings: {
      workers: WORKERS,
      callsPerRun: total,
      inFlight: IN_FLIGHT,
      repeats,
      anchors: ANCHORS,
      scheduling: SCHEDULING.join(', '),
      serverDelayMillis: 0,
      clientPerRun: 'fresh (new connections every run)',
    },
    metrics: [
      { name: 'share', unit: 'fraction of calls on the busier worker', higherIsBetter: false },
      { name: 'callsPerSec', unit: 'calls/s', higherIsBetter: true },
    ],
    primary: 'share',
    baseline: 'one-connection',
    groups: groups.map(({ name, rows }) => ({ name, rows })),
    bars: groups.map((g) => {
      const share = medianOf(g.rows, 'anchorpool', 'share');
      const base = medianOf(g.rows, 'one-connection', 'share');
      return {
        label: `anchorpool spreads load over both workers, ${g.name}`,
        pass: share < 0.9,
        detail: `median share on the busier worker ${share.toFixed(3)} (one connection ${base.toFixed(3)}); connections per worker by run: ${g.splits['anchorpool']!.join(', ')}`,
      };
    }),
    notes: [
      ...groups.flatMap((g) =>
        Object.entries(g.splits).map(([name, runs]) => `${g.name}: ${name} runs: ${runs.join(', ')} connections per worker (worker-1:worker-2)`),
      ),
      'Which worker gets a connection is cluster\'s choice (round robin in the primary, or the kernel with SCHED_NONE), not the client\'s; a client can only open more connections, and each run here opens them anew.',
      `callsPerSec is secondary: the workers do no work per call, and client, primary and workers share ${os.cpus().length} cores with whatever else runs, so it moves with that load rather than with the spread; share is the measure. 1-minute load average before / after: ${loadBefore.toFixed(2)} / ${os.loadavg()[0]!.toFixed(2)}.`,
      `Failed calls: ${groups.map((g) => `${g.name}: ${Object.entries(g.failed).map(([n, f]) => `${n} ${f}`).join(', ')}`).join('; ')}.`,
    ],
  };
}

export const multiProcessScenario: Scenario = { id: 'multi-process', title: 'Multi-process server (Node cluster, 2 workers)', run };
