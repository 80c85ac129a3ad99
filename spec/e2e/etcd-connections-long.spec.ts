// A source closed after a long outage leaves no connection open: the case of
// spec/etcd-connections.spec.ts that takes 40 s (past the 30 s a released etcd channel
// once lingered, docs/decisions.md), so it runs in `npm run test:e2e`, not `npm test`.
// Counted on the client side with `ss`, for this process only.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSource } from '../../lib/discovery/create-source.js';
import { startEtcd, waitFor } from '../../testkit/tap-etcd.js';
import { ourConnections } from '../../testkit/connections.js';
import { startTcpProxy } from '../../testkit/tcp-proxy.js';

const quick = { retryInitialMillis: 100, retryMaxMillis: 500, dialTimeoutMillis: 1000 };

t.test('a source closed after a long outage (40 s, past any release linger) leaves no connection open', async (t) => {
  const cluster = await startEtcd(t);
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: cluster.members[0]!.clientPort });
  t.teardown(() => proxy.close());
  const source = createSource({ target: 'etcd:///leak/', etcd: { hosts: [proxy.host + ':' + proxy.port], ...quick } });
  t.teardown(() => source.close());
  await source.ready({ timeoutMillis: 10_000 });
  t.ok(ourConnections(proxy.port) >= 1, 'counting works: the source is connected');
  proxy.cut();
  await sleep(40_000); // some 80 retry cycles of at most 500 ms
  proxy.resume();
  await waitFor(() => source.status().connected, { what: 'the source to reconnect', timeoutMs: 15_000 });
  await source.close();
  await sleep(3000);
  const left = ourConnections(proxy.port);
  t.equal(left, 0, `no connection established 3 s after close() (${left} found)`);
});
