// Servers that police pings. Two grpc-go backends with grpc-go's default enforcement
// (MinTime 5 min, no pings without a stream, GOAWAY "too_many_pings" after 2 strikes),
// each behind a proxy that reads the HTTP/2 frames going through. A pool and an etcd:///
// channel, both with health checks on (a Watch stream per connection that says nothing
// for the whole run), are left nearly quiet: each holds calls that the server answers
// only at the end (silent streams, the ones a liveness check would ping), and every
// 20 s a few slow calls (1.5 s, longer than the quiet time before a ping) and a few quick
// ones. 10 minutes in the full profile, 1 in the short one.
//
// Bars: 0 GOAWAYs, every connection kept (the servers count them), no client PING less
// than 5 minutes after the previous one on its connection unless the server wrote
// HEADERS or DATA in between, every call answered, and pings were sent (the check ran).
import * as grpc from '@grpc/grpc-js';
import type { AnchorPool } from '../../lib/index.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';
import { GoBackend } from '../../testkit/go-backend.js';
import { goaways, pingGaps } from '../../testkit/h2-frames.js';
import { startTcpProxy, type TcpProxy } from '../../testkit/tcp-proxy.js';
import { check, sleep, type FaultScenario } from './fault.js';
import { FaultRig } from './rig.js';

const PREFIX = 'pings/';
const ANCHORS = 2;
/** grpc-go's default MinTime. */
const MIN_TIME_MILLIS = 5 * 60_000;
const ROUND_MILLIS = 20_000;

export const pingPolicyScenario: FaultScenario = {
  id: 'ping-policy',
  title: 'a quiet pool with health checks against grpc-go servers that police pings',
  async run(context) {
    const minutes = context.short ? 1 : 10;
    const periodMillis = minutes * 60_000;
    const rig = new FaultRig();
    try {
      const cluster = await rig.etcd(1);
      const etcd = rig.etcdClient(cluster);
      const backends = [new GoBackend({ name: 'g1' }), new GoBackend({ name: 'g2' })];
      rig.defer(() => Promise.all(backends.map((b) => b.kill())));
      await Promise.all(backends.map((b) => b.start()));
      const proxies: TcpProxy[] = [];
      for (const [i, backend] of backends.entries()) {
        const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: backend.port, http2Frames: true });
        rig.defer(() => proxy.close());
        proxies.push(proxy);
        await etcd.put(`${PREFIX}g${i + 1}`).value(JSON.stringify({ addr: `127.0.0.1:${proxy.port}`, anchors: ANCHORS }));
      }
      const pool: AnchorPool = rig.pool({ target: `etcd:///${PREFIX}`, etcd: { hosts: cluster.hosts }, healthCheck: {} });
      const native = await rig.nativeClient(cluster, PREFIX, { healthCheck: {} });
      await pool.ready();
      const stub = pool.client(EchoClient);
      await sleep(500);
      const connectionsBefore = await Promise.all(backends.map(async (b) => (await b.stats()).connectionsTotal));

      // Silent streams: answered only at the end of the period.
      const outcomes: { ok: number; failed: string[] } = { ok: 0, failed: [] };
      const tally = (call: Promise<unknown>): Promise<void> =>
        call.then(
          () => void (outcomes.ok += 1),
          (err: grpc.ServiceError) => void outcomes.failed.push(`${grpc.status[err.code] ?? err.code}: ${err.details}`),
        );
      const silent = [stub, native].flatMap((client) => Array.from({ length: 4 }, () => tally(callEcho(client, periodMillis + 30_000, `sleep:${periodMillis}`))));
      const started = performance.now();
      const rounds: Promise<void>[] = [];
      while (performance.now() - started < periodMillis - ROUND_MILLIS / 2) {
        for (const client of [stub, native]) {
          for (let i = 0; i < 2; i++) rounds.push(tally(callEcho(client, 10_000, 'sleep:1500')));
          for (let i = 0; i < 4; i++) rounds.push(tally(callEcho(client, 5000, 'ping')));
        }
        await sleep(ROUND_MILLIS);
        context.log(`${Math.round((performance.now() - started) / 1000)} s: ${pool.stats().liveness.pings} pings by the pool`);
      }
      await Promise.all([...silent, ...rounds]);

      const connectionsAfter = await Promise.all(backends.map(async (b) => (await b.stats()).connectionsTotal));
      const connections = proxies.flatMap((p) => p.frames());
      const away = goaways(connections);
      const quick = connections.flatMap((conn) => pingGaps(conn, MIN_TIME_MILLIS).map((p) => ({ conn: conn.id, gap: Math.round(p.gapMillis) })));
      const pingsPerConnection = connections.map((c) => c.events.filter((e) => e.kind === 'ping').length);
      const pings = pingsPerConnection.reduce((a, b) => a + b, 0);
      const liveness = pool.stats().liveness;
      const figure = `${minutes} min: ${connections.length} connections, client pings per connection [${pingsPerConnection.join(' ')}] (${pings} in all; the pool's own count ${liveness.pings}), pings less than 5 min after the previous one with no server write between: ${quick.length}, GOAWAYs: ${away.length}, connections made by the servers before/after: ${connectionsBefore.join('+')} / ${connectionsAfter.join('+')}, calls answered ${outcomes.ok} of ${outcomes.ok + outcomes.failed.length}, connections dropped by the liveness check: ${liveness.frozen}`;
      return {
        id: 'ping-policy',
        title: pingPolicyScenario.title,
        figure,
        checks: [
          check('0 GOAWAYs from the servers', away.length === 0, away.map((g) => `conn ${g.connId}: code ${g.errorCode} ${g.debug}`).join('; ') || 'none'),
          check('every connection kept (the servers made no new one)', connectionsAfter.every((n, i) => n === connectionsBefore[i]), `connections made before/after: ${connectionsBefore.join('+')} / ${connectionsAfter.join('+')}`),
          check('no ping less than 5 min after the previous one on its connection without a server write between', quick.length === 0, quick.map((q) => `conn ${q.conn}: ${q.gap} ms`).join('; ') || 'none'),
          check('every call answered, the silent ones included', outcomes.failed.length === 0, `${outcomes.ok} answered; failed: ${outcomes.failed.slice(0, 3).join(' | ') || 'none'}`),
          check('the liveness check ran (it pinged) and dropped nothing', pings > 0 && liveness.frozen === 0, `${pings} pings seen, ${liveness.frozen} dropped`),
        ],
        settings: { minutes, anchors: ANCHORS, roundMillis: ROUND_MILLIS, serverMinTimeMillis: MIN_TIME_MILLIS },
      };
    } finally {
      await rig.stop();
    }
  },
};
