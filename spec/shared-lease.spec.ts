// The coordinated clients of one process register on one etcd lease (shared-lease.ts),
// against a real etcd: one lease for all of them; a renewed etcd client keeps it and
// moves no key; when etcd ends it, every key moves to one new lease; the last client
// gone revokes it; a key the process left behind is taken over.
import t from 'tap';
import { hostname } from 'node:os';
import { ClientMembership, coordinationSettings, type MembershipView } from '../lib/discovery/client-membership.js';
import { resolveSourceOptions } from '../lib/discovery/source-options.js';
import { acquireEtcdClient } from '../lib/etcd/etcd-client-share.js';
import { silentLogger } from '../lib/core/logger.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';

const cluster = await startEtcd(t);
const TTL_SECONDS = 3;

function settingsFor(prefix: string) {
  const site = resolveSourceOptions({ target: `etcd:///${prefix}`, etcd: { hosts: cluster.hosts } }).etcd;
  const settings = coordinationSettings(site, { ttlSeconds: TTL_SECONDS });
  if ('error' in settings) throw new Error(settings.error);
  return settings;
}

interface Registered {
  readonly key: string;
  readonly lease: string;
  readonly createRevision: number;
  readonly modRevision: number;
}

async function registered(clientsPrefix: string): Promise<Registered[]> {
  const { stdout } = await etcdctl(cluster, 'get', '--prefix', clientsPrefix, '-w', 'json');
  // Lease ids are 64-bit: read them as strings, not as (rounded) numbers.
  const kvs = (JSON.parse(stdout.replace(/"lease":(\d+)/g, '"lease":"$1"')) as { kvs?: { key: string; lease?: number | string; create_revision: number; mod_revision: number }[] }).kvs ?? [];
  return kvs.map((kv) => ({ key: Buffer.from(kv.key, 'base64').toString(), lease: String(kv.lease ?? 0), createRevision: kv.create_revision, modRevision: kv.mod_revision }));
}

async function leases(): Promise<string[]> {
  const { stdout } = await etcdctl(cluster, 'lease', 'list');
  // etcdctl prints the ids in hex, without leading zeros.
  return stdout.split('\n').map((line) => line.trim()).filter((line) => /^[0-9a-f]+$/.test(line)).map((line) => line.padStart(16, '0'));
}

t.test("one process's coordinated clients share one lease; a renewed etcd client moves nothing; etcd ending the lease moves every key to one new lease", async (t) => {
  const settings = settingsFor('lease/share/');
  const ids = ['c0', 'c1', 'c2'];
  const members = ids.map((clientId) => new ClientMembership({ ...settings, clientId, logger: silentLogger }));
  const views = new Map<string, MembershipView>();
  for (const [i, m] of members.entries()) m.on('view', (view) => views.set(ids[i]!, view));
  t.teardown(() => Promise.all(members.map((m) => m.close())));
  for (const m of members) m.start();

  const first = await waitFor(async () => {
    const kvs = await registered(settings.clientsPrefix);
    return kvs.length === 3 ? kvs : false;
  }, { what: 'the 3 clients registered' });
  t.equal(new Set(first.map((kv) => kv.lease)).size, 1, `the 3 keys on one lease (${first[0]!.lease})`);
  t.same(await leases(), [BigInt(first[0]!.lease).toString(16).padStart(16, '0')], 'etcd holds that one lease, no other');
  await waitFor(() => ids.every((id) => views.get(id)?.clients === 3 && views.get(id)?.registered), { what: 'every client sees the 3' });

  // The process's shared client is found suspect and replaced (as a source's watchdog does).
  const shared = acquireEtcdClient(settings.etcd, silentLogger);
  t.teardown(() => shared.release());
  shared.renew(shared.current());
  // Three keepalives' worth of time on the new client (a third of a TTL each).
  await new Promise((resolve) => setTimeout(resolve, TTL_SECONDS * 1000 * 1.5));
  const afterRenewal = await registered(settings.clientsPrefix);
  t.same(afterRenewal, first, 'after the renewal and 1.5 TTL: the same keys on the same lease, not written again (same revisions)');
  t.equal((await leases()).length, 1, 'no lease granted for the new client');

  // etcd ends the lease (as it does for a lease not kept alive within its TTL): the keys go with it.
  await etcdctl(cluster, 'lease', 'revoke', BigInt(first[0]!.lease).toString(16));
  const startedAt = Date.now();
  const again = await waitFor(async () => {
    const kvs = await registered(settings.clientsPrefix);
    return kvs.length === 3 && kvs.every((kv) => kv.lease !== first[0]!.lease) ? kvs : false;
  }, { what: 'the 3 clients registered again' });
  const took = Date.now() - startedAt;
  t.equal(new Set(again.map((kv) => kv.lease)).size, 1, `registered again, all on one new lease (${again[0]!.lease}), ${took} ms after the revoke`);
  t.ok(took <= TTL_SECONDS * 1000, `within one TTL (${took} ms ≤ ${TTL_SECONDS * 1000} ms): the next keepalive, a third of a TTL away, hears the lease ended`);
  t.equal((await leases()).length, 1, 'one lease in etcd again');

  // The last client gone revokes it.
  await members[0]!.close();
  t.equal((await registered(settings.clientsPrefix)).length, 2, 'a client that leaves deletes its own key only');
  t.equal((await leases()).length, 1, 'the lease stays while clients use it');
  await Promise.all(members.slice(1).map((m) => m.close()));
  t.same(await waitFor(async () => ((await leases()).length === 0 ? [] : false), { what: 'the lease revoked' }), [], 'the last client gone: the lease is revoked');
});

