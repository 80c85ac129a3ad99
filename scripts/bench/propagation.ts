// Propagation scenario: how long an etcd change takes to reach the leases. A pool
// watches etcd:///bench/prop/ with one real grpc-js backend registered; a second real
// backend's key is put and deleted again, trial after trial, by an etcd3 client.
//
//   put → first lease   t0 just before the put is sent; the end is the first lease the
//                       pool hands out on the new backend's address. A busy client is
//                       simulated by a tight tryAcquire/release loop (propagation-probe.ts)
//                       running from t0. Included: the etcd write, the watch event, the
//                       source's parse and diff, the reconcile, and the new anchor's TCP +
//                       HTTP/2 handshake to READY on loopback — a fresh anchor cannot be
//                       leased before it is connected, so that is the honest figure.
//   del → last lease    the moving backend is in rotation (the probe has leased it), t0
//                       just before the delete is sent; the end is the last lease on its
//                       address, i.e. the moment after which no new lease goes there. The
//                       trial ends when its anchor has drained (SHUTDOWN).
//   etcd3 watcher       the peer: a bare etcd3 watch on the same prefix, on the same puts,
//                       from t0 to its put event.
//
// Run once on a single-node etcd and once on a 3-member cluster, each a group. p50/p99
// are over all trials pooled (one figure each). A few trials write with the real etcdctl
// instead; its process start dominates, so those are reported in the notes only.
import { setTimeout as sleep } from 'node:timers/promises';
import { Etcd3, type Watcher } from 'etcd3';
import { type AnchorPool, createPool, silentLogger } from '../../lib/index.js';
import { ensureEtcdInstalled, etcdctl, startCluster } from '../../etcd-dev/etcd-dev.mjs';
import { Backend } from '../../testkit/echo/backend.js';
import { Marks } from './propagation-marks.js';
import { LeaseProbe } from './propagation-probe.js';
import { quantile, summarize, type Bar, type BenchContext, type Scenario, type ScenarioResult, type ScenarioRow, within } from './scenario.js';

const PREFIX = 'bench/prop/';
const STABLE_KEY = `${PREFIX}stable`;
const MOVING_KEY = `${PREFIX}moving`;
/** Leases per probe turn: with two eligible anchors the round robin visits each twice. */
const PICKS_PER_TURN = 4;
const TRIAL_TIMEOUT_MILLIS = 10_000;
const BAR_P99_MILLIS = 20;

const ROW_PUT = 'anchorpool put→first lease';
const ROW_DEL = 'anchorpool del→last lease';
const ROW_PEER = 'etcd3 watcher put→event';

/** How a trial writes the moving key: an etcd3 client, or the etcdctl binary. */
interface Writer {
  put(key: string, value: string): Promise<unknown>;
  del(key: string): Promise<unknown>;
}

/** One trial, every figure in ms from its t0 (put or delete sent). */
interface Trial {
  putToFirstLease: number;
  putToAdded: number;
  putToReady: number;
  putToWatcher: number;
  putAck: number;
  delToLastLease: number;
  delToRemoved: number;
  delToWatcher: number;
  delAck: number;
}

interface ClusterRun {
  rows: ScenarioRow[];
  trials: Trial[];
  etcdctlTrials: Trial[];
}


/** Listens to the pool and the peer watcher for the moving key and marks what they see. */
function listen(pool: AnchorPool, watcher: Watcher, marks: Marks): void {
  pool.on('endpoint-added', (e) => e.key === MOVING_KEY && marks.mark('added'));
  pool.on('endpoint-removed', (e) => e.key === MOVING_KEY && marks.mark('removed'));
  pool.on('anchor-state', (e) => {
    if (e.key !== MOVING_KEY) return;
    if (e.state === 'READY') marks.mark('ready');
    if (e.state === 'SHUTDOWN') marks.mark('shutdown');
  });
  watcher.on('put', (kv) => kv.key.toString() === MOVING_KEY && marks.mark('watchPut'));
  watcher.on('delete', (kv) => kv.key.toString() === MOVING_KEY && marks.mark('watchDel'));
}

