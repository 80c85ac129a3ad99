// Fault 1: etcd leader killed mid-churn. A 3-member cluster takes ~50 puts/deletes a
// second on 100 keys while the leader, and then the member carrying the pool's watch, are
// SIGKILLed and restarted. Afterwards the pool's endpoints and anchors equal etcd's, and
// the longest time any key's view trailed etcd is reported.
import { createEtcdClient, type EtcdConnection, etcdOptionsSchema } from '../../lib/internal.js';
import { leaderOf } from '../../etcd-dev/etcd-dev.mjs';
import type { TcpProxy } from '../../testkit/tcp-proxy.js';
import { ChurnWriter } from './churn-writer.js';
import { convergePool, describeDiff } from '../../testkit/etcd-truth.js';
import { check, sleep, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';
import { ViewLag } from './view-lag.js';

/** The proxy (member) that forwards the most bytes to the pool over `millis`: the one carrying the watch. */
async function busiestProxy(proxies: readonly TcpProxy[], millis: number): Promise<number> {
  const before = proxies.map((p) => p.bytesToClient());
  await sleep(millis);
  const grown = proxies.map((p, i) => p.bytesToClient() - before[i]!);
  return grown.indexOf(Math.max(...grown));
}

export const etcdChurnScenario: FaultScenario = {
  id: 'etcd-churn',
  title: 'etcd leader, then the watch member, killed and restarted during 50 writes/s',
  async run(context) {
    const prefix = 'churn/';
    const settle = context.short ? 1500 : 5000;
    const down = context.short ? 2000 : 5000;
    const watchdogMillis = 2000;
    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(3);
      const proxies: TcpProxy[] = [];
      for (const m of cluster.members) proxies.push(await rig.proxy(m));
      const backends = await rig.backends('c1', 'c2');
      // The writer skips a dead member the way the pool's own client does (circuit breaker per host).
      const writerClient = rig.etcdClient(createEtcdClient(etcdOptionsSchema.parse({ hosts: cluster.hosts }) as EtcdConnection));
      const truthClient = rig.etcdClient(cluster);

      // One etcd host per proxy, so the scenario can tell which member carries the watch.
      const pool = rig.pool({
        target: `etcd:///${prefix}`,
        etcd: { hosts: proxies.map((p) => `127.0.0.1:${p.port}`), retryMaxMillis: 500, dialTimeoutMillis: 1000, watchdogMillis },
        drainTimeoutMillis: 1000,
      });
      const lag = new ViewLag(pool);
      const writer = new ChurnWriter(writerClient, { prefix, keys: 100, opsPerSecond: 50, addresses: backends.map((b) => b.address), maxAnchors: 3, seed: 7, lag });
      rig.defer(() => writer.stop());
      const prefilled = await writer.prefill();
      await pool.ready();
      const resyncsBefore = pool.stats().source.resyncs;
      writer.start();

      await sleep(settle);
      const leader = await leaderOf(cluster);
      if (!leader) throw new Error('no etcd leader found');
      context.log(`killing leader ${leader.name}`);
      await leader.kill('SIGKILL');
      await sleep(down);
      await leader.start();
      await sleep(settle);

      const watched = cluster.members[await busiestProxy(proxies, 1000)]!;
      const resyncsBeforeVictim = pool.stats().source.resyncs;
      context.log(`killing ${watched.name}, the member carrying the pool's watch`);
      await watched.kill('SIGKILL');
      await sleep(down);
      await watched.start();
      await sleep(settle);
      await writer.stop();

      const converged = await convergePool(pool, truthClient, prefix, 20_000);
      const resyncs = pool.stats().source.resyncs;
      const stats = pool.stats();
      return {
        id: 'etcd-churn',
        title: etcdChurnScenario.title,
        figure: `${writer.ops} writes (${writer.failures} refused during kills), longest view lag ${lag.maxMillis} ms (${lag.maxKey || 'none'}), ${describeDiff(converged.endpoints)} after ${converged.millis} ms, ${resyncs - resyncsBefore} resync(s)`,
        checks: [
          check('the churn ran at about 50 writes/s', writer.ops >= 30 * ((2 * settle + 2 * down + 1000) / 1000), `${writer.ops} acknowledged writes in ${((2 * settle + 2 * down + 1000) / 1000).toFixed(1)} s`),
          check('0 lost, 0 phantom endpoints', converged.agreed && converged.endpoints.lost.length + converged.endpoints.phantom.length + converged.endpoints.stale.length === 0, `${describeDiff(converged.endpoints)} (keys ${[...converged.endpoints.lost, ...converged.endpoints.phantom, ...converged.endpoints.stale].slice(0, 5).join(', ') || 'none'})`),
          check('open anchors equal the anchors etcd asks for', converged.agreed && stats.anchors.active === stats.anchors.wanted, `${describeDiff(converged.anchors)}; ${stats.anchors.active} active of ${stats.anchors.wanted} wanted`),
          check('killing the watch member made the pool resync', resyncs > resyncsBeforeVictim, `${resyncs - resyncsBeforeVictim} resync(s) after ${watched.name} was killed`),
        ],
        settings: { members: 3, keys: 100, writesPerSecond: 50, prefilled, downMillis: down, settleMillis: settle, watchdogMillis },
      };
    } finally {
      await rig.stop();
    }
  },
};
