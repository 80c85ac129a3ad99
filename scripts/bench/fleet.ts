// Fleet: K client processes, each with a pool on the same prefix, once connected to etcd
// directly and once through one `etcd grpc-proxy`, which coalesces their identical
// watches into one. Per case: the watchers and watch streams etcd holds (its /metrics,
// less what it held before), etcd's CPU time over the case (/proc/<pid>/stat), and the
// latency from a put to the first lease on the new key, measured in every process over a
// series of puts (the put's wall-clock time subtracted from each process's report).
// The floor runs the same puts against K processes that hold no pool, only a bare etcd3
// watch and one node:http2 session per key (fleet-floor-child.ts): what this machine
// allows K processes at all. The processes' own CPU time per put is reported for both, so
// the latencies can be read against the machine's cores.
//
//   npm run bench -- --only fleet [--quick]
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { startCluster } from '../../etcd-dev/etcd-dev.mjs';
import { Backend } from '../../testkit/echo/backend.js';
import { startGrpcProxy } from '../../testkit/grpc-proxy.js';
import { quantile, summarize, type BenchContext, type Scenario, type ScenarioResult, type ScenarioRow } from './scenario.js';
import { etcdGauge as gauge } from '../../testkit/etcd-metrics.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const POOL_CHILD = path.join(HERE, 'fleet-child.js');
const FLOOR_CHILD = path.join(HERE, 'fleet-floor-child.js');
/** Once every process is ready: a pause for their start-up to finish, then a quiet period whose CPU is measured. */
const IDLE_SETTLE_MILLIS = 2000;
const IDLE_MILLIS = 5000;
/** After a key's delete, before the next put: every process has closed the key's connection. */
const SETTLE_MILLIS = 500;
const PREFIX = 'fleet/';
const P99_BAR_MILLIS = 50;
const CLK_TCK = 100;

/** User + system CPU time of a process so far, in ms (Linux). */
function cpuMillis(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

const now = (): number => performance.timeOrigin + performance.now();

interface CaseResult {
  readonly watchers: number;
  readonly streams: number;
  readonly etcdCpuMillis: number;
  /** The proxy's CPU over the puts, when the case runs through one. */
  readonly proxyCpuMillis: number | undefined;
  readonly latencies: number[];
  /** Put → the key in the process's pool (the watch's delivery, before any connection). */
  readonly seen: number[];
  readonly missing: number;
  /** The K processes' CPU time over the puts, per process and put (ms). */
  readonly cpuPerPutMillis: number;
  /** Their CPU time per process and second while nothing changes (the leader check, timers). */
  readonly idleCpuMillisPerSecond: number;
}

interface CaseSetup {
  readonly name: string;
  /** The process to run K times, and its arguments after the hosts and the prefix. */
  readonly child: string;
  readonly args?: readonly string[];
  readonly hosts: readonly string[];
  /** The proxy's pid, when the case runs through one: its CPU is measured too. */
  readonly proxyPid?: number;
}

async function runCase(context: BenchContext, setup: CaseSetup, clientUrl: string, etcdPid: number, writer: Etcd3, backend: Backend, processes: number, puts: number): Promise<CaseResult> {
  const { name, child, hosts } = setup;
  const [watchersBefore, streamsBefore] = [await gauge(clientUrl, 'etcd_debugging_mvcc_watcher_total'), await gauge(clientUrl, 'etcd_debugging_mvcc_watch_stream_total')];
  const children: ChildProcess[] = [];
  const reports = new Map<string, number[]>();
  const sightings = new Map<string, number[]>();
  try {
    const ready: Promise<void>[] = [];
    for (let i = 0; i < processes; i++) {
      const worker = fork(child, [hosts.join(','), PREFIX, ...(setup.args ?? [])], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      children.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.once('exit', (code) => reject(new Error(`fleet process ${i} exited (${code}) before it was ready`)));
          worker.on('message', (m: { type: string; key?: string; at?: number }) => {
            if (m.type === 'ready') resolve();
            if (m.type === 'leased') reports.get(m.key!)?.push(m.at!);
            if (m.type === 'seen') sightings.get(m.key!)?.push(m.at!);
          });
        }),
      );
    }
    await Promise.all(ready);
    context.log(`fleet: ${name}: ${processes} processes ready`);
    const childrenCpu = (): number => children.reduce((sum, c) => sum + cpuMillis(c.pid!), 0);
    // --tiny: the same measurement over a tenth of the time (the smoke test's figures are meaningless anyway).
    const idleScale = context.tiny ? 0.1 : 1;
    await new Promise((r) => setTimeout(r, IDLE_SETTLE_MILLIS * idleScale));
    const idleBefore = childrenCpu();
    await new Promise((r) => setTimeout(r, IDLE_MILLIS * idleScale));
    const idleCpuMillisPerSecond = (childrenCpu() - idleBefore) / processes / ((IDLE_MILLIS * idleScale) / 1000);
    const cpuBefore = cpuMillis(etcdPid);
    const proxyCpuBefore = setup.proxyPid === undefined ? 0 : cpuMillis(setup.proxyPid);
    const childrenCpuBefore = childrenCpu();
    const latencies: number[] = [];
    const seen: number[] = [];
    let missing = 0;
    for (let i = 0; i < puts; i++) {
      const key = `${PREFIX}k${i}`;
      const arrivals: number[] = [];
      reports.set(key, arrivals);
      const sighted: number[] = [];
      sightings.set(key, sighted);
      const putAt = now();
      await writer.put(key).value(`${backend.address}#1`);
      const deadline = Date.now() + 5000;
      while (arrivals.length < processes && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      latencies.push(...arrivals.map((at) => at - putAt));
      seen.push(...sighted.map((at) => at - putAt));
      missing += processes - arrivals.length;
      await writer.delete().key(key);
      await new Promise((r) => setTimeout(r, SETTLE_MILLIS));
    }
    const cpuPerPutMillis = (childrenCpu() - childrenCpuBefore) / (processes * puts);
    const watchers = (await gauge(clientUrl, 'etcd_debugging_mvcc_watcher_total')) - watchersBefore;
    const streams = (await gauge(clientUrl, 'etcd_debugging_mvcc_watch_stream_total')) - streamsBefore;
    const etcdCpuMillis = cpuMillis(etcdPid) - cpuBefore;
    const proxyCpuMillis = setup.proxyPid === undefined ? undefined : cpuMillis(setup.proxyPid) - proxyCpuBefore;
    context.log(`fleet: ${name}: ${watchers} watchers and ${streams} watch streams at etcd; first lease p50 ${quantile(latencies, 0.5).toFixed(1)} ms, p99 ${quantile(latencies, 0.99).toFixed(1)} ms; key seen p50 ${quantile(seen, 0.5).toFixed(1)} ms, p99 ${quantile(seen, 0.99).toFixed(1)} ms; etcd CPU ${etcdCpuMillis.toFixed(0)} ms${proxyCpuMillis === undefined ? '' : `, proxy CPU ${proxyCpuMillis.toFixed(0)} ms`}; ${cpuPerPutMillis.toFixed(1)} ms of CPU per process and put, ${idleCpuMillisPerSecond.toFixed(1)} ms per process and second when idle`);
    return { watchers, streams, etcdCpuMillis, proxyCpuMillis, latencies, seen, missing, cpuPerPutMillis, idleCpuMillisPerSecond };
  } finally {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => (clearTimeout(timer), resolve()));
            child.send({ type: 'stop' }, () => undefined);
          }),
      ),
    );
  }
}

