// Stream-capped server: what a client gets from one backend that allows 16 concurrent
// streams per connection (`grpc.max_concurrent_streams`) and takes 10 ms per call.
// The same offered load — 128 loops of back-to-back unary Echo calls — goes through:
//   one-connection  one grpc-js channel with its own connection (the baseline)
//   anchorpool      a lease pool, 4 anchors × 16 leases = 64 slots; the other callers
//                   wait in the pool (its waiter count is sampled during the run)
//   anchorpool+health  the same with health checks on: each connection carries its
//                   grpc.health.v1 Watch, so 15 leases + 1 health stream per connection
//   anchorpool-grow a lease pool on a key at anchors 1, maxAnchors 8 (`addr#1-8`): it opens
//                   connections as callers wait and all are full; nobody chose N = 4
//   etcd-arr-grow   a plain grpc-js client on the same `addr#1-8` through anchored_round_robin
//                   with maxStreamsPerAnchor 16: the native policy's growth (against a backend
//                   process of its own, alike, so the server counts its connections alone)
//   grpc-gcp        the npm grpc-gcp channel pool, at most 4 channels
// The backend runs in a child process and counts, per connection (the client's ip:port),
// the most calls it ran at once; it is reset before every run, so each run reports the
// connections that carried its calls and the busiest one's peak. Contenders run
// interleaved (A B C, A B C, …); every metric is the median of the runs with its spread.
//
//   npm run bench -- --only capped [--quick]
import os from 'node:os';
import * as grpc from '@grpc/grpc-js';
import { gcpEchoClient, offerLoad } from './load.js';
import { createPool, silentLogger } from '../../lib/index.js';
import { registerAnchorpool } from '../../lib/native/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';
import { interleave, medianOf, type BenchContext, type Scenario, type ScenarioResult } from './scenario.js';

const MAX_STREAMS = 16;
const DELAY_MILLIS = 10;
const LOOPS = 128;
const ANCHORS = 4;
const GCP_MAX_CHANNELS = 4;
// grpc-gcp opens another channel only when its least busy channel already has this many
// calls running (counted on the client), and stops at maxSize; past that it sends each
// call to the least busy channel. At the server's cap, the next channel opens exactly when
// the open ones are full, so 128 loops open all 4 (the default, 100, would stop at 2).
const GCP_LOW_WATERMARK = MAX_STREAMS;
const CALL_DEADLINE_MILLIS = 10_000;
const GROW_MAX = 8;
/** The grow contender's extraAnchorIdleMillis: long enough to stay grown between its interleaved runs (shorter in --quick / --tiny). */
const GROW_IDLE_MILLIS = 20_000;

