// Discovery benchmark: anchorpool's etcd source against a bare etcd3 client in the same
// run, on an etcd started for the run. Reports medians of interleaved repetitions and
// the ratio to the peer, since absolute times on a shared machine move by ±30%.
//
//   node build/scripts/bench/discovery.js [--quick] [--json]
//
// 1. snapshot: time until 10,000 keys are loaded — source.ready() vs etcd3 getAll().
// 2. put → change: latency from a put to the source's change event, measured on the
//    same puts as a bare etcd3 watcher's put event (both listen at once).
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { createSource } from '../../lib/create-source.js';
import { silentLogger } from '../../lib/logger.js';
import { ensureEtcdInstalled, startCluster } from '../../etcd-dev/etcd-dev.mjs';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'boolean' } } });
const KEYS = values.quick ? 2000 : 10_000;
const PUTS = values.quick ? 100 : 500;
const REPEATS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function fill(client: Etcd3, prefix: string, count: number): Promise<void> {
  const queue = Array.from({ length: count }, (_, i) => i);
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        await client.put(`${prefix}k${String(i).padStart(6, '0')}`).value(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:50051#2`);
      }
    }),
  );
}

async function main() {
  await ensureEtcdInstalled({ log: (line) => process.stderr.write(`${line}\n`) });
  const cluster = await startCluster({ members: 1 });
  const client = new Etcd3({ hosts: cluster.hosts });
  try {
    const prefix = 'bench/snapshot/';
    await fill(client, prefix, KEYS);

    // 1. Snapshot, interleaved: peer, anchorpool, peer, anchorpool, …
    const peerSnapshot: number[] = [];
    const ourSnapshot: number[] = [];
    for (let r = 0; r < REPEATS; r++) {
      const peer = new Etcd3({ hosts: cluster.hosts });
      let t0 = performance.now();
      const kvs = await peer.getAll().prefix(prefix).exec();
      peerSnapshot.push(performance.now() - t0);
      peer.close();
      if (kvs.kvs.length !== KEYS) throw new Error(`peer listed ${kvs.kvs.length} keys`);

      const source = createSource({ target: `etcd:///${prefix}`, etcd: { hosts: cluster.hosts }, logger: silentLogger });
      t0 = performance.now();
      const snapshot = await source.ready({ timeoutMillis: 60_000 });
      ourSnapshot.push(performance.now() - t0);
      await source.close();
      if (snapshot.endpoints.size !== KEYS) throw new Error(`source loaded ${snapshot.endpoints.size} keys`);
    }

    // 2. put → change latency, both listeners on the same puts.
    const latPrefix = 'bench/latency/';
    const source = createSource({ target: `etcd:///${latPrefix}`, etcd: { hosts: cluster.hosts }, logger: silentLogger });
    await source.ready();
    const watcher = await client.watch().prefix(latPrefix).create();
    const ours: number[] = [];
    const peers: number[] = [];
    for (let i = 0; i < PUTS; i++) {
      const key = `${latPrefix}k${i % 50}`;
      const value = `10.0.0.${i % 250}:${1000 + i}`;
      let ourDone!: () => void;
      let peerDone!: () => void;
      const ourSeen = new Promise<void>((resolve) => (ourDone = resolve));
      const peerSeen = new Promise<void>((resolve) => (peerDone = resolve));
      const onChange = () => ourDone();
      const onPut = (kv: { key: Buffer }) => {
        if (kv.key.toString() === key) peerDone();
      };
      source.on('change', onChange);
      watcher.on('put', onPut);
      const t0 = performance.now();
      const putDone = client.put(key).value(value);
      await Promise.all([
        ourSeen.then(() => ours.push(performance.now() - t0)),
        peerSeen.then(() => peers.push(performance.now() - t0)),
        putDone,
      ]);
      source.off('change', onChange);
      watcher.off('put', onPut);
    }
    await watcher.cancel();
    await source.close();

    const results = {
      machine: `${(await import('node:os')).cpus().length} cores, node ${process.version}`,
      date: new Date().toISOString(),
      snapshot: {
        keys: KEYS,
        repeats: REPEATS,
        anchorpoolMedianMs: median(ourSnapshot),
        etcd3GetAllMedianMs: median(peerSnapshot),
        ratio: median(ourSnapshot) / median(peerSnapshot),
        spreadMs: [Math.min(...ourSnapshot), Math.max(...ourSnapshot)],
      },
      putToChange: {
        puts: PUTS,
        anchorpool: { p50Ms: quantile(ours, 0.5), p99Ms: quantile(ours, 0.99) },
        etcd3Watcher: { p50Ms: quantile(peers, 0.5), p99Ms: quantile(peers, 0.99) },
        p50Ratio: quantile(ours, 0.5) / quantile(peers, 0.5),
      },
    };
    if (values.json) {
      process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    } else {
      const f = (n: number) => n.toFixed(2);
      const s = results.snapshot;
      const p = results.putToChange;
      process.stdout.write(
        [
          `discovery benchmark — ${results.machine}, ${results.date}, single-node etcd on loopback`,
          `snapshot of ${s.keys} keys (median of ${s.repeats}, interleaved):`,
          `  anchorpool source.ready()   ${f(s.anchorpoolMedianMs)} ms  (spread ${f(s.spreadMs[0]!)}–${f(s.spreadMs[1]!)})`,
          `  etcd3 getAll().prefix()     ${f(s.etcd3GetAllMedianMs)} ms  (list only, no parsing)`,
          `  ratio                       ${f(s.ratio)}×`,
          `put → change, ${p.puts} puts, both listening to the same puts:`,
          `  anchorpool change event     p50 ${f(p.anchorpool.p50Ms)} ms  p99 ${f(p.anchorpool.p99Ms)} ms`,
          `  etcd3 watcher put event     p50 ${f(p.etcd3Watcher.p50Ms)} ms  p99 ${f(p.etcd3Watcher.p99Ms)} ms`,
          `  p50 ratio                   ${f(p.p50Ratio)}×`,
        ].join('\n') + '\n',
      );
    }
  } finally {
    client.close();
    await cluster.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
