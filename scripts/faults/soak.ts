// Fault 8: churn soak. 50 puts/deletes a second over 200 keys while leases flow, for 10
// minutes by default (`--minutes`), 30 s in `npm run test:e2e`. Memory (every field of
// process.memoryUsage(), after a forced GC) is sampled after a warm-up and then every
// 5 minutes (every sixth of the run when it is shorter), with the pool's open channels,
// the process's handles and its open sockets; RSS is also read every 10 s without a
// forced GC (the trace), split into V8's heap pages, other anonymous memory and files.
// The heap must stay flat (within 10%); in a run of 10 minutes or more, the trend of
// the trace over the last third must rise at most 5% (levelled off, not leaking); and
// once the churn stops the open channels must equal the anchors etcd asks for.
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { AnchorPool } from '../../lib/index.js';
import { ChurnWriter } from './churn-writer.js';
import { convergePool, describeDiff } from '../../testkit/etcd-truth.js';
import { check, sleep, type FaultScenario } from './fault.js';
import { LeaseLoad, percent } from './lease-load.js';
import { FaultRig } from './rig.js';
import { trendGrowth } from '../../testkit/trend.js';

const TRACE_MILLIS = 10_000;

interface Sample {
  readonly label: string;
  readonly atSeconds: number;
  readonly heapMiB: number;
  readonly rssMiB: number;
  /** V8's reserved heap, memory of C++ objects bound to JS (Buffers…), and ArrayBuffers among them. */
  readonly heapTotalMiB: number;
  readonly externalMiB: number;
  readonly arrayBuffersMiB: number;
  /** grpc-js channels the pool holds open: active plus draining anchors. */
  readonly channels: number;
  readonly wanted: number;
  /** Active handles by type (timers, …), as Node reports them. */
  readonly handles: Record<string, number>;
  readonly sockets: number;
}

/** RSS split by what holds it (Linux): V8's committed heap pages, the rest of the anonymous memory, files mapped in. */
interface MemorySplit {
  readonly v8MiB: number;
  readonly nativeMiB: number;
  readonly fileMiB: number;
}

function memorySplit(): MemorySplit {
  const v8Bytes = v8.getHeapSpaceStatistics().reduce((sum, space) => sum + space.physical_space_size, 0);
  let anonBytes = NaN;
  let rssBytes = NaN;
  try {
    const rollup = fs.readFileSync('/proc/self/smaps_rollup', 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? NaN) * 1024;
    anonBytes = field('Anonymous');
    rssBytes = field('Rss');
  } catch {
    // not Linux: the split stays NaN
  }
  return { v8MiB: mib(v8Bytes), nativeMiB: mib(anonBytes - v8Bytes), fileMiB: mib(rssBytes - anonBytes) };
}

/** global.gc without starting node with --expose-gc (the flag can be set at run time). */
function forcedGc(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

function countHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** Open socket file descriptors of this process (Linux): grpc-js unrefs its sockets, so Node's handle list does not show them. */
function openSockets(): number {
  try {
    return fs.readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
      } catch {
        return false; // closed between the listing and the readlink
      }
    }).length;
  } catch {
    return -1;
  }
}

const mib = (bytes: number): number => Math.round((bytes / 2 ** 20) * 10) / 10;

function sample(label: string, startedAt: number, pool: AnchorPool, gc: () => void): Sample {
  gc();
  gc(); // a second pass collects what the first one's finalizers released
  const memory = process.memoryUsage();
  const stats = pool.stats();
  return {
    label,
    atSeconds: Math.round((Date.now() - startedAt) / 1000),
    heapMiB: mib(memory.heapUsed),
    rssMiB: mib(memory.rss),
    heapTotalMiB: mib(memory.heapTotal),
    externalMiB: mib(memory.external),
    arrayBuffersMiB: mib(memory.arrayBuffers),
    channels: openChannels(stats),
    wanted: stats.anchors.wanted,
    handles: countHandles(),
    sockets: openSockets(),
  };
}

/** Active plus draining anchors: the grpc-js channels the pool holds open. */
const openChannels = (stats: ReturnType<AnchorPool['stats']>): number => stats.anchors.active + stats.anchors.draining;

/** `min–max` of some readings, or `none`. */
const span = (values: readonly number[]): string => (values.length === 0 ? 'none' : `${Math.min(...values)}–${Math.max(...values)}`);

