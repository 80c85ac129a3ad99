// gRPC keepalive that etcd and `etcd grpc-proxy` accept. Both enforce a minimum ping
// interval (etcd's --grpc-keepalive-min-time, 5 s by default; the proxy grpc-go's default,
// 5 min) and answer more frequent pings with GOAWAY "too many pings", which grpc-js
// reports as a dropped stream: a quiet source then disconnects and lists again every ~20 s.
// Over 30 s, sources on a quiet prefix — through the proxy and directly — must see no
// disconnect and no resync with the default keepalive; a 5 s keepalive through the proxy
// must be disconnected (evidence that the check can fail). All three run at once.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSource } from '../lib/discovery/create-source.js';
import type { EtcdEndpointSource } from '../lib/discovery/source-etcd.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { startTcpProxy } from '../testkit/tcp-proxy.js';
import { register } from '../lib/discovery/registration.js';
import { silentLogger } from '../lib/core/logger.js';
import { startGrpcProxy } from '../testkit/grpc-proxy.js';
import { converge, directClient } from '../testkit/tap-source.js';

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

t.test('through etcd grpc-proxy: listing, watch, the watchdog probe, a compaction while cut off, and register() leases', async (t) => {
  const proxy = await startProxy();
  const [proxyHost, proxyPort] = proxy.split(':') as [string, string];
  // A TCP proxy between the source and grpc-proxy, so the test can cut that link.
  const link = await startTcpProxy({ targetHost: proxyHost, targetPort: Number(proxyPort) });
  t.teardown(() => link.close());
  const prefix = 'proxied/';
  for (let i = 0; i < 5; i++) await direct.put(`${prefix}k${i}`).value(`10.0.0.${i}:50051`);
  const source = createSource({ target: `etcd:///${prefix}`, etcd: { hosts: [`127.0.0.1:${link.port}`], watchdogMillis: 300, retryMaxMillis: 500, dialTimeoutMillis: 2000 } });
  t.teardown(() => source.close());
  const reasons: string[] = [];
  source.on('resync', (info) => void reasons.push(info.reason));
  await source.ready({ timeoutMillis: 10_000 });
  t.equal(source.snapshot().endpoints.size, 5, 'listing: 5 keys');
  await direct.put(`${prefix}k5`).value('10.0.0.5:50051');
  await waitFor(() => source.snapshot().endpoints.has(`${prefix}k5`), { what: 'a put through the watch' });
  t.pass('watch: the put arrived');
  await sleep(1500);
  t.same(reasons.filter((r) => r !== 'initial'), [], 'the watchdog probed a quiet prefix 5 times through the proxy without a resync');

  link.cut();
  await waitFor(() => !source.status().connected, { what: 'the source to notice the cut' });
  await direct.delete().key(`${prefix}k0`);
  await direct.put(`${prefix}k6`).value('10.0.0.6:50051');
  const { header } = await direct.get(`${prefix}k6`).exec();
  await etcdctl(cluster, 'compact', String(header.revision));
  link.resume();
  t.same(await converge(source, direct, prefix), { lost: [], phantom: [], stale: [] }, 'after a compaction while cut off: equal to etcd');

  const registration = await register({ logger: silentLogger, etcd: { hosts: [proxy] }, prefix, key: 'reg', addr: '10.0.0.9:50051', ttlSeconds: 5 });
  const stored = (await direct.get(`${prefix}reg`).exec()).kvs[0];
  t.ok(stored !== undefined && String(stored.lease) !== '0', 'register(): the key is written with a lease, through the proxy');
  await waitFor(() => source.snapshot().endpoints.has(`${prefix}reg`), { what: 'the registration to reach the source' });
  await registration.close();
  t.equal((await direct.get(`${prefix}reg`).exec()).kvs.length, 0, 'and deleted again on close');
});
