// Fault 4: half-open stream. The TCP proxy between the pool and etcd freezes without
// closing anything, so no error ever reaches the watch. The watchdog must notice the
// silence within its period (quiet time + probe deadline) and resync over a new connection.
import type { ResyncInfo } from '../../lib/index.js';
import { convergePool, describeDiff } from '../../testkit/etcd-truth.js';
import { check, sleep, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';

export const halfOpenScenario: FaultScenario = {
  id: 'half-open',
  title: 'the link to etcd freezes without closing (half-open)',
  async run(context) {
    const prefix = 'halfopen/';
    const watchdogMillis = context.short ? 1000 : 3000;
    const dialTimeoutMillis = 1000;
    // The pool's own gRPC keepalive would also catch a frozen link, later; it is set well
    // above the watchdog so this measures the watchdog.
    const keepaliveTimeMillis = 60_000;
    const period = watchdogMillis + dialTimeoutMillis;
    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(1);
      const proxy = await rig.proxy(cluster.members[0]!);
      const backends = await rig.backends('h1', 'h2');
      const client = rig.etcdClient(cluster);
      await client.put(`${prefix}a`).value(`${backends[0]!.address}#2`);
      const pool = rig.pool({
        target: `etcd:///${prefix}`,
        etcd: { hosts: [`127.0.0.1:${proxy.port}`], watchdogMillis, dialTimeoutMillis, keepaliveTimeMillis, retryMaxMillis: 500 },
        drainTimeoutMillis: 500,
      });
      await pool.ready();
      await sleep(300);

      const resynced = new Promise<ResyncInfo & { at: number }>((resolve) => {
        const onResync = (info: ResyncInfo): void => {
          if (info.reason === 'initial') return;
          pool.off('resync', onResync);
          resolve({ ...info, at: Date.now() });
        };
        pool.on('resync', onResync);
      });
      proxy.pause();
      const pausedAt = Date.now();
      // Missed while frozen: a new backend and the old one gone.
      await client.put(`${prefix}b`).value(`${backends[1]!.address}#3`);
      await client.delete().key(`${prefix}a`);
      let giveUp: NodeJS.Timeout | undefined;
      const info = await Promise.race([resynced, new Promise<undefined>((resolve) => (giveUp = setTimeout(() => resolve(undefined), 4 * period + 5000)))]);
      clearTimeout(giveUp);
      const detectedMillis = info === undefined ? undefined : info.at - pausedAt;
      const converged = await convergePool(pool, client, prefix, 10_000);
      proxy.resume();
      return {
        id: 'half-open',
        title: halfOpenScenario.title,
        figure: detectedMillis === undefined ? `no resync within ${4 * period + 5000} ms` : `frozen link detected and resynced in ${detectedMillis} ms (reason ${info!.reason}; period ${period} ms = watchdog ${watchdogMillis} + probe deadline ${dialTimeoutMillis}); ${describeDiff(converged.endpoints)}`,
        checks: [
          check('the watchdog, not the transport, detects it', info?.reason === 'watchdog', `resync reason: ${info?.reason ?? 'none'}`),
          check(`detected within its period (≤ ${period} ms + 500 ms scheduling slack)`, detectedMillis !== undefined && detectedMillis <= period + 500, `${detectedMillis ?? '∞'} ms`),
          check('after the resync the pool equals etcd', converged.agreed, `${describeDiff(converged.endpoints)}; anchors ${describeDiff(converged.anchors)}`),
        ],
        settings: { watchdogMillis, probeDeadlineMillis: dialTimeoutMillis, keepaliveTimeMillis },
      };
    } finally {
      await rig.stop();
    }
  },
};
