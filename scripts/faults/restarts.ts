// Issue 12: backends that age out their connections, shut down gracefully, or restart one
// by one, under load on all three ways of calling (restart-load.ts), with 0 failed calls
// as the bar. Real etcd (one member), real grpc-js backends in child processes, 3 keys
// with 2 anchors each; the pool and the etcd:/// channel watch the same prefix.
import * as grpc from '@grpc/grpc-js';
import type { AnchorPool } from '../../lib/index.js';
import { registerAnchorpool } from '../../lib/grpc/index.js';
import { Backend, type BackendOptions } from '../../testkit/echo/backend.js';
import { EchoClient } from '../../testkit/echo/echo-service.js';
import { check, sleep, type FaultCheck, type FaultContext, type FaultResult, type FaultScenario } from './fault.js';
import { describeFailures, failedCount, RestartLoad } from './restart-load.js';
import { FaultRig } from './rig.js';

const BACKENDS = 3;
const ANCHORS = 2;
const LOOPS_PER_PATH = 8;
const SERVER_DELAY_MILLIS = 5;
const PREFIX = 'restarts/';

interface Setup {
  readonly rig: FaultRig;
  readonly backends: Backend[];
  readonly pool: AnchorPool;
  readonly native: grpc.Client;
  readonly load: RestartLoad;
  put(key: string, backend: Backend): Promise<void>;
  del(key: string): Promise<void>;
}

const keyOf = (i: number): string => `${PREFIX}b${i + 1}`;

async function setUp(rig: FaultRig, backendOptions: Omit<BackendOptions, 'name'>, health: boolean): Promise<Setup> {
  const cluster = await rig.etcd(1);
  const etcd = rig.etcdClient(cluster);
  const backends = Array.from({ length: BACKENDS }, (_, i) => new Backend({ name: `b${i + 1}`, delayMillis: SERVER_DELAY_MILLIS, ...backendOptions }));
  rig.defer(() => Promise.all(backends.map((b) => b.kill())));
  await Promise.all(backends.map((b) => b.start()));
  const put = async (key: string, backend: Backend): Promise<void> => void (await etcd.put(key).value(JSON.stringify({ addr: backend.address, anchors: ANCHORS })));
  const del = async (key: string): Promise<void> => void (await etcd.delete().key(key));
  for (const [i, b] of backends.entries()) await put(keyOf(i), b);
  const pool = rig.pool({ target: `etcd:///${PREFIX}`, etcd: { hosts: cluster.hosts }, drainTimeoutMillis: 2000, ...(health && { healthCheck: {} }) });
  registerAnchorpool({ etcd: { hosts: cluster.hosts } });
  const policy = { anchored_round_robin: health ? { healthCheckConfig: { serviceName: '' } } : {} };
  const native = new EchoClient(`etcd:///${PREFIX}`, grpc.credentials.createInsecure(), { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [policy] }) });
  rig.defer(() => native.close());
  await pool.ready();
  await new Promise<void>((resolve, reject) => native.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  const load = new RestartLoad(pool, native, LOOPS_PER_PATH);
  rig.defer(() => load.stop());
  return { rig, backends, pool, native, load, put, del };
}

/** One check per path: 0 failed calls; the figure lists calls and failures by code. */
function zeroFailures(setup: Setup): { checks: FaultCheck[]; figure: string } {
  const checks = setup.load.tallies.map((t) => check(`0 failed calls through ${t.path}`, failedCount(t) === 0, `${t.calls} calls, failed: ${describeFailures(t)}${t.examples.length ? ` (${t.examples.join(' | ')})` : ''}`));
  const figure = setup.load.tallies.map((t) => `${t.path} ${t.calls} calls / ${describeFailures(t)} failed`).join('; ');
  return { checks, figure };
}

/** Polls every backend's server-side connection count until each holds `expected`, or `timeoutMillis` passes. */
async function connectionsSettle(backends: Backend[], expected: number, timeoutMillis: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    const counts = await Promise.all(backends.map(async (b) => (await b.stats()).connections.length));
    if (counts.every((n) => n === expected) || Date.now() > deadline) return counts;
    await sleep(100);
  }
}

async function scenario(context: FaultContext, backendOptions: Omit<BackendOptions, 'name'>, health: boolean, act: (setup: Setup) => Promise<{ checks: FaultCheck[]; figure: string; settings: Record<string, string | number> }>): Promise<Omit<FaultResult, 'id' | 'title'>> {
  const rig = new FaultRig();
  try {
    const setup = await setUp(rig, backendOptions, health);
    await sleep(context.short ? 300 : 1000);
    const acted = await act(setup);
    await setup.load.stop();
    const zero = zeroFailures(setup);
    context.log(zero.figure);
    return { figure: `${acted.figure}; ${zero.figure}`, checks: [...zero.checks, ...acted.checks], settings: { backends: BACKENDS, anchors: ANCHORS, loopsPerPath: LOOPS_PER_PATH, serverDelayMillis: SERVER_DELAY_MILLIS, ...acted.settings } };
  } finally {
    await rig.stop();
  }
}