async function run(context: BenchContext): Promise<ScenarioResult> {
  const processes = context.tiny ? 3 : context.quick ? 10 : 50;
  const puts = context.tiny ? 3 : context.quick ? 10 : 20;
  const cluster = await startCluster({ members: 1 });
  const backend = new Backend({ name: 'fleet' });
  const writer = new Etcd3({ hosts: cluster.hosts });
  const member = cluster.members[0]!;
  let proxy: Awaited<ReturnType<typeof startGrpcProxy>> | undefined;
  try {
    await backend.start();
    await writer.put(`${PREFIX}seed`).value(`${backend.address}#1`);
    const floor = await runCase(context, { name: 'floor', child: FLOOR_CHILD, hosts: cluster.hosts }, member.clientUrl, member.pid, writer, backend, processes, puts);
    const direct = await runCase(context, { name: 'direct', child: POOL_CHILD, hosts: cluster.hosts }, member.clientUrl, member.pid, writer, backend, processes, puts);
    proxy = await startGrpcProxy(cluster.hosts);
    // As the README sets up a fleet behind a proxy: the leader check off.
    const proxied = await runCase(context, { name: 'grpc-proxy', child: POOL_CHILD, args: ['0'], hosts: [proxy.host], proxyPid: proxy.pid }, member.clientUrl, member.pid, writer, backend, processes, puts);
    const row = (name: string, c: CaseResult): ScenarioRow => ({
      contender: name,
      values: {
        latencyMs: summarize(c.latencies),
        p99Ms: summarize([quantile(c.latencies, 0.99)]),
        seenMs: summarize(c.seen),
        seenP99Ms: summarize([quantile(c.seen, 0.99)]),
        watchers: summarize([c.watchers]),
        watchStreams: summarize([c.streams]),
        etcdCpuMs: summarize([c.etcdCpuMillis]),
        ...(c.proxyCpuMillis === undefined ? {} : { proxyCpuMs: summarize([c.proxyCpuMillis]) }),
        missing: summarize([c.missing]),
        cpuPerPutMs: summarize([c.cpuPerPutMillis]),
        idleCpuMs: summarize([c.idleCpuMillisPerSecond]),
      },
    });
    const bar = (name: string, c: CaseResult) => ({
      label: `${name}: put → first lease p99 <= ${P99_BAR_MILLIS} ms at K = ${processes}`,
      pass: quantile(c.latencies, 0.99) <= P99_BAR_MILLIS && c.missing === 0,
      detail: `floor (bare watch + HTTP/2 session, same run) p99 ${quantile(floor.latencies, 0.99).toFixed(1)} ms; p50 ${quantile(c.latencies, 0.5).toFixed(1)} ms, p99 ${quantile(c.latencies, 0.99).toFixed(1)} ms over ${c.latencies.length} leases (${processes} processes × ${puts} puts), ${c.missing} missing after 5 s; of that, put → key in the pool p50 ${quantile(c.seen, 0.5).toFixed(1)} ms, p99 ${quantile(c.seen, 0.99).toFixed(1)} ms (the rest is the new anchor's connection)`,
    });
    return {
      id: 'fleet',
      title: 'Fleet: K processes on one prefix, directly and through etcd grpc-proxy',
      settings: { processes, puts, etcdMembers: 1, proxy: 'etcd grpc-proxy start (the etcd binary)', cores: os.cpus().length },
      metrics: [
        { name: 'latencyMs', unit: 'ms, put → first lease (median of all)', higherIsBetter: false },
        { name: 'p99Ms', unit: 'ms, p99', higherIsBetter: false },
        { name: 'seenMs', unit: 'ms, put → key in the pool (median of all)', higherIsBetter: false },
        { name: 'seenP99Ms', unit: 'ms, p99', higherIsBetter: false },
        { name: 'watchers', unit: 'watchers at etcd', higherIsBetter: false },
        { name: 'watchStreams', unit: 'watch streams at etcd', higherIsBetter: false },
        { name: 'etcdCpuMs', unit: 'ms of etcd CPU over the puts', higherIsBetter: false },
        { name: 'proxyCpuMs', unit: 'ms of grpc-proxy CPU over the puts', higherIsBetter: false },
        { name: 'missing', unit: 'first leases not seen within 5 s', higherIsBetter: false },
        { name: 'cpuPerPutMs', unit: 'ms of CPU per process and put', higherIsBetter: false },
        { name: 'idleCpuMs', unit: 'ms of CPU per process and second, idle', higherIsBetter: false },
      ],
      primary: 'latencyMs',
      baseline: 'floor',
      groups: [{ name: '', rows: [row('floor', floor), row('direct', direct), row('grpc-proxy', proxied)] }],
      bars: [
        { label: `through the proxy etcd carries <= 2 watchers for the prefix (K = ${processes})`, pass: proxied.watchers <= 2, detail: `${proxied.watchers} watcher(s) on ${proxied.streams} stream(s) through the proxy; directly ${direct.watchers} on ${direct.streams}` },
        bar('direct', direct),
        bar('grpc-proxy', proxied),
      ],
      notes: [
        `etcd CPU over the puts: directly ${direct.etcdCpuMillis.toFixed(0)} ms, through the proxy ${proxied.etcdCpuMillis.toFixed(0)} ms, and the proxy's own ${proxied.proxyCpuMillis?.toFixed(0)} ms.`,
        'The pools run with default options directly, and with leaderCheckMillis 0 through the proxy, as the README sets up a fleet behind one; the idle CPU per process shows what the check costs.',
        'All processes, etcd and the proxy share this machine\'s cores; latencies include the IPC report to the parent only as a timestamp, not as delay.',
        `Floor: K processes with a bare etcd3 watch and one node:http2 session per key, no pool; the bar's ${P99_BAR_MILLIS} ms is out of reach for any library when the floor itself misses it.`,
        `CPU per process and put (the put, the first lease, the delete and its close): floor ${floor.cpuPerPutMillis.toFixed(1)} ms, pool ${direct.cpuPerPutMillis.toFixed(1)} ms directly, ${proxied.cpuPerPutMillis.toFixed(1)} ms through the proxy; K of them share ${os.cpus().length} cores.`,
        `Each put waits for every first lease (at most 5 s), then the key is deleted and the fleet settles ${SETTLE_MILLIS} ms before the next put.`,
      ],
    };
  } finally {
    writer.close();
    await proxy?.stop();
    await backend.kill();
    await cluster.stop();
  }
}

export const fleetScenario: Scenario = { id: 'fleet', title: 'Fleet of processes on one prefix, direct and through etcd grpc-proxy', run };