async function run(context: BenchContext): Promise<ScenarioResult> {
  const runMillis = context.tiny ? 500 : context.quick ? 1500 : 4000;
  const warmupMillis = context.tiny ? 200 : context.quick ? 300 : 1000;
  const repeats = context.tiny ? 1 : context.quick ? 3 : 5;
  const growIdleMillis = context.tiny ? 500 : context.quick ? 8000 : GROW_IDLE_MILLIS;
  // Other work on this 2-core machine moves every figure; the load average says how much there was.
  const loadBefore = os.loadavg()[0]!;
  const backend = new Backend({ name: 'capped', maxConcurrentStreams: MAX_STREAMS, delayMillis: DELAY_MILLIS });
  const nativeBackend = new Backend({ name: 'capped-native', maxConcurrentStreams: MAX_STREAMS, delayMillis: DELAY_MILLIS });
  const closers: (() => unknown)[] = [];
  try {
    await Promise.all([backend.start(), nativeBackend.start()]);
    const insecure = grpc.credentials.createInsecure();

    const single = new EchoClient(backend.address, insecure, { 'grpc.use_local_subchannel_pool': 1 });
    closers.push(() => single.close());

    const pool = createPool({
      target: `pass:///${backend.address}#${ANCHORS}`,
      maxStreamsPerAnchor: MAX_STREAMS,
      acquireTimeoutMillis: 30_000,
      logger: silentLogger,
    });
    closers.push(() => pool.close());
    await pool.ready();

    const checked = createPool({
      target: `pass:///${backend.address}#${ANCHORS}`,
      maxStreamsPerAnchor: MAX_STREAMS,
      acquireTimeoutMillis: 30_000,
      healthCheck: {},
      logger: silentLogger,
    });
    closers.push(() => checked.close());
    await checked.ready();

    const grow = createPool({
      target: `pass:///${backend.address}#1-${GROW_MAX}`,
      maxStreamsPerAnchor: MAX_STREAMS,
      acquireTimeoutMillis: 30_000,
      extraAnchorIdleMillis: growIdleMillis,
      logger: silentLogger,
    });
    closers.push(() => grow.close());
    await grow.ready();

    registerAnchorpool({ logger: silentLogger });
    const nativeGrow = new EchoClient(`pass:///${nativeBackend.address}#1-${GROW_MAX}`, insecure, {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { maxStreamsPerAnchor: MAX_STREAMS, extraAnchorIdleMillis: growIdleMillis } }] }),
    });
    closers.push(() => nativeGrow.close());

    const gcpClient = gcpEchoClient(backend.address, GCP_MAX_CHANNELS, GCP_LOW_WATERMARK);
    closers.push(() => gcpClient.close());

    const calls: Record<string, () => Promise<unknown>> = {
      'one-connection': () => callEcho(single, CALL_DEADLINE_MILLIS),
      anchorpool: () => pool.use((lease) => callEcho(lease.client(EchoClient), CALL_DEADLINE_MILLIS)),
      'anchorpool+health': () => checked.use((lease) => callEcho(lease.client(EchoClient), CALL_DEADLINE_MILLIS)),
      'anchorpool-grow': () => grow.use((lease) => callEcho(lease.client(EchoClient), CALL_DEADLINE_MILLIS)),
      'etcd-arr-grow': () => callEcho(nativeGrow, CALL_DEADLINE_MILLIS),
      'grpc-gcp': () => callEcho(gcpClient, CALL_DEADLINE_MILLIS),
    };
    // Warm-up: every connection open (grpc-gcp opens its channels on demand) and the call paths compiled.
    for (const [name, call] of Object.entries(calls)) {
      context.log(`capped: warming up ${name}`);
      await offerLoad(call, LOOPS, warmupMillis);
    }

    /** One run of one contender, with the server's view of the same run. */
    const measured = (name: string, sampled?: typeof pool, server = backend) => async () => {
      await server.resetStats();
      let maxWaiting = 0;
      // Streams the client has open on its busiest connection: leases, plus the health Watch when checked.
      let maxClientStreams = 0;
      const sampleWaiters = sampled !== undefined;
      // The pool's waiters, sampled while the load runs (a timer in the same event loop: it sees the queue between calls).
      const sampler = sampled
        ? setInterval(() => {
            maxWaiting = Math.max(maxWaiting, sampled.stats().waiting);
            for (const a of sampled.anchors()) maxClientStreams = Math.max(maxClientStreams, a.leased + (a.health === 'UNCHECKED' ? 0 : 1));
          }, 5)
        : undefined;
      const load = await offerLoad(calls[name]!, LOOPS, runMillis).finally(() => clearInterval(sampler));
      const peaks = Object.values((await server.stats()).maxInFlightByConnection);
      context.log(
        `capped: ${name} ${load.callsPerSec.toFixed(0)} calls/s, p99 ${load.p99Ms.toFixed(1)} ms, ${peaks.length} connection(s), peaks ${peaks.join('/')}` +
          (sampleWaiters ? `, max ${maxWaiting} waiting` : ''),
      );
      return {
        ...load,
        maxPerConnection: Math.max(0, ...peaks),
        connections: peaks.length,
        ...(sampleWaiters ? { maxWaiting, maxClientStreams } : {}),
      };
    };
    const rows = await interleave(
      {
        'one-connection': measured('one-connection'),
        anchorpool: measured('anchorpool', pool),
        'anchorpool+health': measured('anchorpool+health', checked),
        'anchorpool-grow': measured('anchorpool-grow', grow),
        'etcd-arr-grow': measured('etcd-arr-grow', undefined, nativeBackend),
        'grpc-gcp': measured('grpc-gcp'),
      },
      repeats,
    );
    // The load has stopped: how long until the grown pool is back at its one anchor.
    // The native client's extra anchors are seen at the server: its connections (grpc-js
    // closes an unreferenced subchannel's connection on its 10 s sweep).
    const grownTo = grow.stats().anchors.active;
    const loadStopped = performance.now();
    let drainedAfter: number | undefined;
    let nativeDrainedAfter: number | undefined;
    while ((drainedAfter === undefined || nativeDrainedAfter === undefined) && performance.now() - loadStopped < growIdleMillis + 30_000) {
      await new Promise((r) => setTimeout(r, 100));
      if (drainedAfter === undefined && grow.stats().extraAnchors.open === 0) drainedAfter = performance.now() - loadStopped;
      if (nativeDrainedAfter === undefined && (await nativeBackend.stats()).connections.length <= 1) nativeDrainedAfter = performance.now() - loadStopped;
    }
    const growStats = grow.stats();

    const base = medianOf(rows, 'one-connection', 'callsPerSec');
    const ours = medianOf(rows, 'anchorpool', 'callsPerSec');
    const gcpRate = medianOf(rows, 'grpc-gcp', 'callsPerSec');
    const ratio = ours / base;
    const row = (name: string) => rows.find((r) => r.contender === name)!;
    const ourPeak = row('anchorpool').values['maxPerConnection']!.max;
    const ourClientStreams = row('anchorpool').values['maxClientStreams']!.max;
    const ourWaiting = row('anchorpool').values['maxWaiting']!.max;
    const checkedRate = medianOf(rows, 'anchorpool+health', 'callsPerSec');
    const checkedPeak = row('anchorpool+health').values['maxPerConnection']!.max;
    const checkedClientStreams = row('anchorpool+health').values['maxClientStreams']!.max;
    const failed = Object.fromEntries(rows.map((r) => [r.contender, r.values['failed']!.samples.reduce((a, b) => a + b, 0)]));
    const growRate = medianOf(rows, 'anchorpool-grow', 'callsPerSec');
    const growPeak = row('anchorpool-grow').values['maxPerConnection']!.max;
    const growClientStreams = row('anchorpool-grow').values['maxClientStreams']!.max;
    const growConnections = row('anchorpool-grow').values['connections']!;
    const nativeRate = medianOf(rows, 'etcd-arr-grow', 'callsPerSec');
    const nativePeak = row('etcd-arr-grow').values['maxPerConnection']!.max;
    const nativeConnections = row('etcd-arr-grow').values['connections']!;
    const gcpPeak = row('grpc-gcp').values['maxPerConnection']!.max;
    const gcpConnections = row('grpc-gcp').values['connections']!;

    return {
      id: 'capped',
      title: 'Stream-capped server',
      settings: {
        serverMaxConcurrentStreams: MAX_STREAMS,
        serverDelayMillis: DELAY_MILLIS,
        loops: LOOPS,
        runMillis,
        warmupMillis,
        repeats,
        callDeadlineMillis: CALL_DEADLINE_MILLIS,
        anchors: ANCHORS,
        growAnchors: `1-${GROW_MAX}`,
        growIdleMillis,
        maxStreamsPerAnchor: MAX_STREAMS,
        acquireTimeoutMillis: 30_000,
        gcpMaxSize: GCP_MAX_CHANNELS,
        gcpMaxConcurrentStreamsLowWatermark: GCP_LOW_WATERMARK,
        backendProcess: 'child process, grpc-js server',
      },
      metrics: [
        { name: 'callsPerSec', unit: 'calls/s', higherIsBetter: true },
        { name: 'p50Ms', unit: 'ms', higherIsBetter: false },
        { name: 'p99Ms', unit: 'ms', higherIsBetter: false },
        { name: 'maxPerConnection', unit: 'calls at once (server)', higherIsBetter: false },
        { name: 'connections', unit: 'connections (server)', higherIsBetter: true },
        { name: 'maxWaiting', unit: 'callers waiting in the pool', higherIsBetter: false },
        { name: 'maxClientStreams', unit: 'streams on one connection (client: leases + health)', higherIsBetter: false },
        { name: 'failed', unit: 'calls', higherIsBetter: false },
      ],
      primary: 'callsPerSec',
      baseline: 'one-connection',
      groups: [{ name: '', rows }],
      bars: [
        {
          label: 'anchorpool >= 3.5x one connection',
          pass: ratio >= 3.5,
          detail: `${ours.toFixed(0)} vs ${base.toFixed(0)} calls/s (medians) = ${ratio.toFixed(2)}x`,
        },
        {
          label: 'anchorpool: 0 calls over the cap',
          pass: ourClientStreams <= MAX_STREAMS && ourPeak <= MAX_STREAMS,
          detail: `at most ${ourClientStreams} leases open on one connection by the client and ${ourPeak} calls at once at the server (cap ${MAX_STREAMS}) over ${repeats} runs; up to ${ourWaiting} callers waited in the pool`,
        },
        {
          label: 'anchorpool+health: leases + health stream never over the cap',
          pass: checkedClientStreams <= MAX_STREAMS && checkedPeak <= MAX_STREAMS,
          detail: `at most ${checkedClientStreams} streams open on one connection by the client (leases + its health Watch; cap ${MAX_STREAMS}), at most ${checkedPeak} at once at the server (calls and Watch); ${checkedRate.toFixed(0)} calls/s = ${(checkedRate / base).toFixed(2)}x one connection, ${(checkedRate / ours).toFixed(2)}x anchorpool without health checks (15 of 16 streams carry calls)`,
        },
        {
          label: 'anchorpool-grow (anchors 1, maxAnchors 8) >= 3.5x one connection',
          pass: growRate / base >= 3.5,
          detail: `${growRate.toFixed(0)} vs ${base.toFixed(0)} calls/s = ${(growRate / base).toFixed(2)}x (${(growRate / ours).toFixed(2)}x the fixed 4 anchors), on ${growConnections.median} connection(s) (spread ${growConnections.min}–${growConnections.max}), grown to ${grownTo}`,
        },
        {
          label: 'anchorpool-grow: 0 calls over the cap',
          pass: growClientStreams <= MAX_STREAMS && growPeak <= MAX_STREAMS,
          detail: `at most ${growClientStreams} leases open on one connection by the client, ${growPeak} calls at once at the server (cap ${MAX_STREAMS})`,
        },
        {
          label: 'anchorpool-grow: extra anchors drained again after the load stopped',
          pass: drainedAfter !== undefined,
          detail: `back to ${growStats.anchors.active} anchor(s) ${drainedAfter === undefined ? 'never (within the wait)' : `${(drainedAfter / 1000).toFixed(1)} s`} after the last run (extraAnchorIdleMillis ${growIdleMillis}; one drains per second after that); ${growStats.extraAnchors.opened} opened, ${growStats.extraAnchors.drained} drained, ${growStats.extraAnchors.failed} failed in all`,
        },
        {
          label: 'etcd-arr-grow (native policy, anchors 1, maxAnchors 8) >= 3.5x one connection',
          pass: nativeRate / base >= 3.5,
          detail: `${nativeRate.toFixed(0)} vs ${base.toFixed(0)} calls/s = ${(nativeRate / base).toFixed(2)}x (${(nativeRate / ours).toFixed(2)}x the pool's fixed 4 anchors, ${(nativeRate / growRate).toFixed(2)}x the pool's growth), on ${nativeConnections.median} connection(s) (spread ${nativeConnections.min}–${nativeConnections.max})`,
        },
        {
          label: 'etcd-arr-grow: 0 calls over the cap',
          pass: nativePeak <= MAX_STREAMS,
          detail: `at most ${nativePeak} calls at once on one connection at the server (cap ${MAX_STREAMS}; maxStreamsPerAnchor ${MAX_STREAMS})`,
        },
        {
          label: 'etcd-arr-grow: extra anchors drained again after the load stopped',
          pass: nativeDrainedAfter !== undefined,
          detail: `its server back to 1 connection ${nativeDrainedAfter === undefined ? 'never (within the wait)' : `${(nativeDrainedAfter / 1000).toFixed(1)} s`} after the last run (extraAnchorIdleMillis ${growIdleMillis}, then one per second, then grpc-js's 10 s subchannel sweep)`,
        },
      ],
      notes: [
        `grpc-gcp: maxConcurrentStreamsLowWatermark = ${GCP_LOW_WATERMARK} (the server's cap): it opens another channel only when its least busy one has that many calls running, up to maxSize ${GCP_MAX_CHANNELS}, then sends each call to the least busy channel; a higher watermark (default 100) would leave it fewer connections at this load.`,
        `grpc-gcp result: ${gcpRate.toFixed(0)} calls/s = ${(gcpRate / base).toFixed(2)}x one connection and ${(gcpRate / ours).toFixed(2)}x anchorpool, on ${gcpConnections.median} connection(s) (spread ${gcpConnections.min}–${gcpConnections.max}), at most ${gcpPeak} calls at once on one connection at the server.`,
        `No client can exceed the cap at the server: HTTP/2 enforces MAX_CONCURRENT_STREAMS, so calls beyond it wait on the client. With one connection ${LOOPS - MAX_STREAMS} callers wait in that connection's queue, with grpc-gcp about ${LOOPS / GCP_MAX_CHANNELS - MAX_STREAMS} per connection once all ${GCP_MAX_CHANNELS} are open (it counts calls, not free stream slots); with anchorpool no call is ever queued on a connection, the extra callers wait in the pool (up to ${ourWaiting} seen), bounded by acquireTimeoutMillis.`,
        `Failed calls over all runs: ${Object.entries(failed).map(([name, n]) => `${name} ${n}`).join(', ')}.`,
        `1-minute load average before / after: ${loadBefore.toFixed(2)} / ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} cores (client and server share them; anchorpool and grpc-gcp are CPU-bound here, one connection is bound by its 16 streams × 10 ms, so competing load lowers the ratio).`,
      ],
    };
  } finally {
    for (const close of closers.reverse()) await close();
    await Promise.all([backend.kill(), nativeBackend.kill()]);
  }
}

export const cappedScenario: Scenario = { id: 'capped', title: 'Stream-capped server', run };
