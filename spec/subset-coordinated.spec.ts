// Coordinated subsets against a real etcd and real grpc-js backends, connections counted
// by the servers: clients (pools and anchored_round_robin channels together) register
// under the clients prefix, learn their rank, and split the backends evenly; a client
// that leaves gives its keys to the others; an id held by another live client is a
// reported conflict; an outage of etcd changes nothing.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { createPool, silentLogger, type AnchorPool } from '../lib/index.js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import type { AnchorPoolError } from '../lib/core/errors.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { callEcho, EchoClient, startBackend, type Backend } from '../testkit/tap-backend.js';

const cluster = await startEtcd(t);
const etcd = { hosts: cluster.hosts };
registerAnchorpool({ logger: silentLogger, etcd });

async function connectionsPerBackend(backends: readonly Backend[]): Promise<number[]> {
  return Promise.all(backends.map(async (b) => (await b.stats()).connections.length));
}

async function backendsUnder(t: Test, prefix: string, count: number): Promise<Backend[]> {
  const backends: Backend[] = [];
  for (let i = 0; i < count; i++) {
    const backend = await startBackend(t, { name: `b${i}` });
    backends.push(backend);
    await etcdctl(cluster, 'put', `${prefix}b${i}`, JSON.stringify({ addr: backend.address, anchors: 1 }));
  }
  return backends;
}

function pool(t: Test, prefix: string, clientId: string, extra: Record<string, unknown> = {}): AnchorPool {
  const p = createPool({ target: `etcd:///${prefix}`, etcd, logger: silentLogger, subset: { size: 2, mode: 'coordinated', clientId, ttlSeconds: 2, ...extra } });
  t.teardown(() => p.close());
  return p;
}

async function clientsIn(prefix: string): Promise<string[]> {
  const { stdout } = await etcdctl(cluster, 'get', '--prefix', '--keys-only', `anchorpool.clients/${prefix}`);
  return stdout.split('\n').filter((line) => line.length > 0);
}

t.test('four clients, two paths, eight backends, subsets of 2: every backend in exactly one subset', async (t) => {
  const prefix = 'coord/even/';
  const backends = await backendsUnder(t, prefix, 8);
  const pools = [pool(t, prefix, 'c0'), pool(t, prefix, 'c2')];
  const channels = ['c1', 'c3'].map((clientId) => {
    const echo = new EchoClient(`etcd:///${prefix}`, grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { subset: { size: 2, mode: 'coordinated', clientId, ttlSeconds: 2 } } }] }),
      'grpc.use_local_subchannel_pool': 1,
    });
    t.teardown(() => echo.close());
    return echo;
  });
  for (const echo of channels) await callEcho(echo);
  await Promise.all(pools.map((p) => p.ready()));
  t.same(await waitFor(async () => ((await clientsIn(prefix)).length === 4 ? clientsIn(prefix) : false), { what: '4 clients registered' }), [
    `anchorpool.clients/${prefix}c0`,
    `anchorpool.clients/${prefix}c1`,
    `anchorpool.clients/${prefix}c2`,
    `anchorpool.clients/${prefix}c3`,
  ], 'each client is a key under anchorpool.clients/ + the backends prefix');
  const counts = await waitFor(async () => {
    const c = await connectionsPerBackend(backends);
    return c.every((n) => n === 1) ? c : false;
  }, { what: 'one connection on each of the 8 backends' });
  t.same(counts, [1, 1, 1, 1, 1, 1, 1, 1], 'the servers count one connection each: 4 × 2 = 8 places, one per backend');
  const report = pools[1]!.stats().subset!;
  t.match(report, { mode: 'coordinated', clientId: 'c2', coordination: { rank: 2, clients: 4, registered: true } }, 'c2 knows its rank among the 4');
  t.equal(report.keys.length, 2);
  const metrics = await pools[1]!.metrics().metrics();
  t.match(metrics, /\nanchorpool_subset_clients 4\n/, 'the metric counts the 4 clients');
  t.match(metrics, /\nanchorpool_subset_keys 2\n/);

  await pools[0]!.close();
  t.same(await waitFor(async () => ((await clientsIn(prefix)).length === 3 ? clientsIn(prefix) : false), { what: 'c0 gone' }), [
    `anchorpool.clients/${prefix}c1`,
    `anchorpool.clients/${prefix}c2`,
    `anchorpool.clients/${prefix}c3`,
  ], 'a closed pool deletes its key at once');
  const after = await waitFor(async () => {
    const c = await connectionsPerBackend(backends);
    return pools[1]!.stats().subset!.coordination?.clients === 3 && c.reduce((a, b) => a + b, 0) === 6 ? c : false;
    // grpc-js lets go of a channel's unused subchannels on a 10 s timer: the channels' old connections close by then.
  }, { what: '3 clients × 2 connections', timeoutMs: 25_000 });
  t.ok(after.every((n) => n <= 1), `with 3 clients every backend is in ⌊6/8⌋ or ⌈6/8⌉ subsets (${after.join(' ')})`);
  t.match(pools[1]!.stats().subset!.coordination, { rank: 1, clients: 3 }, 'c2 moved up one rank');
  let failed = 0;
  for (let i = 0; i < 10; i++) for (const echo of channels) await callEcho(echo).catch(() => (failed += 1));
  t.equal(failed, 0, 'calls go on');
});

