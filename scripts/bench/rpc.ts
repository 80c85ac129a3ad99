// Unary RPC scenario: one grpc-js Echo backend in a child process, every contender with
// 4 connections where it can have them, measured interleaved at 64 and 512 calls in flight:
//   raw        4 pre-picked grpc-js channels (own connections), round robin — the baseline
//   leases     pool.use(lease => call on lease.client(EchoClient)), 4 anchors
//   client     pool.client(EchoClient), 4 anchors
//   etcd-arr   a plain client on etcd:/// with the anchored_round_robin policy, 4 anchors
//   leases+health, etcd-arr+health   the same two with health checks on (a Watch per connection)
//   grpc-rr    grpc-js's own round_robin over ipv4:ADDR ×4 — duplicates share 1 connection
//   grpc-gcp   the npm grpc-gcp channel pool, maxSize 4
// Reports calls/s and p50/p99 per contender, and its ratio to raw.
import * as grpc from '@grpc/grpc-js';
import { createPool, silentLogger } from '../../lib/index.js';
import { registerAnchorpool } from '../../lib/native/index.js';
import { ensureEtcdInstalled, etcdctl, startCluster } from '../../etcd-dev/etcd-dev.mjs';
import { Backend } from '../../testkit/echo/backend.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';
import { gcpEchoClient, offerLoad } from './load.js';
import { interleave, medianOf, type Bar, type Scenario, type ScenarioRow } from './scenario.js';

const ANCHORS = 4;