/** A light reading between the samples (no forced GC), to tell a trend from a swing. */
interface TracePoint extends MemorySplit {
  readonly atSeconds: number;
  /** Taken within a trace interval of a forced GC, whose release of V8's pages it would show: left out of the trend. */
  readonly afterForcedGc: boolean;
  readonly rssMiB: number;
  readonly channels: number;
}

function tracePoint(startedAt: number, pool: AnchorPool, lastForcedGcAt: number): TracePoint {
  const stats = pool.stats();
  return { atSeconds: Math.round((Date.now() - startedAt) / 1000), afterForcedGc: Date.now() - lastForcedGcAt < TRACE_MILLIS * 1.5, rssMiB: mib(process.memoryUsage.rss()), channels: openChannels(stats), ...memorySplit() };
}

const showPoint = (p: TracePoint): string => `trace ${p.atSeconds} s: RSS ${p.rssMiB} MiB (V8 heap ${p.v8MiB}, other anonymous ${p.nativeMiB}, files ${p.fileMiB}), ${p.channels} channels`;

const show = (s: Sample): string => `${s.label} (${s.atSeconds} s) heap ${s.heapMiB} of ${s.heapTotalMiB} MiB, external ${s.externalMiB} (array buffers ${s.arrayBuffersMiB}) MiB, RSS ${s.rssMiB} MiB, ${s.channels} channels for ${s.wanted} anchors wanted, ${s.sockets} open sockets, ${s.handles['Timeout'] ?? 0} timers`;