t.test('an id held by another live client is a reported conflict, taken over when the other leaves', async (t) => {
  const prefix = 'coord/conflict/';
  await backendsUnder(t, prefix, 2);
  const first = pool(t, prefix, 'same');
  await first.ready();
  await waitFor(() => first.stats().subset?.coordination?.registered === true, { what: 'the first registered' });
  const second = pool(t, prefix, 'same');
  const error = await new Promise<AnchorPoolError>((resolve) => second.once('error', resolve));
  t.equal(error.code, 'ANCHORPOOL_CLIENT_ID_TAKEN', 'the second pool gets a typed error');
  t.match(error.message, /anchorpool\.clients\/coord\/conflict\/same" is held by another live client/, 'naming the key');
  await waitFor(() => second.stats().subset?.coordination?.conflict !== undefined, { what: 'the conflict in stats' });
  t.match(second.stats().subset!.coordination, { registered: false, conflict: /held by another live client/ }, 'stats show it');
  await first.close();
  await waitFor(() => second.stats().subset?.coordination?.registered === true, { what: 'the second took the id over', timeoutMs: 15_000 });
  t.equal(second.stats().subset!.coordination!.conflict, undefined, 'the conflict is cleared');
});

t.test('while etcd is down, subsets stay as they were', async (t) => {
  const prefix = 'coord/outage/';
  const backends = await backendsUnder(t, prefix, 4);
  const pools = [pool(t, prefix, 'a'), pool(t, prefix, 'b')];
  await Promise.all(pools.map((p) => p.ready()));
  const before = await waitFor(async () => {
    const c = await connectionsPerBackend(backends);
    return pools.every((p) => p.stats().subset?.coordination?.clients === 2) && c.every((n) => n === 1) ? c : false;
  }, { what: '2 clients over 4 backends, one connection each' });
  const member = cluster.members[0]!;
  await member.kill();
  // Longer than the clients' TTL (2 s): nothing may expire on the clients' side.
  await new Promise((resolve) => setTimeout(resolve, 4000));
  t.same(await connectionsPerBackend(backends), before, 'the servers count the same connections with etcd down');
  t.same(pools.map((p) => p.stats().subset!.coordination!.clients), [2, 2], 'each client still counts 2');
  await member.start();
  await waitFor(async () => (await clientsIn(prefix)).length === 2, { what: 'both clients registered again', timeoutMs: 20_000 });
  t.same(await connectionsPerBackend(backends), before, 'and the same connections after etcd is back');
});

t.test('bad coordination settings are refused with the reason', async (t) => {
  t.throws(() => createPool({ target: 'pass:///127.0.0.1:1', subset: { mode: 'coordinated' } }), { code: 'ANCHORPOOL_CONFIG', message: /subset\.mode: 'coordinated' needs an etcd target/ });
  t.throws(() => createPool({ target: 'etcd:///svc/a/', etcd, subset: { mode: 'coordinated', clientsPrefix: 'svc/a/clients' } }), {
    code: 'ANCHORPOOL_CONFIG',
    message: /subset\.clientsPrefix: "svc\/a\/clients\/" is inside the backends' prefix "svc\/a\/"/,
  });
  t.throws(() => createPool({ target: 'etcd:///svc/a/', etcd, subset: { mode: 'coordinated', clientsPrefix: 'svc/' } }), { message: /contains the backends' prefix/ });
  t.throws(() => createPool({ target: 'etcd:///svc/a/', etcd, subset: { ttlSeconds: 5 } }), { message: /subset\.ttlSeconds: is used only with mode 'coordinated'/ });
  t.throws(() => createPool({ target: 'etcd:///svc/a/', etcd, subset: { mode: 'coordinated', clientId: 'a/b' } }), { message: /subset\.clientId: must be 1 to 256 characters/ });
  const echo = new EchoClient('pass:///127.0.0.1:1', grpc.credentials.createInsecure(), {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { subset: { mode: 'coordinated' } } }] }),
  });
  t.teardown(() => echo.close());
  const failure = await callEcho(echo).then(
    () => undefined,
    (err: grpc.ServiceError) => err,
  );
  t.equal(failure?.code, grpc.status.UNAVAILABLE, 'a channel that cannot coordinate fails its calls');
  t.match(failure?.details, /needs an etcd target/, 'with the reason');
});
