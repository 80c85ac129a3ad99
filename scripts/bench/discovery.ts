// Discovery scenario: anchorpool's etcd source against a bare etcd3 client in the same
// run, on an etcd started for the run:
//   snapshot     time until 10,000 keys are loaded and validated — source.ready() — vs
//                etcd3 getAll().prefix() listing the same keys (list only, no parsing)
//   put→change   from a put to the source's change event, measured on the same puts as a
//                bare etcd3 watcher's put event (both listen at once)
import { Etcd3 } from 'etcd3';
import { createSource, silentLogger } from '../../lib/index.js';
import { ensureEtcdInstalled, startCluster } from '../../etcd-dev/etcd-dev.mjs';
import { interleave, quantile, summarize, type Scenario } from './scenario.js';
import { putAll } from './etcd-writes.js';

export const discoveryScenario: Scenario = {
  id: 'discovery',
  title: 'Discovery: snapshot of 10,000 keys, and put → change event',
  async run(context) {
    const keys = context.tiny ? 300 : context.quick ? 2000 : 10_000;
    const puts = context.tiny ? 20 : context.quick ? 100 : 500;
    const repeats = context.tiny ? 1 : 3;
    await ensureEtcdInstalled({ log: context.log });
    const cluster = await startCluster({ members: 1 });
    const client = new Etcd3({ hosts: cluster.hosts });
    try {
      const prefix = 'bench/snapshot/';
      const value = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:50051#2`;
      await putAll(client, Array.from({ length: keys }, (_, i) => [`${prefix}k${String(i).padStart(6, '0')}`, value(i)] as const), 64);
      const snapshotRows = await interleave(
        {
          'etcd3 getAll': async () => {
            const peer = new Etcd3({ hosts: cluster.hosts });
            const t0 = performance.now();
            const listed = await peer.getAll().prefix(prefix).exec();
            const ms = performance.now() - t0;
            peer.close();
            if (listed.kvs.length !== keys) throw new Error(`etcd3 listed ${listed.kvs.length} keys`);
            return { ms };
          },
          'anchorpool source.ready()': async () => {
            const source = createSource({ target: `etcd:///${prefix}`, etcd: { hosts: cluster.hosts }, logger: silentLogger });
            const t0 = performance.now();
            const snapshot = await source.ready({ timeoutMillis: 60_000 });
            const ms = performance.now() - t0;
            await source.close();
            if (snapshot.endpoints.size !== keys) throw new Error(`the source loaded ${snapshot.endpoints.size} keys`);
            return { ms };
          },
        },
        repeats,
      );

      const latPrefix = 'bench/latency/';
      const source = createSource({ target: `etcd:///${latPrefix}`, etcd: { hosts: cluster.hosts }, logger: silentLogger });
      await source.ready();
      const watcher = await client.watch().prefix(latPrefix).create();
      const ours: number[] = [];
      const peers: number[] = [];
      for (let i = 0; i < puts; i++) {
        const key = `${latPrefix}k${i % 50}`;
        const seen = (arrive: (resolve: () => void) => void) => new Promise<void>(arrive);
        let offChange = () => {};
        let offPut = () => {};
        const ourSeen = seen((resolve) => {
          const on = () => resolve();
          source.on('change', on);
          offChange = () => source.off('change', on);
        });
        const peerSeen = seen((resolve) => {
          const on = (kv: { key: Buffer }) => kv.key.toString() === key && resolve();
          watcher.on('put', on);
          offPut = () => watcher.off('put', on);
        });
        const t0 = performance.now();
        await Promise.all([
          ourSeen.then(() => ours.push(performance.now() - t0)),
          peerSeen.then(() => peers.push(performance.now() - t0)),
          client.put(key).value(`10.0.0.${i % 250}:${1000 + i}`),
        ]);
        offChange();
        offPut();
      }
      await watcher.cancel();
      await source.close();
      const latency = (values: number[]) => ({ p50Ms: summarize([quantile(values, 0.5)]), p99Ms: summarize([quantile(values, 0.99)]) });
      const snapshotMs = snapshotRows.find((r) => r.contender === 'anchorpool source.ready()')!.values['ms']!.median;
      return {
        id: 'discovery',
        title: this.title,
        settings: { keys, repeats, puts, etcd: 'single node on loopback' },
        metrics: [
          { name: 'ms', unit: 'ms', higherIsBetter: false },
          { name: 'p50Ms', unit: 'ms', higherIsBetter: false },
          { name: 'p99Ms', unit: 'ms', higherIsBetter: false },
        ],
        primary: 'ms',
        baseline: 'etcd3 getAll',
        groups: [
          { name: `snapshot of ${keys} keys`, rows: snapshotRows },
          {
            name: `put → event (${puts} puts, both listening)`,
            rows: [
              { contender: 'anchorpool change event', values: latency(ours) },
              { contender: 'etcd3 watcher put event', values: latency(peers) },
            ],
          },
        ],
        bars: [{ label: `${keys} keys loaded and validated <= 1 s`, pass: snapshotMs <= 1000, detail: `${snapshotMs.toFixed(0)} ms` }],
        notes: ['put → event is measured on the same puts for both listeners; its rows have one sample each (p50 and p99 over all puts), so no spread.'],
      };
    } finally {
      client.close();
      await cluster.stop();
    }
  },
};
