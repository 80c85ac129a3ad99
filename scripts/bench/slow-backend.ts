// Slow backend at low concurrency: three grpc-js Echo backends in child processes, two
// answering in 5 ms and one in 50 ms, 2 anchors each, and closed-loop callers in two
// groups: 4 callers (in-flight counts are mostly 0 or 1, so they cannot tell a fast
// backend from the slow one) and 64 callers. Interleaved contenders, each spreading calls
// over the three backends:
//   pool round-robin      pool.client() on a pool with the default pick
//   pool least-loaded     the same with pick: 'least-loaded' (p2c by leases in flight)
//   pool peak-ewma        the same with pick: 'peak-ewma' (p2c by latency EWMA × (in flight + 1))
//   native round-robin    a plain EchoClient on pass:/// with {"anchored_round_robin":{"pick":"round-robin"}}
//   native least-loaded   the same with "pick":"least-loaded"
//   native peak-ewma      the same with "pick":"peak-ewma"
//   grpc-js round_robin   grpc-js's own round_robin over the three addresses
//   grpc-gcp              grpc-gcp's channel pool (4 channels, least busy channel first) whose
//                         channels each round-robin over the three addresses: grpc-gcp pools
//                         channels to one target, so a target of three backends is how it meets them
// Round robin gives the slow backend a third of the calls, so its callers spend most of
// their time waiting on it. The slow backend's share is counted on the server side.
//
//   npm run bench -- --only slow-backend [--quick]
import * as grpc from '@grpc/grpc-js';
import { createPool, silentLogger, type PickMode } from '../../lib/index.js';
import { registerAnchorpool } from '../../lib/native/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';
import { gcpEchoClient, offerLoad } from './load.js';
import { interleave, medianOf, type Bar, type Scenario, type ScenarioRow } from './scenario.js';

const FAST_MILLIS = 5;
const SLOW_MILLIS = 50;
const CALLERS = [4, 64];
const ANCHORS = 2;
const GCP_CHANNELS = 4;
const PICKS: PickMode[] = ['round-robin', 'least-loaded', 'peak-ewma'];
const BASELINE = 'pool round-robin';

