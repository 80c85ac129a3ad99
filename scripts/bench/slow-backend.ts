// One slow backend: three grpc-js Echo backends in child processes, two answering in
// 10 ms and one in 100 ms (long enough that the client's CPU on 2 cores is not the limit),
// and 64 closed-loop callers. Interleaved contenders, each spreading calls over the three:
//   round-robin    pool.client() on a pool with the default pick (2 anchors per backend)
//   least-loaded   the same pool settings with pick: 'least-loaded' (p2c by leases in flight)
//   etcd-arr-ll    a plain client on pass:/// with {"anchored_round_robin":{"pick":"least-loaded"}}
//   grpc-rr        grpc-js's own round_robin over the three addresses
//   grpc-gcp       grpc-gcp's channel pool (4 channels, least busy channel first) whose
//                  channels each round-robin over the three addresses: grpc-gcp pools
//                  channels to one target, so a target of three backends is how it meets them
// Round robin gives the slow backend a third of the calls, so its callers spend most of
// their time waiting on it; least-loaded sends it only what its in-flight count allows.
//
//   npm run bench -- --only slow-backend [--quick]
import * as grpc from '@grpc/grpc-js';
import { createPool, silentLogger } from '../../lib/index.js';
import { registerAnchorpool } from '../../lib/native/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';
import { gcpEchoClient, offerLoad } from './load.js';
import { interleave, medianOf, type Scenario } from './scenario.js';

const FAST_MILLIS = 10;
const SLOW_MILLIS = 100;
const LOOPS = 64;
const ANCHORS = 2;
const GCP_CHANNELS = 4;

export const slowBackendScenario: Scenario = {
  id: 'slow-backend',
  title: 'One slow backend (10 ms, 10 ms, 100 ms), 64 callers: round robin against least-loaded and the peers',
  async run(context) {
    const runMillis = context.tiny ? 300 : context.quick ? 1000 : 3000;
    const repeats = context.tiny ? 1 : context.quick ? 3 : 5;
    const backends = [new Backend({ name: 'fast1', delayMillis: FAST_MILLIS }), new Backend({ name: 'fast2', delayMillis: FAST_MILLIS }), new Backend({ name: 'slow', delayMillis: SLOW_MILLIS })];
    const closers: (() => unknown)[] = [];
    try {
      await Promise.all(backends.map((b) => b.start()));
      const insecure = grpc.credentials.createInsecure();
      const target = `pass:///${backends.map((b) => `${b.address}#${ANCHORS}`).join(',')}`;
      const rrPool = createPool({ target, logger: silentLogger, maxStreamsPerAnchor: 1000, acquireTimeoutMillis: 30_000 });
      const llPool = createPool({ target, logger: silentLogger, maxStreamsPerAnchor: 1000, acquireTimeoutMillis: 30_000, pick: 'least-loaded' });
      closers.push(() => rrPool.close(), () => llPool.close());
      await Promise.all([rrPool.ready(), llPool.ready()]);
      const rr = rrPool.client(EchoClient);
      const ll = llPool.client(EchoClient);
      registerAnchorpool({ logger: silentLogger });
      const native = new EchoClient(target, insecure, {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { pick: 'least-loaded' } }] }),
        'grpc.use_local_subchannel_pool': 1,
      });
      const addresses = `ipv4:${backends.map((b) => b.address).join(',')}`;
      const roundRobinConfig = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });
      const grpcRr = new EchoClient(addresses, insecure, { 'grpc.service_config': roundRobinConfig, 'grpc.use_local_subchannel_pool': 1 });
      const gcp = gcpEchoClient(addresses, GCP_CHANNELS, 1, { 'grpc.service_config': roundRobinConfig });
      closers.push(() => native.close(), () => grpcRr.close(), () => gcp.close());
      const contenders: Record<string, () => Promise<unknown>> = {
        'round-robin': () => callEcho(rr),
        'least-loaded': () => callEcho(ll),
        'etcd-arr-ll': () => callEcho(native),
        'grpc-rr': () => callEcho(grpcRr),
        'grpc-gcp': () => callEcho(gcp),
      };
      // Warm-up: every connection open (grpc-gcp opens its channels as calls overlap), the paths compiled.
      for (const call of Object.values(contenders)) await Promise.all(Array.from({ length: 16 }, call));
      const slowShare: Record<string, number[]> = {};
      const rows = await interleave(
        Object.fromEntries(
          Object.entries(contenders).map(([name, call]) => [
            name,
            async () => {
              await Promise.all(backends.map((b) => b.resetStats()));
              const load = await offerLoad(call, LOOPS, runMillis);
              const calls = await Promise.all(backends.map(async (b) => (await b.stats()).calls));
              const share = calls[2]! / Math.max(1, calls.reduce((a, b) => a + b, 0));
              (slowShare[name] ??= []).push(share);
              return { ...load, slowSharePct: share * 100 };
            },
          ]),
        ),
        repeats,
      );
      const rate = (name: string) => medianOf(rows, name, 'callsPerSec');
      const ratio = rate('least-loaded') / rate('round-robin');
      return {
        id: 'slow-backend',
        title: this.title,
        settings: { backends: `2 × ${FAST_MILLIS} ms, 1 × ${SLOW_MILLIS} ms (child processes)`, loops: LOOPS, anchorsPerBackend: ANCHORS, runMillis, repeats, gcpMaxSize: GCP_CHANNELS, gcpLowWatermark: 1 },
        metrics: [
          { name: 'callsPerSec', unit: 'calls/s', higherIsBetter: true },
          { name: 'p50Ms', unit: 'ms', higherIsBetter: false },
          { name: 'p99Ms', unit: 'ms', higherIsBetter: false },
          { name: 'slowSharePct', unit: '% of calls on the slow backend', higherIsBetter: false },
          { name: 'failed', unit: 'calls', higherIsBetter: false },
        ],
        primary: 'callsPerSec',
        baseline: 'round-robin',
        groups: [{ name: '', rows }],
        bars: [
          { label: 'least-loaded >= 1.5x round-robin', pass: ratio >= 1.5, detail: `${rate('least-loaded').toFixed(0)} vs ${rate('round-robin').toFixed(0)} calls/s = ${ratio.toFixed(2)}x` },
          { label: 'least-loaded not behind grpc-gcp', pass: rate('least-loaded') >= rate('grpc-gcp'), detail: `${(rate('least-loaded') / rate('grpc-gcp')).toFixed(2)}x grpc-gcp` },
        ],
        notes: [
          `The ceiling: 64 callers on 10 ms handlers alone would make ${((LOOPS / FAST_MILLIS) * 1000).toFixed(0)} calls/s; with a third of the calls on the 100 ms backend, round robin averages 40 ms a call (${((LOOPS / 40) * 1000).toFixed(0)} calls/s).`,
          `native etcd-arr-ll: ${(rate('etcd-arr-ll') / rate('round-robin')).toFixed(2)}x round-robin.`,
        ],
      };
    } finally {
      for (const close of closers.reverse()) await close();
      await Promise.all(backends.map((b) => b.kill()));
    }
  },
};
