// Every etcd connection a source or a registration opened is closed 3 s after close(),
// also after etcd (or a TCP proxy in front of it) was unreachable for several retry
// cycles. Counted on the client side with `ss`, for this process only (etcd dials its
// own client port too). The tests behind a TCP proxy share one etcd (each counts the
// connections to its own proxy); the one that kills etcd has its own. They wait on real
// retry cycles, not on each other, so they run at once. The 40 s outage is
// spec/e2e/etcd-connections-long.spec.ts (`npm run test:e2e`).
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSource } from '../lib/discovery/create-source.js';
import { register } from '../lib/discovery/registration.js';
import { startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { ourConnections } from '../testkit/connections.js';
import { startTcpProxy } from '../testkit/tcp-proxy.js';

t.jobs = 4;

const quick = { retryInitialMillis: 100, retryMaxMillis: 500, dialTimeoutMillis: 1000 };

const shared = await startEtcd(t);

/** A TCP proxy the test controls in front of the shared etcd; closed at teardown. */
async function proxyToShared(t: Test) {
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: shared.members[0]!.clientPort });
  t.teardown(() => proxy.close());
  return proxy;
}

/** The shared etcd behind a TCP proxy the test controls, and a ready source through it; all stopped at teardown. */
async function proxiedSource(t: Test) {
  const proxy = await proxyToShared(t);
  const source = createSource({ target: 'etcd:///leak/', etcd: { hosts: [proxy.host + ':' + proxy.port], ...quick } });
  t.teardown(() => source.close());
  await source.ready({ timeoutMillis: 10_000 });
  return { proxy, source };
}

t.test('a source closed after an outage behind a TCP proxy leaves no connection open', async (t) => {
  const { proxy, source } = await proxiedSource(t);
  t.ok(ourConnections(proxy.port) >= 1, 'counting works: the source is connected');

  proxy.cut();
  await sleep(4000); // several retry cycles of 100–500 ms
  proxy.resume();
  await waitFor(() => source.status().connected, { what: 'the source to reconnect', timeoutMs: 15_000 });
  await source.close();
  await sleep(3000);
  const left = ourConnections(proxy.port);
  t.equal(left, 0, `no connection established 3 s after close() (${left} found)`);
});

t.test('a source closed after etcd was killed and restarted leaves no connection open', async (t) => {
  const cluster = await startEtcd(t);
  const member = cluster.members[0]!;
  const source = createSource({ target: 'etcd:///leak/', etcd: { hosts: cluster.hosts, ...quick } });
  t.teardown(() => source.close());
  await source.ready({ timeoutMillis: 10_000 });
  t.ok(ourConnections(member.clientPort) >= 1, 'counting works: the source is connected');

  await member.kill('SIGKILL');
  await sleep(4000);
  await member.start();
  await waitFor(() => source.status().connected, { what: 'the source to reconnect', timeoutMs: 15_000 });
  await source.close();
  await sleep(3000);
  const left = ourConnections(member.clientPort);
  t.equal(left, 0, `no connection established 3 s after close() (${left} found)`);
});

t.test('a source closed while etcd is unreachable leaves no connection once etcd is back', async (t) => {
  const { proxy, source } = await proxiedSource(t);
  proxy.cut();
  await sleep(2000);
  await source.close();
  proxy.resume();
  await sleep(3000);
  const left = ourConnections(proxy.port);
  t.equal(left, 0, `no connection established 3 s after etcd came back (${left} found)`);
});

t.test('a registration closed after an outage leaves no connection open', async (t) => {
  const proxy = await proxyToShared(t);
  const registration = await register({
    etcd: { hosts: [proxy.host + ':' + proxy.port], ...quick },
    prefix: 'leak/',
    key: 'b1',
    addr: '127.0.0.1:50051',
    ttlSeconds: 3,
  });
  t.teardown(() => registration.close());
  t.ok(ourConnections(proxy.port) >= 1, 'counting works: the registration is connected');

  const registered = new Promise<void>((resolve) => registration.once('registered', () => resolve()));
  proxy.cut();
  await sleep(5000); // past the TTL: the lease is lost and registering again retries
  proxy.resume();
  await registered;
  await registration.close();
  await sleep(3000);
  const left = ourConnections(proxy.port);
  t.equal(left, 0, `no connection established 3 s after close() (${left} found)`);
});
