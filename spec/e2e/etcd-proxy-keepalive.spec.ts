// gRPC keepalive that etcd and `etcd grpc-proxy` accept. Both enforce a minimum ping
// interval (etcd's --grpc-keepalive-min-time, 5 s by default; the proxy grpc-go's default,
// 5 min) and answer more frequent pings with GOAWAY "too many pings", which grpc-js
// reports as a dropped stream: a quiet source then disconnects and lists again every ~20 s.
// Over 30 s, sources on a quiet prefix — through the proxy and directly — must see no
// disconnect and no resync with the default keepalive; a 5 s keepalive through the proxy
// must be disconnected (evidence that the check can fail). All three run at once.
// Moved out of spec/etcd-proxy.spec.ts: it waits 30 s by design, so it runs in
// `npm run test:e2e`, not `npm test`.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSource } from '../../lib/discovery/create-source.js';
import type { EtcdEndpointSource } from '../../lib/discovery/source-etcd.js';
import { startEtcd, waitFor } from '../../testkit/tap-etcd.js';
import { startGrpcProxy } from '../../testkit/grpc-proxy.js';
import { directClient } from '../../testkit/tap-source.js';

const QUIET_MILLIS = 30_000;

const cluster = await startEtcd(t);
const direct = directClient(t, cluster.hosts);

/** `etcd grpc-proxy start` in front of the cluster; stopped at teardown, even on failure. */
async function startProxy(): Promise<string> {
  const proxy = await startGrpcProxy(cluster.hosts);
  t.teardown(() => proxy.stop());
  return proxy.host;
}

interface Watched {
  source: EtcdEndpointSource;
  disconnects: number;
  resyncs: number;
}

function watchQuiet(prefix: string, hosts: string[], keepaliveTimeMillis?: number): Watched {
  // The control runs without the leader check: its Status call every second is traffic,
  // which resets grpc-go's ping strikes and so hides the too-frequent pings.
  const etcd = keepaliveTimeMillis === undefined ? { hosts } : { hosts, keepaliveTimeMillis, leaderCheckMillis: 0 };
  const source = createSource({ target: `etcd:///${prefix}`, etcd }) as EtcdEndpointSource;
  t.teardown(() => source.close());
  const watched: Watched = { source, disconnects: 0, resyncs: 0 };
  source.on('disconnected', () => (watched.disconnects += 1));
  source.on('resync', (info) => {
    if (info.reason !== 'initial') watched.resyncs += 1;
  });
  return watched;
}

t.test(`a quiet source keeps its stream for ${QUIET_MILLIS / 1000} s through etcd grpc-proxy and directly`, async (t) => {
  const proxy = await startProxy();
  const viaProxy = watchQuiet('quiet/proxy/', [proxy]);
  const directly = watchQuiet('quiet/direct/', cluster.hosts);
  const pingy = watchQuiet('quiet/pingy/', [proxy], 5000);
  await Promise.all([viaProxy, directly, pingy].map((w) => w.source.ready({ timeoutMillis: 10_000 })));
  await sleep(QUIET_MILLIS);

  t.same({ disconnects: viaProxy.disconnects, resyncs: viaProxy.resyncs }, { disconnects: 0, resyncs: 0 }, 'through the proxy, default keepalive');
  t.same({ disconnects: directly.disconnects, resyncs: directly.resyncs }, { disconnects: 0, resyncs: 0 }, 'directly, default keepalive');
  t.ok(pingy.disconnects >= 1, `a 5 s keepalive through the proxy is disconnected (${pingy.disconnects} disconnects, ${pingy.resyncs} resyncs)`);

  await direct.put('quiet/proxy/b1').value('{"addr":"10.0.0.1:50051"}');
  await waitFor(() => viaProxy.source.snapshot().endpoints.has('quiet/proxy/b1'), { what: 'the put to arrive through the proxy' });
  t.pass('a put arrives through the proxy as a change');
});

