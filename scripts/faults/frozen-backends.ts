// Backends that stop answering without a word. Three backends under etcd (2 anchors
// each); the third sits behind a TCP proxy that, at the fault:
//   - frozen connections: stops forwarding on the connections it has (no RST, no FIN),
//     while new connections flow;
//   - black-holed host: the same, and new connections are accepted but get nothing back,
//     until the host heals (new connections flow again; those accepted meanwhile stay dead).
// Closed-loop callers with a 1 s deadline on the three paths (lease.client(), pool.client(),
// etcd:///), default options. Every call to a frozen connection fails, and only the third
// backend's connections freeze, so the latest start of a failed call is when the last
// call was sent to a frozen connection. Each runs against grpc-js and grpc-go backends.
// The full profile also runs today's behaviour (liveness off, no connect deadline) first,
// for the figure "before".
import type { AnchorPool, PoolOptions } from '../../lib/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { GoBackend } from '../../testkit/go-backend.js';
import { startTcpProxy } from '../../testkit/tcp-proxy.js';
import { check, sleep, type FaultCheck, type FaultContext, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';
import { describeFailures, failedCount, ThreePathLoad, type PathTally } from './three-path-load.js';

type Kind = 'grpc-js' | 'grpc-go';
type Fault = 'freeze' | 'blackhole';

const PREFIX = 'frozen/';
const ANCHORS = 2;
const DEADLINE_MILLIS = 1000;
/** The issue's bar: no call sent to a frozen connection later than this after the fault, and back this soon after healing. */
const BOUND_MILLIS = 5000;

interface AnyBackend {
  readonly name: string;
  readonly address: string;
  start(): Promise<void>;
  kill(): Promise<void> | void;
  connectionsOpen(): Promise<number>;
}

function backendOf(kind: Kind, name: string): AnyBackend {
  if (kind === 'grpc-go') {
    const go = new GoBackend({ name });
    return { name, get address() { return go.address; }, start: () => go.start(), kill: () => go.kill(), connectionsOpen: async () => (await go.stats()).connectionsOpen };
  }
  const js = new Backend({ name, delayMillis: 1 });
  return { name, get address() { return js.address; }, start: () => js.start(), kill: () => js.kill(), connectionsOpen: async () => (await js.stats()).connections.length };
}

interface RunResult {
  readonly tallies: PathTally[];
  readonly faultAt: number;
  readonly healAt: number | undefined;
  readonly liveness: { pings: number; frozen: number; connectTimeouts: number };
  /** The third backend's anchors in the pool after the run, by state. */
  readonly anchorsAfter: string;
  readonly connectionsAfter: number;
}

async function run(context: FaultContext, kind: Kind, fault: Fault, defaults: boolean): Promise<RunResult> {
  const rig = new FaultRig();
  try {
    const cluster = await rig.etcd(1);
    const etcd = rig.etcdClient(cluster);
    const backends = ['b1', 'b2', 'b3'].map((name) => backendOf(kind, name));
    rig.defer(() => Promise.all(backends.map((b) => b.kill())));
    await Promise.all(backends.map((b) => b.start()));
    const [b1, b2, b3] = backends as [AnyBackend, AnyBackend, AnyBackend];
    const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: Number(b3.address.split(':')[1]) });
    rig.defer(() => proxy.close());
    const addresses = [b1.address, b2.address, `127.0.0.1:${proxy.port}`];
    for (const [i, addr] of addresses.entries()) await etcd.put(`${PREFIX}b${i + 1}`).value(JSON.stringify({ addr, anchors: ANCHORS }));

    const off = defaults ? {} : { liveness: false as const, connectTimeoutMillis: 0 };
    const pool: AnchorPool = rig.pool({ target: `etcd:///${PREFIX}`, etcd: { hosts: cluster.hosts }, ...off } satisfies PoolOptions);
    const native = await rig.nativeClient(cluster, PREFIX, off);
    await pool.ready();
    const load = new ThreePathLoad(pool, native, { loops: context.short ? 6 : 16, deadlineMillis: DEADLINE_MILLIS });
    rig.defer(() => load.stop());
    await sleep(1000);

    const faultAt = performance.now();
    if (fault === 'freeze') proxy.pause();
    else proxy.blackhole();
    context.log(`${kind}: ${fault} at ${Math.round(faultAt)}${defaults ? '' : ' (liveness off)'}`);
    let healAt: number | undefined;
    if (fault === 'blackhole') {
      await sleep(context.short ? 8000 : 12_000);
      // Heals: new connections flow; the ones accepted while black-holed stay dead, so a hung attempt must be given up.
      proxy.pause();
      healAt = performance.now();
      await sleep(8000);
    } else {
      await sleep(context.short ? 10_000 : 20_000);
    }
    await load.stop();
    const states = pool.anchors().filter((a) => a.key === `${PREFIX}b3`).map((a) => a.state);
    return {
      tallies: load.tallies,
      faultAt,
      healAt,
      liveness: pool.stats().liveness,
      anchorsAfter: states.join(' '),
      connectionsAfter: await b3.connectionsOpen(),
    };
  } finally {
    await rig.stop();
  }
}