/** put → first lease, then del → last lease, on the moving backend. */
async function trial(pool: AnchorPool, marks: Marks, write: Writer, moving: Backend): Promise<Trial> {
  const value = JSON.stringify({ addr: moving.address, anchors: 1 });

  marks.reset();
  let probe = new LeaseProbe(pool, moving.address, PICKS_PER_TURN);
  const putAt = performance.now();
  const putAck = write.put(MOVING_KEY, value).then(() => performance.now());
  try {
    await within(Promise.all([probe.first, marks.wait('watchPut'), putAck]), TRIAL_TIMEOUT_MILLIS, 'propagation: put → first lease');
  } finally {
    await probe.stop();
  }
  const since = (at: number | undefined) => (at ?? NaN) - putAt;
  const put = {
    putToFirstLease: since(probe.firstAt),
    putToAdded: since(marks.get('added')),
    putToReady: since(marks.get('ready')),
    putToWatcher: since(marks.get('watchPut')),
    putAck: since(await putAck),
  };

  marks.reset();
  probe = new LeaseProbe(pool, moving.address, PICKS_PER_TURN);
  let delAt = NaN;
  try {
    // In rotation first: otherwise "the last lease" could predate the delete.
    await within(probe.first, TRIAL_TIMEOUT_MILLIS, 'propagation: the moving backend in rotation');
    delAt = performance.now();
    const delAck = write.del(MOVING_KEY).then(() => performance.now());
    // SHUTDOWN: the anchor has drained, so no later turn can lease it.
    await within(Promise.all([marks.wait('shutdown'), marks.wait('watchDel'), delAck]), TRIAL_TIMEOUT_MILLIS, 'propagation: del → drained');
    return {
      ...put,
      delToLastLease: Math.max(0, (probe.lastAt ?? NaN) - delAt),
      delToRemoved: (marks.get('removed') ?? NaN) - delAt,
      delToWatcher: (marks.get('watchDel') ?? NaN) - delAt,
      delAck: (await delAck) - delAt,
    };
  } finally {
    await probe.stop();
  }
}

async function measureCluster(
  members: number,
  counts: { warmup: number; trials: number; etcdctlTrials: number },
  backends: { stable: Backend; moving: Backend },
  log: (line: string) => void,
): Promise<ClusterRun> {
  const cluster = await startCluster({ members });
  const writer = new Etcd3({ hosts: cluster.hosts });
  // The peer watches over its own client, as the pool's source does.
  const peer = new Etcd3({ hosts: cluster.hosts });
  let pool: AnchorPool | undefined;
  let watcher: Watcher | undefined;
  try {
    await writer.put(STABLE_KEY).value(JSON.stringify({ addr: backends.stable.address, anchors: 1 }));
    pool = createPool({ target: `etcd:///${PREFIX}`, etcd: { hosts: cluster.hosts }, logger: silentLogger });
    await pool.ready();
    watcher = await peer.watch().prefix(PREFIX).create();
    const marks = new Marks();
    listen(pool, watcher, marks);

    const viaClient: Writer = { put: (key, value) => writer.put(key).value(value).exec(), del: (key) => writer.delete().key(key).exec() };
    const viaEtcdctl: Writer = {
      put: (key, value) => etcdctl(['put', key, value], { endpoints: cluster.endpoints }),
      del: (key) => etcdctl(['del', key], { endpoints: cluster.endpoints }),
    };
    for (let i = 0; i < counts.warmup; i++) await trial(pool, marks, viaClient, backends.moving);
    const trials: Trial[] = [];
    for (let i = 0; i < counts.trials; i++) {
      trials.push(await trial(pool, marks, viaClient, backends.moving));
      // A breath between trials, so the previous connection's teardown is not measured.
      await sleep(2);
    }
    const etcdctlTrials: Trial[] = [];
    for (let i = 0; i < counts.etcdctlTrials; i++) etcdctlTrials.push(await trial(pool, marks, viaEtcdctl, backends.moving));
    log(`propagation: ${members} member(s): ${trials.length} trials + ${etcdctlTrials.length} with etcdctl`);

    const row = (contender: string, values: number[]): ScenarioRow => ({
      contender,
      values: { p50Ms: summarize([quantile(values, 0.5)]), p99Ms: summarize([quantile(values, 0.99)]) },
    });
    return {
      rows: [
        row(ROW_PUT, trials.map((t) => t.putToFirstLease)),
        row(ROW_DEL, trials.map((t) => t.delToLastLease)),
        row(ROW_PEER, trials.map((t) => t.putToWatcher)),
      ],
      trials,
      etcdctlTrials,
    };
  } finally {
    await watcher?.cancel();
    await pool?.close();
    writer.close();
    peer.close();
    await cluster.stop();
  }
}

const ms = (n: number) => `${n.toFixed(2)} ms`;
const p50 = (xs: number[]) => quantile(xs, 0.5);

