// Fault 3: compaction while disconnected. The pool's link to etcd is cut (TCP proxy),
// keys change, etcd is compacted past the pool's last revision, and the link comes back:
// the watch cannot resume from its revision, so the pool must re-list, and end up equal
// to etcd.
import type { ResyncInfo } from '../../lib/index.js';
import { etcdctl } from '../../etcd-dev/etcd-dev.mjs';
import { convergePool, describeDiff } from '../../testkit/etcd-truth.js';
import { check, sleep, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';

export const compactionScenario: FaultScenario = {
  id: 'compaction',
  title: 'etcd compacted past the pool\'s revision while its link was cut',
  async run(context) {
    const prefix = 'compact/';
    const keys = context.short ? 40 : 200;
    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(1);
      const proxy = await rig.proxy(cluster.members[0]!);
      const backends = await rig.backends('k1', 'k2');
      const client = rig.etcdClient(cluster);
      const addr = (i: number) => backends[i % 2]!.address;
      for (let i = 0; i < keys; i++) await client.put(`${prefix}k${i}`).value(`${addr(i)}#1`);
      const pool = rig.pool({ target: `etcd:///${prefix}`, etcd: { hosts: [`127.0.0.1:${proxy.port}`], retryMaxMillis: 500 }, drainTimeoutMillis: 500 });
      await pool.ready();
      const resyncs: ResyncInfo[] = [];
      pool.on('resync', (info) => resyncs.push(info));

      proxy.cut();
      const cutAt = Date.now();
      while (pool.stats().source.connected && Date.now() - cutAt < 10_000) await sleep(20);
      const noticedMillis = Date.now() - cutAt;
      const keptWhileCut = pool.snapshot().endpoints.size;

      // A quarter deleted, a quarter re-weighted, new keys added: every kind of change is missed.
      const quarter = Math.floor(keys / 4);
      for (let i = 0; i < quarter; i++) await client.delete().key(`${prefix}k${i}`);
      for (let i = quarter; i < 2 * quarter; i++) await client.put(`${prefix}k${i}`).value(`${addr(i + 1)}#3`);
      for (let i = keys; i < keys + quarter; i++) await client.put(`${prefix}k${i}`).value(`${addr(i)}#2`);
      const revision = (await client.get('none').exec()).header.revision;
      await etcdctl(['compact', revision], { endpoints: cluster.endpoints });
      context.log(`compacted to revision ${revision} while the pool was cut off`);

      proxy.resume();
      const resumedAt = Date.now();
      const converged = await convergePool(pool, client, prefix, 20_000);
      const resync = resyncs.find((r) => Number(r.revision) >= Number(revision));
      const stats = pool.stats();
      return {
        id: 'compaction',
        title: compactionScenario.title,
        figure: `cut noticed in ${noticedMillis} ms; ${3 * quarter} changes missed and compacted away; resynced (${resync?.reason ?? 'no resync'}) and equal to etcd ${converged.millis} ms after the link came back: ${describeDiff(converged.endpoints)}`,
        checks: [
          check('last-known endpoints kept while cut', keptWhileCut === keys, `${keptWhileCut} of ${keys} endpoints kept`),
          check('the pool resyncs at or past the compacted revision', resync !== undefined, resync === undefined ? `resyncs: ${JSON.stringify(resyncs)}` : `reason ${resync.reason}, revision ${resync.revision} ≥ ${revision}`),
          check('its state equals etcd (endpoints and anchors)', converged.agreed && stats.anchors.active === stats.anchors.wanted, `${describeDiff(converged.endpoints)}; anchors ${describeDiff(converged.anchors)}, ${stats.anchors.active} active of ${stats.anchors.wanted} wanted, ${Date.now() - resumedAt} ms after resume`),
        ],
        settings: { keys, changesWhileCut: 3 * quarter },
      };
    } finally {
      await rig.stop();
    }
  },
};
