// The lease pool following a real etcd: anchors created, grown, shrunk and drained as
// operators change keys with etcdctl, counted as connections on the server side.
import t from 'tap';
import { createPool } from '../lib/pool/pool.js';
import { silentLogger } from '../lib/core/logger.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { callEcho, EchoClient, startBackend, type Backend } from '../testkit/tap-backend.js';
import { runFixture } from './support/fixture-process.js';


const cluster = await startEtcd(t);

async function connections(backend: Backend, count: number, what: string): Promise<number[]> {
  return waitFor(
    async () => {
      const { connections } = await backend.stats();
      return connections.length === count ? connections : false;
    },
    { timeoutMs: 15_000, what: `${what}: ${count} connection(s) on ${backend.name}` },
  );
}

t.test('etcdctl put anchors 3 → 3 connections; 5 keeps the first 3; 2 after drain', async (t) => {
  const backend = await startBackend(t, { name: 'echo' });
  const pool = createPool({ target: 'etcd:///services/echo/', etcd: { hosts: cluster.hosts }, logger: silentLogger, drainTimeoutMillis: 5000 });
  t.teardown(() => pool.close());
  await etcdctl(cluster, 'put', 'services/echo/b1', JSON.stringify({ addr: backend.address, anchors: 3 }));
  await pool.ready();
  const three = await connections(backend, 3, 'anchors 3');
  t.equal(three.length, 3, 'exactly 3 server-side connections');

  await etcdctl(cluster, 'put', 'services/echo/b1', JSON.stringify({ addr: backend.address, anchors: 5 }));
  const five = await connections(backend, 5, 'anchors 5');
  t.same(five.filter((port) => three.includes(port)), three, 'the first 3 connections are unchanged (same remote ports)');

  await etcdctl(cluster, 'put', 'services/echo/b1', JSON.stringify({ addr: backend.address, anchors: 2 }));
  const two = await connections(backend, 2, 'anchors 2');
  t.equal(two.filter((port) => three.includes(port)).length, 2, 'the survivors are two of the original connections');
  t.match(pool.stats(), { endpoints: 1, anchors: { wanted: 2, active: 2 } });
});

t.test('a removed key with a lease held: the lease works until released, then the connection closes', async (t) => {
  const backend = await startBackend(t, { name: 'doomed' });
  const stay = await startBackend(t, { name: 'stays' });
  const pool = createPool({ target: 'etcd:///svc/drain/', etcd: { hosts: cluster.hosts }, logger: silentLogger, drainTimeoutMillis: 30_000 });
  t.teardown(() => pool.close());
  await etcdctl(cluster, 'put', 'svc/drain/doomed', `${backend.address}#1`);
  await etcdctl(cluster, 'put', 'svc/drain/stays', `${stay.address}#1`);
  await pool.ready();
  await waitFor(() => pool.stats().anchors.byState.READY === 2, { what: 'both anchors READY' });
  let lease = await pool.acquire();
  if (lease.address !== backend.address) {
    const other = lease;
    lease = await pool.acquire();
    other.release();
  }
  t.equal(lease.address, backend.address, 'holding a lease on the backend about to be removed');

  const removed = new Promise((resolve) => pool.once('endpoint-removed', resolve));
  await etcdctl(cluster, 'del', 'svc/drain/doomed');
  await removed;
  t.match(pool.stats(), { endpoints: 1, anchors: { active: 1, draining: 1 } });
  for (let i = 0; i < 5; i++) {
    const next = await pool.acquire();
    t.equal(next.address, stay.address, 'new leases go elsewhere');
    next.release();
  }
  const reply = await callEcho(lease.client(EchoClient));
  t.equal(reply.server, 'doomed', 'the held lease still works');
  t.equal((await backend.stats()).connections.length, 1, 'its connection is still open');
  lease.release();
  await connections(backend, 0, 'after the last lease is released');
  t.match(pool.stats(), { anchors: { draining: 0 } });
});

t.test('a process that only creates, uses and closes a pool exits by itself', async (t) => {
  const backend = await startBackend(t);
  const { code, output } = await runFixture('pool-close-exits', { BACKEND: backend.address });
  t.equal(code, 0, `exited by itself (${output})`);
  t.match(output, /closed/);
  await connections(backend, 0, 'after the child exited');
});