t.test('clients with another TTL get a lease of their own', async (t) => {
  const settings = settingsFor('lease/ttl/');
  const a = new ClientMembership({ ...settings, clientId: 'short', logger: silentLogger });
  const b = new ClientMembership({ ...settings, ttlSeconds: TTL_SECONDS + 2, clientId: 'long', logger: silentLogger });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  a.start();
  b.start();
  const kvs = await waitFor(async () => {
    const all = await registered(settings.clientsPrefix);
    return all.length === 2 ? all : false;
  }, { what: 'both registered' });
  t.equal(new Set(kvs.map((kv) => kv.lease)).size, 2, 'two TTLs, two leases');
  const { stdout } = await etcdctl(cluster, 'lease', 'timetolive', BigInt(kvs.find((kv) => kv.key.endsWith('/long'))!.lease).toString(16));
  t.match(stdout, new RegExp(`granted with TTL\\(${TTL_SECONDS + 2}s\\)`), "the long client's lease has its TTL");
});

t.test("a key this process left behind (its client closed without deleting it) is taken over, not a conflict; another process's is", async (t) => {
  const settings = settingsFor('lease/ghost/');
  const left = JSON.stringify({ clientId: 'g1', host: hostname(), pid: process.pid, instance: 'closed-long-ago', since: new Date(0).toISOString() });
  await etcdctl(cluster, 'put', `${settings.clientsPrefix}g1`, left);
  const elsewhere = JSON.stringify({ clientId: 'g2', host: hostname(), pid: process.pid + 1, instance: 'alive', since: new Date(0).toISOString() });
  await etcdctl(cluster, 'put', `${settings.clientsPrefix}g2`, elsewhere);
  const members = ['g1', 'g2'].map((clientId) => new ClientMembership({ ...settings, clientId, logger: silentLogger }));
  const conflicts: string[] = [];
  members[1]!.on('conflict', (error) => conflicts.push(error.code));
  t.teardown(() => Promise.all(members.map((m) => m.close())));
  for (const m of members) m.start();
  const kvs = await waitFor(async () => {
    const all = await registered(settings.clientsPrefix);
    return all.find((kv) => kv.key.endsWith('/g1'))?.lease !== '0' ? all : false;
  }, { what: 'g1 on a lease' });
  const { stdout } = await etcdctl(cluster, 'get', '--print-value-only', `${settings.clientsPrefix}g1`);
  t.notMatch(stdout, /closed-long-ago/, 'g1 took the key over: its own value now');
  t.not(kvs.find((kv) => kv.key.endsWith('/g1'))!.lease, '0', 'on the process lease');
  await waitFor(() => conflicts.length > 0, { what: "g2's conflict" });
  t.same(conflicts, ['ANCHORPOOL_CLIENT_ID_TAKEN'], "g2's id is held by another process's value: a conflict");
});