export const slowBackendScenario: Scenario = {
  id: 'slow-backend',
  title: `Slow backend at low concurrency (${FAST_MILLIS} / ${FAST_MILLIS} / ${SLOW_MILLIS} ms), ${CALLERS.join(' and ')} callers: round robin, least-loaded and peak-ewma on both paths, and the peers`,
  async run(context) {
    const runMillis = context.tiny ? 300 : context.quick ? 1000 : 3000;
    const warmMillis = context.tiny ? 100 : context.quick ? 300 : 1000;
    const repeats = context.tiny ? 1 : context.quick ? 3 : 5;
    const backends = [
      new Backend({ name: 'fast1', delayMillis: FAST_MILLIS }),
      new Backend({ name: 'fast2', delayMillis: FAST_MILLIS }),
      new Backend({ name: 'slow', delayMillis: SLOW_MILLIS }),
    ];
    const closers: (() => unknown)[] = [];
    try {
      await Promise.all(backends.map((b) => b.start()));
      const insecure = grpc.credentials.createInsecure();
      const target = `pass:///${backends.map((b) => `${b.address}#${ANCHORS}`).join(',')}`;
      const contenders: Record<string, () => Promise<unknown>> = {};
      for (const pick of PICKS) {
        const pool = createPool({ target, logger: silentLogger, maxStreamsPerAnchor: 1000, acquireTimeoutMillis: 30_000, pick });
        closers.push(() => pool.close());
        await pool.ready();
        const client = pool.client(EchoClient);
        contenders[`pool ${pick}`] = () => callEcho(client);
      }
      registerAnchorpool({ logger: silentLogger });
      for (const pick of PICKS) {
        const native = new EchoClient(target, insecure, {
          'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { pick } }] }),
          'grpc.use_local_subchannel_pool': 1,
        });
        closers.push(() => native.close());
        contenders[`native ${pick}`] = () => callEcho(native);
      }
      const addresses = `ipv4:${backends.map((b) => b.address).join(',')}`;
      const roundRobinConfig = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });
      const grpcRr = new EchoClient(addresses, insecure, { 'grpc.service_config': roundRobinConfig, 'grpc.use_local_subchannel_pool': 1 });
      const gcp = gcpEchoClient(addresses, GCP_CHANNELS, 1, { 'grpc.service_config': roundRobinConfig });
      closers.push(() => grpcRr.close(), () => gcp.close());
      contenders['grpc-js round_robin'] = () => callEcho(grpcRr);
      contenders['grpc-gcp'] = () => callEcho(gcp);

      // Warm-up: every connection open (grpc-gcp opens its channels as calls overlap), the
      // paths compiled, and every anchor with a few measured calls, so that peak-ewma starts
      // each measured run with a latency history (it learns within a few calls).
      for (const call of Object.values(contenders)) await Promise.all(Array.from({ length: 16 }, call));
      for (const call of Object.values(contenders)) await offerLoad(call, CALLERS[0]!, warmMillis);

      const groups: { name: string; rows: ScenarioRow[] }[] = [];
      const bars: Bar[] = [];
      const notes: string[] = [];
      for (const loops of CALLERS) {
        context.log(`slow-backend: ${loops} callers`);
        const rows = await interleave(
          Object.fromEntries(
            Object.entries(contenders).map(([name, call]) => [
              name,
              async () => {
                await Promise.all(backends.map((b) => b.resetStats()));
                const load = await offerLoad(call, loops, runMillis);
                const calls = await Promise.all(backends.map(async (b) => (await b.stats()).calls));
                const share = calls[2]! / Math.max(1, calls.reduce((a, b) => a + b, 0));
                return { ...load, slowSharePct: share * 100 };
              },
            ]),
          ),
          repeats,
        );
        groups.push({ name: `${loops} callers`, rows });
        const rate = (name: string) => medianOf(rows, name, 'callsPerSec');
        const slow = (name: string) => medianOf(rows, name, 'slowSharePct');
        const times = (a: string, b: string) => rate(a) / rate(b);
        for (const path of ['pool', 'native']) {
          const ewma = `${path} peak-ewma`;
          if (loops === CALLERS[0]) {
            const rr = `${path} round-robin`;
            bars.push({
              label: `${loops} callers: ${ewma} >= 2.5x ${rr} calls/s`,
              pass: times(ewma, rr) >= 2.5,
              detail: `${rate(ewma).toFixed(0)} vs ${rate(rr).toFixed(0)} calls/s = ${times(ewma, rr).toFixed(2)}x`,
            });
            bars.push({
              label: `${loops} callers: ${ewma} sends <= 5% of calls to the slow backend`,
              pass: slow(ewma) <= 5,
              detail: `${slow(ewma).toFixed(1)}% (round robin ${slow(rr).toFixed(1)}%, least-loaded ${slow(`${path} least-loaded`).toFixed(1)}%)`,
            });
          } else {
            const ll = `${path} least-loaded`;
            bars.push({
              label: `${loops} callers: ${ewma} not behind ${ll} (>= 0.95x its calls/s, allowing for run-to-run spread)`,
              pass: times(ewma, ll) >= 0.95,
              detail: `${rate(ewma).toFixed(0)} vs ${rate(ll).toFixed(0)} calls/s = ${times(ewma, ll).toFixed(2)}x; slow share ${slow(ewma).toFixed(1)}% vs ${slow(ll).toFixed(1)}%`,
            });
          }
        }
        notes.push(
          `${loops} callers: ` +
            ['pool peak-ewma', 'native peak-ewma', 'pool least-loaded', 'native least-loaded']
              .map((name) => `${name} ${times(name, BASELINE).toFixed(2)}x pool round-robin, ${times(name, 'grpc-gcp').toFixed(2)}x grpc-gcp`)
              .join('; ') +
            '.',
        );
      }
      const rrMillis = (2 * FAST_MILLIS + SLOW_MILLIS) / 3;
      notes.unshift(
        `The ideal at ${CALLERS[0]} callers: on the ${FAST_MILLIS} ms handlers alone they would make ${((CALLERS[0]! / FAST_MILLIS) * 1000).toFixed(0)} calls/s; ` +
          `round robin, with a third of the calls on the ${SLOW_MILLIS} ms backend, averages ${rrMillis.toFixed(0)} ms a call (${((CALLERS[0]! / rrMillis) * 1000).toFixed(0)} calls/s), so 2.5x round robin is ${(((CALLERS[0]! / rrMillis) * 1000 * 2.5) / ((CALLERS[0]! / FAST_MILLIS) * 1000) * 100).toFixed(0)}% of the ideal.`,
        `At ${CALLERS[1]} callers the same arithmetic gives ${((CALLERS[1]! / FAST_MILLIS) * 1000).toFixed(0)} calls/s ideal and ${((CALLERS[1]! / rrMillis) * 1000).toFixed(0)} for round robin, but the client and the three backends share 2 cores, so CPU caps every contender well below the ideal.`,
      );
      return {
        id: 'slow-backend',
        title: this.title,
        settings: {
          backends: `2 × ${FAST_MILLIS} ms, 1 × ${SLOW_MILLIS} ms (child processes)`,
          callers: CALLERS.join(', '),
          anchorsPerBackend: ANCHORS,
          runMillis,
          warmMillis,
          repeats,
          gcpMaxSize: GCP_CHANNELS,
          gcpLowWatermark: 1,
        },
        metrics: [
          { name: 'callsPerSec', unit: 'calls/s', higherIsBetter: true },
          { name: 'p50Ms', unit: 'ms', higherIsBetter: false },
          { name: 'p99Ms', unit: 'ms', higherIsBetter: false },
          { name: 'slowSharePct', unit: '% of calls on the slow backend', higherIsBetter: false },
          { name: 'failed', unit: 'calls', higherIsBetter: false },
        ],
        primary: 'callsPerSec',
        baseline: BASELINE,
        groups,
        bars,
        notes,
      };
    } finally {
      for (const close of closers.reverse()) await close();
      await Promise.all(backends.map((b) => b.kill()));
    }
  },
};