const ms = (n: number | undefined): string => (n === undefined ? 'never' : `${Math.round(n)} ms`);

/** When, after the fault, the last failed call started (its call was sent to a frozen connection). */
function lastFailedAfter(tally: PathTally, faultAt: number): number | undefined {
  const after = tally.failedAt.filter((at) => at >= faultAt - DEADLINE_MILLIS);
  return after.length === 0 ? undefined : Math.max(...after) - faultAt;
}

/** The first call b3 answered that started after `from`. */
function firstServedAfter(tally: PathTally, from: number): number | undefined {
  const served = tally.served.find((s) => s.server === 'b3' && s.at > from);
  return served === undefined ? undefined : served.at - from;
}

function describe(result: RunResult): string {
  const paths = result.tallies
    .map((t) => `${t.path}: ${t.calls} calls, failed ${describeFailures(t)}, last failed call started ${ms(lastFailedAfter(t, result.faultAt))} after the fault, b3 served again ${ms(firstServedAfter(t, result.healAt ?? result.faultAt))} after ${result.healAt === undefined ? 'the fault' : 'healing'}`)
    .join('; ');
  return `${paths}; pool: ${result.liveness.pings} pings, ${result.liveness.frozen} connections dropped, ${result.liveness.connectTimeouts} attempts given up; b3 anchors after: ${result.anchorsAfter}; b3 connections open at the server after: ${result.connectionsAfter}`;
}

function checksOf(result: RunResult, fault: Fault): FaultCheck[] {
  const checks: FaultCheck[] = [];
  for (const tally of result.tallies) {
    const last = lastFailedAfter(tally, result.faultAt);
    checks.push(check(`${tally.path}: no call sent to a frozen connection later than ${BOUND_MILLIS} ms after the fault`, last === undefined || last <= BOUND_MILLIS, `last failed call started ${ms(last)} after the fault`));
    const lateFailures = tally.failedAt.filter((at) => at - result.faultAt > BOUND_MILLIS).length;
    checks.push(check(`${tally.path}: calls failed only among those sent before then (none on the other backends)`, lateFailures === 0, `${failedCount(tally)} failed (${describeFailures(tally)}), ${lateFailures} of them started later`));
    if (fault === 'freeze') {
      const back = firstServedAfter(tally, result.faultAt);
      checks.push(check(`${tally.path}: the frozen backend serves again on a new connection within ${BOUND_MILLIS} ms`, back !== undefined && back <= BOUND_MILLIS, `first call b3 answered after the freeze started ${ms(back)} after it`));
    } else {
      const during = tally.served.filter((s) => s.server === 'b3' && s.at > result.faultAt && s.at < result.healAt!).length;
      checks.push(check(`${tally.path}: the black-holed key stays out of rotation while black-holed`, during === 0, `${during} calls answered by b3 between the fault and healing`));
      const back = firstServedAfter(tally, result.healAt!);
      checks.push(check(`${tally.path}: its anchors return within ${BOUND_MILLIS} ms after it heals`, back !== undefined && back <= BOUND_MILLIS, `first call b3 answered after healing started ${ms(back)} after it`));
    }
  }
  return checks;
}

function frozenScenario(id: string, title: string, kind: Kind, fault: Fault): FaultScenario {
  return {
    id,
    title,
    async run(context) {
      const before = context.short ? undefined : await run(context, kind, fault, false);
      const after = await run(context, kind, fault, true);
      const figure = `${before === undefined ? '' : `before (liveness off): ${describe(before)} || `}defaults: ${describe(after)}`;
      return {
        id,
        title,
        figure,
        checks: checksOf(after, fault),
        settings: { backend: kind, anchors: ANCHORS, loopsPerPath: context.short ? 6 : 16, deadlineMillis: DEADLINE_MILLIS, faultMillis: fault === 'freeze' ? (context.short ? 10_000 : 20_000) : context.short ? 8000 : 12_000 },
      };
    },
  };
}

export const frozenConnectionsScenario = frozenScenario('frozen-connections', 'a backend\'s connections freeze (no RST; new connections flow), grpc-js backends', 'grpc-js', 'freeze');
export const frozenConnectionsGoScenario = frozenScenario('frozen-connections-go', 'a backend\'s connections freeze (no RST; new connections flow), grpc-go backends', 'grpc-go', 'freeze');
export const blackHoledHostScenario = frozenScenario('black-holed-host', 'a backend host is black-holed (new connections hang too), then heals, grpc-js backends', 'grpc-js', 'blackhole');
export const blackHoledHostGoScenario = frozenScenario('black-holed-host-go', 'a backend host is black-holed (new connections hang too), then heals, grpc-go backends', 'grpc-go', 'blackhole');
