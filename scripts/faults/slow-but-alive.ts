// A call that is merely slow: a backend whose handler takes 20 s, on an otherwise quiet
// connection (health checks on, so a Watch stream is open too), through a lease, through
// pool.client() and on etcd:///, against a grpc-js and a grpc-go backend. The liveness
// check pings it once (its ACK shows the connection alive) and must never take it out.
import * as grpc from '@grpc/grpc-js';
import type { AnchorPool } from '../../lib/index.js';
import { Backend } from '../../testkit/echo/backend.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';
import { GoBackend } from '../../testkit/go-backend.js';
import { check, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';

const PREFIX = 'slow/';
const HANDLER_MILLIS = 20_000;

export const slowButAliveScenario: FaultScenario = {
  id: 'slow-but-alive',
  title: 'a 20 s handler on an otherwise quiet connection (grpc-js and grpc-go backends)',
  async run() {
    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(1);
      const etcd = rig.etcdClient(cluster);
      const js = new Backend({ name: 'js' });
      const go = new GoBackend({ name: 'go' });
      rig.defer(() => Promise.all([js.kill(), go.kill()]));
      await Promise.all([js.start(), go.start()]);
      const connectionsOf = async (): Promise<number[]> => [(await js.stats()).connections.length, (await go.stats()).connectionsTotal];
      await etcd.put(`${PREFIX}js`).value(JSON.stringify({ addr: js.address, anchors: 1 }));
      await etcd.put(`${PREFIX}go`).value(JSON.stringify({ addr: go.address, anchors: 1 }));
      const pool: AnchorPool = rig.pool({ target: `etcd:///${PREFIX}`, etcd: { hosts: cluster.hosts }, healthCheck: {} });
      const leftReady: string[] = [];
      pool.on('anchor-state', (e) => {
        if (e.previous === 'READY') leftReady.push(`${e.key}#${e.anchor} → ${e.state}`);
      });
      const native = await rig.nativeClient(cluster, PREFIX, { healthCheck: {} });
      await pool.ready();
      // Both keys READY and SERVING on both paths before the slow calls start.
      for (let i = 0; i < 4; i++) await Promise.all([callEcho(pool.client(EchoClient), 5000), callEcho(native, 5000)]);
      const before = await connectionsOf();

      const request = `sleep:${HANDLER_MILLIS}`;
      const deadline = HANDLER_MILLIS + 10_000;
      const started = performance.now();
      const outcome = (call: Promise<{ server: string }>): Promise<string> =>
        call.then(
          (reply) => `ok (${reply.server}, ${Math.round((performance.now() - started) / 1000)} s)`,
          (err: grpc.ServiceError) => `${grpc.status[err.code]}: ${err.details}`,
        );
      // Two of each, so that with round robin both backends get a slow call on every path.
      const leases = await Promise.all([pool.acquire(), pool.acquire()]);
      const results = await Promise.all([
        ...leases.map((lease) => outcome(callEcho(lease.client(EchoClient), deadline, request)).finally(() => lease.release())),
        outcome(callEcho(pool.client(EchoClient), deadline, request)),
        outcome(callEcho(pool.client(EchoClient), deadline, request)),
        outcome(callEcho(native, deadline, request)),
        outcome(callEcho(native, deadline, request)),
      ]);
      const after = await connectionsOf();
      const liveness = pool.stats().liveness;
      const ok = results.filter((r) => r.startsWith('ok')).length;
      return {
        id: 'slow-but-alive',
        title: slowButAliveScenario.title,
        figure: `${ok} of ${results.length} ${HANDLER_MILLIS / 1000} s calls answered (${results.join('; ')}); pool: ${liveness.pings} pings, ${liveness.frozen} dropped; connections made by the backends (js, go) before/after: ${before.join(',')} / ${after.join(',')}; anchors that left READY: ${leftReady.length}`,
        checks: [
          check('every slow call succeeds, on every path', ok === results.length, results.join('; ')),
          check('the check pinged (it looked) and dropped nothing', liveness.pings > 0 && liveness.frozen === 0, `${liveness.pings} pings, ${liveness.frozen} dropped`),
          check('no anchor left READY; no new connection', leftReady.length === 0 && after.every((n, i) => n === before[i]), `left READY: ${leftReady.join(', ') || 'none'}; connections ${before.join(',')} → ${after.join(',')}`),
        ],
        settings: { handlerMillis: HANDLER_MILLIS, healthChecks: 'on' },
      };
    } finally {
      await rig.stop();
    }
  },
};
