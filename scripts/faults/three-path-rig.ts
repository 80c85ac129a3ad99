// The setup the restart, health and ejection scenarios share: real etcd (one member),
// three real grpc-js echo backends in child processes, each registered under its own key
// with 2 anchors, one pool and one etcd:/// channel on the same prefix, and closed-loop
// callers on the three ways of calling (three-path-load.ts). Everything is stopped by
// the FaultRig, whether the scenario passed, missed or threw.
import * as grpc from '@grpc/grpc-js';
import type { AnchorPool, OutlierDetectionOptions } from '../../lib/index.js';
import { Backend, type BackendOptions } from '../../testkit/echo/backend.js';
import { check, sleep, type FaultCheck, type FaultContext, type FaultResult } from './fault.js';
import { describeFailures, failedCount, ThreePathLoad } from './three-path-load.js';
import { FaultRig } from './rig.js';

export const BACKENDS = 3;
export const ANCHORS = 2;
const LOOPS_PER_PATH = 8;
export const SERVER_DELAY_MILLIS = 5;
const PREFIX = 'restarts/';

export interface Setup {
  readonly rig: FaultRig;
  readonly backends: Backend[];
  readonly pool: AnchorPool;
  readonly native: grpc.Client;
  readonly load: ThreePathLoad;
  /** The pool's ejections from its start on (performance.now()), with their end once the entry returned. */
  readonly ejections: { readonly key: string; readonly times: number; readonly from: number; until?: number }[];
  put(key: string, backend: Backend): Promise<void>;
  del(key: string): Promise<void>;
}

export const keyOf = (i: number): string => `${PREFIX}b${i + 1}`;

export interface ThreePathOptions {
  readonly backend?: Omit<BackendOptions, 'name'>;
  /** Health checks on, for the pool and the channel. */
  readonly health?: boolean;
  /** Outlier ejection on, for the pool and the channel, with these options. */
  readonly outlierDetection?: OutlierDetectionOptions;
  /** The request every call sends. */
  readonly request?: string;
}

async function setUp(rig: FaultRig, { backend: backendOptions = {}, health = false, outlierDetection, request }: ThreePathOptions): Promise<Setup> {
  const cluster = await rig.etcd(1);
  const etcd = rig.etcdClient(cluster);
  const backends = Array.from({ length: BACKENDS }, (_, i) => new Backend({ name: `b${i + 1}`, delayMillis: SERVER_DELAY_MILLIS, ...backendOptions }));
  rig.defer(() => Promise.all(backends.map((b) => b.kill())));
  await Promise.all(backends.map((b) => b.start()));
  const put = async (key: string, backend: Backend): Promise<void> => void (await etcd.put(key).value(JSON.stringify({ addr: backend.address, anchors: ANCHORS })));
  const del = async (key: string): Promise<void> => void (await etcd.delete().key(key));
  for (const [i, b] of backends.entries()) await put(keyOf(i), b);
  const pool = rig.pool({
    target: `etcd:///${PREFIX}`,
    etcd: { hosts: cluster.hosts },
    drainTimeoutMillis: 2000,
    ...(health && { healthCheck: {} }),
    ...(outlierDetection !== undefined && { outlierDetection }),
  });
  const ejections: Setup['ejections'] = [];
  pool.on('endpoint-ejected', (e) => ejections.push({ key: e.key, times: e.times, from: performance.now() }));
  pool.on('endpoint-returned', (e) => {
    const open = ejections.findLast((w) => w.key === e.key);
    if (open !== undefined && open.until === undefined) open.until = performance.now();
  });
  const native = await rig.nativeClient(cluster, PREFIX, {
    ...(health && { healthCheck: { serviceName: '' } }),
    ...(outlierDetection !== undefined && { outlierDetection }),
  });
  await pool.ready();
  const load = new ThreePathLoad(pool, native, { loops: LOOPS_PER_PATH, ...(request !== undefined && { request }) });
  rig.defer(() => load.stop());
  return { rig, backends, pool, native, load, ejections, put, del };
}

/** The bar on every path, the native one included: 0 failed calls. */
export function zeroFailures(setup: Setup): { checks: FaultCheck[]; figure: string } {
  const checks = setup.load.tallies.map((t) =>
    check(`0 failed calls through ${t.path}`, failedCount(t) === 0, `${t.calls} calls, failed: ${describeFailures(t)}${t.examples.length ? ` (${t.examples.join(' | ')})` : ''}`),
  );
  const figure = setup.load.tallies.map((t) => `${t.path} ${t.calls} calls / ${describeFailures(t)} failed`).join('; ');
  return { checks, figure };
}

/** Polls every backend's server-side connection count until each holds `expected`, or `timeoutMillis` passes. */
export async function connectionsSettle(backends: Backend[], expected: number, timeoutMillis: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    const counts = await Promise.all(backends.map(async (b) => (await b.stats()).connections.length));
    if (counts.every((n) => n === expected) || Date.now() > deadline) return counts;
    await sleep(100);
  }
}

export interface Acted {
  readonly checks: FaultCheck[];
  readonly figure: string;
  readonly settings: Record<string, string | number>;
}

/**
 * Sets up, lets the load warm up, runs `act`, stops the load and adds the bar "0 failed
 * calls" per path unless `expectFailures` (the ejection scenario's backend fails on purpose).
 */
export async function runThreePaths(context: FaultContext, options: ThreePathOptions, act: (setup: Setup) => Promise<Acted>, expectFailures = false): Promise<Omit<FaultResult, 'id' | 'title'>> {
  const rig = new FaultRig();
  try {
    const setup = await setUp(rig, options);
    await sleep(context.short ? 300 : 1000);
    const acted = await act(setup);
    await setup.load.stop();
    const zero = zeroFailures(setup);
    context.log(zero.figure);
    const checks = expectFailures ? acted.checks : [...zero.checks, ...acted.checks];
    return { figure: `${acted.figure}; ${zero.figure}`, checks, settings: { backends: BACKENDS, anchors: ANCHORS, loopsPerPath: LOOPS_PER_PATH, serverDelayMillis: SERVER_DELAY_MILLIS, ...acted.settings } };
  } finally {
    await rig.stop();
  }
}

