// A source and register() through `etcd grpc-proxy`: listing, watch, the watchdog probe,
// a compaction while cut off, and leases. The keepalive check against the proxy (30 s on
// a quiet prefix, which cannot be shortened: the pings it is about come every 5 s) is
// spec/e2e/etcd-proxy-keepalive.spec.ts, run by `npm run test:e2e`.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSource } from '../lib/discovery/create-source.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { startTcpProxy } from '../testkit/tcp-proxy.js';
import { register } from '../lib/discovery/registration.js';
import { silentLogger } from '../lib/core/logger.js';
import { startGrpcProxy } from '../testkit/grpc-proxy.js';
import { converge, directClient } from '../testkit/tap-source.js';

const cluster = await startEtcd(t);
const direct = directClient(t, cluster.hosts);

/** `etcd grpc-proxy start` in front of the cluster; stopped at teardown, even on failure. */
async function startProxy(): Promise<string> {
  const proxy = await startGrpcProxy(cluster.hosts);
  t.teardown(() => proxy.stop());
  return proxy.host;
}

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