export const connectionAgeScenario: FaultScenario = {
  id: 'connection-age',
  title: 'backends cycle their connections (max_connection_age) under load: 0 failed calls, N connections after',
  async run(context) {
    const ageMillis = context.short ? 1000 : 2000;
    const graceMillis = 1000;
    const runMillis = context.short ? 4000 : 12_000;
    const result = await scenario(context, { maxConnectionAge: { millis: ageMillis, graceMillis } }, false, async (setup) => {
      await sleep(runMillis);
      await setup.load.stop();
      // The pool's 2 anchors and the channel's 2 subchannels per backend.
      const expected = 2 * ANCHORS;
      const counts = await connectionsSettle(setup.backends, expected, ageMillis + graceMillis + 3000);
      const cycles = Math.floor(runMillis / ageMillis);
      return {
        figure: `${cycles} connection lifetimes of ${ageMillis} ms in ${runMillis / 1000} s; connections per backend after: ${counts.join('/')}`,
        checks: [check(`each backend holds its ${expected} connections again (2 pool anchors + 2 subchannels), counted by the server`, counts.every((n) => n === expected), counts.join('/'))],
        settings: { maxConnectionAgeMillis: ageMillis, graceMillis, runMillis },
      };
    });
    return { id: this.id, title: this.title, ...result };
  },
};

export const gracefulShutdownScenario: FaultScenario = {
  id: 'graceful-shutdown',
  title: 'one of three backends calls tryShutdown() under load, its key stays: 0 failed calls',
  async run(context) {
    const afterMillis = context.short ? 1500 : 4000;
    const result = await scenario(context, {}, false, async (setup) => {
      const victim = setup.backends[1]!;
      await Promise.all(setup.backends.map((b) => b.resetStats()));
      const down = await victim.shutdown();
      context.log(`b2 shut down in ${Math.round(down.millis)} ms after serving ${down.calls} calls`);
      await sleep(afterMillis);
      const others = await Promise.all([setup.backends[0]!, setup.backends[2]!].map(async (b) => (await b.stats()).calls));
      return {
        figure: `b2 drained in ${Math.round(down.millis)} ms (${down.calls} calls served since the start); b1/b3 served ${others.join('/')} calls after`,
        checks: [check('the other backends carried the load after the shutdown', others.every((n) => n > 0), others.join('/'))],
        settings: { afterMillis },
      };
    });
    return { id: this.id, title: this.title, ...result };
  },
};

async function rollingRestart(context: FaultContext, health: boolean, setup: Setup) {
  const waitMillis = context.short ? 500 : 1000;
  const steps: string[] = [];
  for (let i = 0; i < BACKENDS; i++) {
    const old = setup.backends[i]!;
    const key = keyOf(i);
    const replacement = new Backend({ name: `b${i + 1}`, delayMillis: SERVER_DELAY_MILLIS });
    setup.rig.defer(() => replacement.kill());
    if (health) {
      // A real deploy: fail the health check, wait for the clients to move, stop, start anew.
      await old.setHealth('NOT_SERVING');
      await sleep(waitMillis);
      await old.shutdown();
      await replacement.start();
      await setup.put(key, replacement);
    } else {
      await setup.del(key);
      await sleep(waitMillis);
      await old.shutdown();
      await replacement.start();
      await setup.put(key, replacement);
    }
    setup.backends[i] = replacement;
    await sleep(waitMillis);
    steps.push(`${key} ${old.port}→${replacement.port}`);
  }
  const calls = await Promise.all(setup.backends.map(async (b) => (await b.stats()).calls));
  return {
    figure: `${steps.join(', ')}; new processes served ${calls.join('/')} calls`,
    checks: [check('every new process serves calls', calls.every((n) => n > 0), calls.join('/'))],
    settings: { waitMillis },
  };
}

export const rollingRestartScenario: FaultScenario = {
  id: 'rolling-restart',
  title: 'every backend in turn: key deleted, drained, shut down, a new process on a new port registered: 0 failed calls',
  async run(context) {
    const result = await scenario(context, {}, false, (setup) => rollingRestart(context, false, setup));
    return { id: this.id, title: this.title, ...result };
  },
};

export const rollingRestartHealthScenario: FaultScenario = {
  id: 'rolling-restart-health',
  title: 'every backend in turn with health checks on: NOT_SERVING, wait, shut down, a new process on a new port: 0 failed calls',
  async run(context) {
    const result = await scenario(context, {}, true, (setup) => rollingRestart(context, true, setup));
    return { id: this.id, title: this.title, ...result };
  },
};