export const rpcScenario: Scenario = {
  id: 'rpc',
  title: 'Unary RPC: calls/s through each way of spreading calls over connections',
  async run(context) {
    const runMillis = context.tiny ? 300 : context.quick ? 700 : 2500;
    // Runs move by ±8% here; five interleaved repetitions keep the medians steadier (--tiny: one, figures are not its point).
    const repeats = context.tiny ? 1 : context.quick ? 3 : 5;
    const concurrency = context.quick ? [64] : [64, 512];
    await ensureEtcdInstalled({ log: context.log });
    const cluster = await startCluster({ members: 1 });
    const backend = new Backend({ name: 'rpc' });
    const closers: (() => unknown)[] = [];
    try {
      await backend.start();
      const insecure = grpc.credentials.createInsecure();
      await etcdctl(['put', 'bench/rpc/a', `${backend.address}#${ANCHORS}`], { endpoints: cluster.endpoints });
      const connectionsBefore = async () => (await backend.stats()).connections.length;
      const opened: Record<string, number> = {};
      let before = 0;
      /** Counts, on the server, the connections opened since `before`, after some warm-up calls. */
      const track = async (name: string, warm: () => Promise<unknown>) => {
        for (let i = 0; i < 50; i++) await warm();
        const now = await connectionsBefore();
        opened[name] = now - before;
        before = now;
      };

      const raw = Array.from({ length: ANCHORS }, (_, i) => new EchoClient(backend.address, insecure, { 'grpc.use_local_subchannel_pool': 1, 'bench.raw': i }));
      closers.push(() => raw.forEach((c) => c.close()));
      let next = 0;
      const rawCall = () => callEcho(raw[next++ % ANCHORS]!);
      await track('raw', rawCall);

      const pool = createPool({ target: 'etcd:///bench/rpc/', etcd: { hosts: cluster.hosts }, logger: silentLogger, maxStreamsPerAnchor: 1000, acquireTimeoutMillis: 30_000 });
      closers.push(() => pool.close());
      await pool.ready();
      while (pool.stats().anchors.byState.READY < ANCHORS) await new Promise((r) => setTimeout(r, 20));
      const leaseCall = () => pool.use((lease) => callEcho(lease.client(EchoClient)));
      await track('leases', leaseCall);
      const stub = pool.client(EchoClient);
      const clientCall = () => callEcho(stub);

      const checked = createPool({ target: 'etcd:///bench/rpc/', etcd: { hosts: cluster.hosts }, logger: silentLogger, maxStreamsPerAnchor: 1000, acquireTimeoutMillis: 30_000, healthCheck: {} });
      closers.push(() => checked.close());
      await checked.ready();
      while (checked.stats().anchors.eligible < ANCHORS) await new Promise((r) => setTimeout(r, 20));
      const checkedLeaseCall = () => checked.use((lease) => callEcho(lease.client(EchoClient)));
      await track('leases+health', checkedLeaseCall);

      registerAnchorpool({ etcd: { hosts: cluster.hosts }, logger: silentLogger });
      const anchored = new EchoClient('etcd:///bench/rpc/', insecure);
      closers.push(() => anchored.close());
      const anchoredCall = () => callEcho(anchored);
      await track('etcd-arr', anchoredCall);
      const anchoredChecked = new EchoClient('etcd:///bench/rpc/', insecure, {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { healthCheck: { serviceName: '' } } }] }),
        // Its own subchannels (and so its own 4 connections with a Watch each), not etcd-arr's.
        'grpc.use_local_subchannel_pool': 1,
      });
      closers.push(() => anchoredChecked.close());
      const anchoredCheckedCall = () => callEcho(anchoredChecked);
      await track('etcd-arr+health', anchoredCheckedCall);

      const roundRobin = new EchoClient(`ipv4:${Array(ANCHORS).fill(backend.address).join(',')}`, insecure, {
        'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
        'grpc.use_local_subchannel_pool': 1,
      });
      closers.push(() => roundRobin.close());
      const roundRobinCall = () => callEcho(roundRobin);
      await track('grpc-rr', roundRobinCall);

      // Watermark 1: it opens its 4 channels as soon as calls overlap (same connection count as ours).
      const gcpClient = gcpEchoClient(backend.address, ANCHORS, 1);
      closers.push(() => gcpClient.close());
      const gcpCall = () => callEcho(gcpClient);
      await track('grpc-gcp', async () => Promise.all(Array.from({ length: 8 }, gcpCall)));

      const contenders = {
        raw: rawCall,
        leases: leaseCall,
        'leases+health': checkedLeaseCall,
        client: clientCall,
        'etcd-arr': anchoredCall,
        'etcd-arr+health': anchoredCheckedCall,
        'grpc-rr': roundRobinCall,
        'grpc-gcp': gcpCall,
      };
      const groups: { name: string; rows: ScenarioRow[] }[] = [];
      const bars: Bar[] = [];
      for (const inFlight of concurrency) {
        context.log(`rpc: ${inFlight} in flight`);
        const rows = await interleave(
          Object.fromEntries(Object.entries(contenders).map(([name, call]) => [name, async () => ({ ...(await offerLoad(call, inFlight, runMillis)) })])),
          repeats,
        );
        groups.push({ name: `${inFlight} in flight`, rows });
        const ratio = (name: string, peer: string) => medianOf(rows, name, 'callsPerSec') / medianOf(rows, peer, 'callsPerSec');
        for (const name of ['leases', 'client']) {
          bars.push({ label: `${name} >= 0.97x raw channels (${inFlight} in flight)`, pass: ratio(name, 'raw') >= 0.97, detail: `${ratio(name, 'raw').toFixed(2)}x` });
        }
        for (const peer of ['grpc-rr', 'grpc-gcp']) {
          bars.push({ label: `etcd:/// anchored_round_robin >= 1.0x ${peer} (${inFlight} in flight)`, pass: ratio('etcd-arr', peer) >= 1, detail: `${ratio('etcd-arr', peer).toFixed(2)}x` });
        }
      }
      return {
        id: 'rpc',
        title: this.title,
        settings: { backend: '1 grpc-js process, instant handler', anchors: ANCHORS, runMillis, repeats, inFlight: concurrency.join(', '), gcpMaxSize: ANCHORS, gcpLowWatermark: 1 },
        metrics: [
          { name: 'callsPerSec', unit: 'calls/s', higherIsBetter: true },
          { name: 'p50Ms', unit: 'ms', higherIsBetter: false },
          { name: 'p99Ms', unit: 'ms', higherIsBetter: false },
          { name: 'failed', unit: 'calls', higherIsBetter: false },
        ],
        primary: 'callsPerSec',
        baseline: 'raw',
        groups,
        bars,
        notes: [
          `connections each contender opened, counted by the server: ${Object.entries(opened).map(([k, v]) => `${k} ${v}`).join(', ')} (client shares the leases' pool)`,
          'One client process on 2 cores is CPU-bound at a few thousand calls/s whatever the policy; this scenario shows overhead, the capped scenario shows the gain.',
        ],
      };
    } finally {
      for (const close of closers.reverse()) await close();
      await backend.kill();
      await cluster.stop();
    }
  },
};
