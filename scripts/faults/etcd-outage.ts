// Fault 2: etcd fully down (single node, SIGKILLed) for 30 s while leases flow. The pool
// keeps serving the last-known backends for the whole outage, and changes made after etcd
// is back arrive.
import { convergePool, describeDiff } from '../../testkit/etcd-truth.js';
import { check, sleep, type FaultScenario } from './fault.js';
import { LeaseLoad, percent } from './lease-load.js';
import { FaultRig } from './rig.js';
import { ViewLag } from './view-lag.js';

export const etcdOutageScenario: FaultScenario = {
  id: 'etcd-outage',
  title: 'etcd down for 30 s while leases flow; changes after the restart arrive',
  async run(context) {
    const prefix = 'outage/';
    const outageMillis = context.short ? 8000 : 30_000;
    const loops = 16;
    // The defaults a user gets: reconnect backoff up to 5 s, etcd call deadline 5 s.
    const retryMaxMillis = 5000;
    const dialTimeoutMillis = 5000;
    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(1);
      const member = cluster.members[0]!;
      const backends = await rig.backends('o1', 'o2', 'o3');
      const client = rig.etcdClient(cluster);
      for (const [i, b] of backends.slice(0, 2).entries()) await client.put(`${prefix}b${i + 1}`).value(JSON.stringify({ addr: b.address, anchors: 2 }));
      const pool = rig.pool({ target: `etcd:///${prefix}`, etcd: { hosts: cluster.hosts }, drainTimeoutMillis: 1000 });
      const lag = new ViewLag(pool);
      await pool.ready();
      const load = new LeaseLoad(pool, loops);
      rig.defer(() => load.stop());
      await sleep(1000);
      const before = load.take();

      context.log(`killing etcd for ${outageMillis / 1000} s`);
      await member.kill('SIGKILL');
      const killedAt = Date.now();
      let sawDisconnected = false;
      while (Date.now() - killedAt < outageMillis) {
        await sleep(250);
        sawDisconnected ||= !pool.stats().source.connected;
      }
      const during = load.take();
      await member.start();
      const restartedAt = Date.now();

      // Changes an operator makes once etcd is back: a third backend, one removed, one re-weighted.
      await client.put(`${prefix}b3`).value(JSON.stringify({ addr: backends[2]!.address, anchors: 3 }));
      lag.acked(`${prefix}b3`, `${backends[2]!.address}#3`);
      await client.delete().key(`${prefix}b1`);
      lag.acked(`${prefix}b1`, undefined);
      await client.put(`${prefix}b2`).value(JSON.stringify({ addr: backends[1]!.address, anchors: 1 }));
      lag.acked(`${prefix}b2`, `${backends[1]!.address}#1`);
      const converged = await convergePool(pool, client, prefix, 30_000);
      const arrivedMillis = Date.now() - restartedAt;
      await sleep(1000);
      await load.stop();
      const after = load.take();
      const onNew = pool.anchors().filter((a) => a.key === `${prefix}b3`).reduce((n, a) => n + a.acquired, 0);

      const bound = retryMaxMillis + dialTimeoutMillis;
      const attempts = during.acquired + during.acquireFailures;
      return {
        id: 'etcd-outage',
        title: etcdOutageScenario.title,
        figure: `${percent(during.acquired, attempts)} of ${attempts} acquires and ${percent(during.calls, during.calls + during.callFailures)} of calls succeeded during ${outageMillis / 1000} s without etcd; changes after the restart arrived in ${arrivedMillis} ms (${lag.maxMillis} ms after their writes)`,
        checks: [
          check('100% of acquires succeed during the outage', during.acquireFailures === 0 && during.acquired > 0, `${during.acquired} acquired, ${during.acquireFailures} failed ${JSON.stringify(during.acquireErrors)}; before the kill ${before.acquired}`),
          check('calls keep reaching the last-known backends', during.callFailures === 0 && during.calls > 0, `${during.calls} calls OK, ${during.callFailures} failed`),
          check('the outage is reported (etcd disconnected)', sawDisconnected, `status.connected went false: ${sawDisconnected}`),
          check(`changes made after the restart arrive (≤ ${bound} ms: backoff max + call deadline)`, converged.agreed && arrivedMillis <= bound, `${describeDiff(converged.endpoints)} after ${arrivedMillis} ms from the restart`),
          check('the backend added after the restart gets leases', onNew > 0 && after.acquireFailures === 0, `${onNew} leases on it in the second after; ${after.acquireFailures} failed acquires`),
        ],
        settings: { outageMillis, loops, anchors: '2+2, then 1+3', retryMaxMillis, dialTimeoutMillis },
      };
    } finally {
      await rig.stop();
    }
  },
};