function clusterNotes(name: string, run: ClusterRun): string[] {
  const t = run.trials;
  const pick = (f: (t: Trial) => number) => t.map(f);
  const notes = [
    `${name}: put → first lease breaks down (p50) as put acknowledged ${ms(p50(pick((x) => x.putAck)))}, pool's endpoint-added ${ms(p50(pick((x) => x.putToAdded)))}, anchor READY ${ms(p50(pick((x) => x.putToReady)))}, first lease ${ms(p50(pick((x) => x.putToFirstLease)))}; max ${ms(Math.max(...pick((x) => x.putToFirstLease)))}.`,
    `${name}: del → endpoint-removed p50 ${ms(p50(pick((x) => x.delToRemoved)))}; del → last lease max ${ms(Math.max(...pick((x) => x.delToLastLease)))}; the peer's del → event p50 ${ms(p50(pick((x) => x.delToWatcher)))}, p99 ${ms(quantile(pick((x) => x.delToWatcher), 0.99))}.`,
  ];
  const e = run.etcdctlTrials;
  if (e.length > 0) {
    notes.push(
      `${name}, ${e.length} trials writing with the real etcdctl (a process per command): put → first lease p50 ${ms(p50(e.map((x) => x.putToFirstLease)))} (max ${ms(Math.max(...e.map((x) => x.putToFirstLease)))}); etcdctl put itself, spawn to exit, p50 ${ms(p50(e.map((x) => x.putAck)))}; del → last lease p50 ${ms(p50(e.map((x) => x.delToLastLease)))}.`,
    );
  }
  return notes;
}

export const propagationScenario: Scenario = {
  id: 'propagation',
  title: 'etcd propagation: put → first lease, del → last lease',
  async run(context: BenchContext): Promise<ScenarioResult> {
    const counts = context.tiny
      ? { warmup: 1, trials: 10, etcdctlTrials: 1 }
      : context.quick
        ? { warmup: 3, trials: 30, etcdctlTrials: 3 }
        : { warmup: 10, trials: 500, etcdctlTrials: 10 };
    await ensureEtcdInstalled({ log: context.log });
    const stable = new Backend({ name: 'prop-stable' });
    const moving = new Backend({ name: 'prop-moving' });
    try {
      await stable.start();
      await moving.start();
      const single = await measureCluster(1, counts, { stable, moving }, context.log);
      const three = await measureCluster(3, counts, { stable, moving }, context.log);
      const firstP99 = quantile(single.trials.map((t) => t.putToFirstLease), 0.99);
      const bars: Bar[] = [
        {
          label: `put → first lease p99 <= ${BAR_P99_MILLIS} ms on single-node etcd`,
          pass: firstP99 <= BAR_P99_MILLIS,
          detail: `p99 ${ms(firstP99)} over ${single.trials.length} trials (3-member cluster: ${ms(quantile(three.trials.map((t) => t.putToFirstLease), 0.99))})`,
        },
      ];
      return {
        id: 'propagation',
        title: this.title,
        settings: {
          trials: counts.trials,
          warmupTrials: counts.warmup,
          etcdctlTrials: counts.etcdctlTrials,
          writer: 'etcd3 client, own connection; one write at a time',
          backends: '2 grpc-js processes (1 registered throughout, 1 put and deleted)',
          anchorsPerKey: 1,
          probe: `setImmediate loop, ${PICKS_PER_TURN} tryAcquire+release per turn`,
          clusters: 'single node; 3 members (all on loopback)',
        },
        metrics: [
          { name: 'p50Ms', unit: 'ms', higherIsBetter: false },
          { name: 'p99Ms', unit: 'ms', higherIsBetter: false },
        ],
        primary: 'p99Ms',
        baseline: ROW_PEER,
        groups: [
          { name: 'single-node etcd', rows: single.rows },
          { name: '3-member cluster', rows: three.rows },
        ],
        bars,
        notes: [
          'p50/p99 are over all trials pooled, one figure each (no spread).',
          'put → first lease includes the new anchor connecting (TCP + HTTP/2 handshake to READY on loopback): a fresh anchor cannot be leased before it is connected. The peer only receives the event.',
          'The probe spins (one tryAcquire turn per event-loop iteration) for the length of each trial, like a busy client; on 2 cores it shares the CPU with etcd (3 processes for the cluster).',
          ...clusterNotes('single node', single),
          ...clusterNotes('3 members', three),
        ],
      };
    } finally {
      await moving.kill();
      await stable.kill();
    }
  },
};