export const soakScenario: FaultScenario = {
  id: 'soak',
  title: 'churn soak: 50 writes/s over 200 keys with leases flowing',
  async run(context) {
    const prefix = 'soak/';
    const seconds = context.minutes !== undefined ? context.minutes * 60 : context.short ? 30 : 600;
    // The first sample waits for the JIT and the connection set to settle.
    const warmupSeconds = Math.max(5, Math.round(seconds / 10));
    const drainTimeoutMillis = 1000;
    const gc = forcedGc();
    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(1);
      const backends = await rig.backends('s1', 's2', 's3');
      const writerClient = rig.etcdClient(cluster);
      const truthClient = rig.etcdClient(cluster);
      const writer = new ChurnWriter(writerClient, { prefix, keys: 200, opsPerSecond: 50, addresses: backends.map((b) => b.address), maxAnchors: 3, seed: 11 });
      rig.defer(() => writer.stop());
      await writer.prefill();
      const pool = rig.pool({ target: `etcd:///${prefix}`, etcd: { hosts: cluster.hosts }, drainTimeoutMillis });
      await pool.ready();
      const load = new LeaseLoad(pool, 8);
      rig.defer(() => load.stop());
      writer.start();
      const startedAt = Date.now();
      const samples: Sample[] = [];
      const trace: TracePoint[] = [];
      let lastForcedGcAt = 0;
      const forcedSample = (label: string): Sample => {
        const taken = sample(label, startedAt, pool, gc);
        lastForcedGcAt = Date.now();
        return taken;
      };
      const tracer = setInterval(() => {
        trace.push(tracePoint(startedAt, pool, lastForcedGcAt));
        context.log(showPoint(trace.at(-1)!));
      }, TRACE_MILLIS);
      rig.defer(() => clearInterval(tracer));

      await sleep(warmupSeconds * 1000);
      samples.push(forcedSample('start'));
      context.log(show(samples[0]!));
      const everySeconds = Math.min(300, (seconds - warmupSeconds) / 6);
      for (let at = warmupSeconds + everySeconds; at < seconds - 1; at += everySeconds) {
        await sleep(Math.max(0, startedAt + at * 1000 - Date.now()));
        samples.push(forcedSample(`${Math.round(at)} s`));
        context.log(show(samples.at(-1)!));
      }
      await sleep(Math.max(0, startedAt + seconds * 1000 - Date.now()));
      samples.push(forcedSample('end'));
      clearInterval(tracer);
      context.log(show(samples.at(-1)!));

      await writer.stop();
      const converged = await convergePool(pool, truthClient, prefix, 15_000);
      await sleep(drainTimeoutMillis + 500); // anchors removed by the last writes finish draining
      const settled = sample('settled', startedAt, pool, gc);
      const serverSide = (await Promise.all(backends.map((b) => b.stats()))).reduce((n, s) => n + s.connections.length, 0);
      await load.stop();
      const counts = load.take();

      const start = samples[0]!;
      const end = samples.at(-1)!;
      const middle = samples[Math.floor(samples.length / 2)]!;
      const growth = (end.heapMiB - start.heapMiB) / start.heapMiB;
      const middleGrowth = (middle.heapMiB - start.heapMiB) / start.heapMiB;
      // RSS over the last third, from the trace: between two collections V8's heap takes
      // back the pages a forced GC released (RSS swings by a third within seconds), so two
      // samples measure that swing; the trend through every undisturbed reading does not.
      const lateTrace = trace.filter((p) => p.atSeconds >= (2 * seconds) / 3 && !p.afterForcedGc);
      const lateRssGrowth = trendGrowth(lateTrace.map((p) => ({ x: p.atSeconds, y: p.rssMiB })), seconds / 3);
      const lateRss = lateTrace.map((p) => p.rssMiB);
      const attempts = counts.acquired + counts.acquireFailures;
      return {
        id: 'soak',
        title: soakScenario.title,
        figure: `${seconds} s, ${writer.ops} writes, ${counts.acquired} leases (${percent(counts.acquired, attempts)} of acquires): heap ${samples.map((x) => x.heapMiB).join(' → ')} MiB (${(growth * 100).toFixed(1)}%), RSS ${samples.map((x) => x.rssMiB).join(' → ')} MiB after forced GCs; ${lateRss.length === 0 ? 'no RSS trace in the last third (too short a run)' : `RSS trace over the last third ${span(lateRss)} MiB in ${lateRss.length} readings, trend ${(lateRssGrowth * 100).toFixed(1)}%`}, channels ${samples.map((x) => x.channels).join(' → ')}, V8 heap reserved ${samples.map((x) => x.heapTotalMiB).join(' → ')} MiB, external ${samples.map((x) => x.externalMiB).join(' → ')} MiB; settled: ${settled.channels} channels for ${settled.wanted} anchors, ${serverSide} connections counted by the backends, ${settled.sockets} open sockets`,
        checks: [
          check('the churn ran at about 50 writes/s', writer.ops >= 40 * seconds, `${writer.ops} writes in ${seconds} s (${writer.failures} failed)`),
          check('heap flat within 10% (start → middle → end, forced GC)', Math.abs(growth) <= 0.1 && Math.abs(middleGrowth) <= 0.1, samples.map(show).join('; ')),
          // Only for real soaks: over the short profile's 30 s, RSS is still settling and swings with the churn's anchor count.
          ...(seconds >= 600
            ? [check('RSS grows at most 5% over the last third of the run (trend of the 10 s trace)', lateRssGrowth <= 0.05, `trend ${(lateRssGrowth * 100).toFixed(1)}% over ${lateTrace.length} readings, ${lateTrace[0]?.rssMiB} MiB at ${lateTrace[0]?.atSeconds} s → ${lateTrace.at(-1)?.rssMiB} MiB at ${lateTrace.at(-1)?.atSeconds} s; V8 heap in memory ${span(lateTrace.map((p) => p.v8MiB))} MiB, other anonymous ${span(lateTrace.map((p) => p.nativeMiB))} MiB`)]
            : []),
          check('channels equal the anchors wanted once the churn stops', converged.agreed && settled.channels === settled.wanted && settled.wanted > 0, `${settled.channels} channels, ${settled.wanted} wanted; endpoints ${describeDiff(converged.endpoints)}`),
          // Besides one socket per anchor: the pool's and the scenario's etcd clients and the backends' IPC.
          check('no connection left behind (server-side count = channels; sockets ≤ channels + 8)', serverSide === settled.channels && settled.sockets <= settled.channels + 8, `backends count ${serverSide} connections; ${settled.sockets} open sockets in this process; ${settled.channels} channels`),
          check('leases flowed the whole time', counts.acquireFailures === 0 && counts.callFailures === 0 && counts.acquired > 0, `${counts.acquired} acquired, ${counts.acquireFailures} failed ${JSON.stringify(counts.acquireErrors)}; ${counts.callFailures} calls failed`),
        ],
        settings: { seconds, keys: 200, writesPerSecond: 50, warmupSeconds, loops: 8, drainTimeoutMillis },
      };
    } finally {
      await rig.stop();
    }
  },
};
