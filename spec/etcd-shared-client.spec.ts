// One etcd client per process. 20 sources on 20 prefixes and 20 etcd:/// channels on 20
// more, all with the same etcd options, cost etcd one connection (counted with `ss` from
// this process) and one watch stream carrying their 40 watchers (read from etcd's own
// /metrics). All of them still follow their prefixes exactly: puts and deletes, and a
// compaction while the connection is cut off. A source whose watchdog renews the
// shared client makes the others resync on the new one, without losing or repeating
// an event.
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { createSource } from '../lib/discovery/create-source.js';
import { acquireEtcdClient, sharedEtcdClients } from '../lib/etcd/etcd-client-share.js';
import { resolveSourceOptions } from '../lib/discovery/source-options.js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import { silentLogger } from '../lib/core/logger.js';
import type { EndpointSource } from '../lib/discovery/source.js';
import { converge, directClient, etcdTruth, once } from '../testkit/tap-source.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { startTcpProxy } from '../testkit/tcp-proxy.js';
import { EchoClient } from '../testkit/tap-backend.js';
import { etcdGauge } from '../testkit/etcd-metrics.js';

const PREFIXES = 20;

/** Established TCP connections from this process to 127.0.0.1:port. */
function ourConnections(port: number): number {
  const lines = execFileSync('ss', ['-tnpH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
  return lines.split('\n').filter((line) => line.includes(`pid=${process.pid},`)).length;
}

const cluster = await startEtcd(t);
const member = cluster.members[0]!;
const writer = directClient(t, cluster.hosts);
const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: member.clientPort });
t.teardown(() => proxy.close());
// Everything below reaches etcd through the proxy, so the test can cut the one connection.
const etcd = { hosts: [`127.0.0.1:${proxy.port}`], retryInitialMillis: 100, retryMaxMillis: 500, dialTimeoutMillis: 1000 };
registerAnchorpool({ etcd, logger: silentLogger });

const [streamsBefore, watchersBefore] = [await etcdGauge(member.clientUrl, 'etcd_debugging_mvcc_watch_stream_total'), await etcdGauge(member.clientUrl, 'etcd_debugging_mvcc_watcher_total')];
const sources: EndpointSource[] = [];
for (let i = 0; i < PREFIXES; i++) {
  await writer.put(`shared/s${i}/a`).value(`127.0.0.1:${1000 + i}`);
  const source = createSource({ target: `etcd:///shared/s${i}/`, etcd, logger: silentLogger });
  t.teardown(() => source.close());
  sources.push(source);
}
// The etcd:/// channels' resolvers make sources of their own, one per target; a channel starts resolving when asked to connect.
const channels: EchoClient[] = [];
for (let i = 0; i < PREFIXES; i++) {
  await writer.put(`shared/c${i}/a`).value(`127.0.0.1:${2000 + i}`);
  const channel = new EchoClient(`etcd:///shared/c${i}/`, grpc.credentials.createInsecure());
  t.teardown(() => channel.close());
  channel.getChannel().getConnectivityState(true);
  channels.push(channel);
}
await Promise.all(sources.map((s) => s.ready({ timeoutMillis: 10_000 })));

t.test(`${PREFIXES} sources and ${PREFIXES} etcd:/// channels on one connection and one watch stream`, async (t) => {
  await waitFor(async () => (await etcdGauge(member.clientUrl, 'etcd_debugging_mvcc_watcher_total')) - watchersBefore >= 2 * PREFIXES, { what: 'all 40 watchers registered' });
  t.equal(ourConnections(proxy.port), 1, 'one established connection from this process to etcd');
  t.equal(sharedEtcdClients(), 1, 'one etcd client in the process');
  t.equal((await etcdGauge(member.clientUrl, 'etcd_debugging_mvcc_watch_stream_total')) - streamsBefore, 1, "one watch stream at etcd (its /metrics)");
  t.equal((await etcdGauge(member.clientUrl, 'etcd_debugging_mvcc_watcher_total')) - watchersBefore, 2 * PREFIXES, `${2 * PREFIXES} watchers on it`);
});

t.test('each source follows its own prefix: puts and deletes', async (t) => {
  for (let i = 0; i < PREFIXES; i++) {
    await writer.put(`shared/s${i}/b`).value(`127.0.0.1:${3000 + i}`);
    if (i % 2 === 0) await writer.delete().key(`shared/s${i}/a`);
  }
  for (let i = 0; i < PREFIXES; i++) {
    const diff = await converge(sources[i]!, writer, `shared/s${i}/`);
    t.same(diff, { lost: [], phantom: [], stale: [] }, `s${i} equals etcd`);
  }
});

t.test('a compaction while the connection is cut off: every prefix lists again and equals etcd', async (t) => {
  proxy.cut();
  for (let i = 0; i < PREFIXES; i++) {
    await writer.put(`shared/s${i}/cut`).value(`127.0.0.1:${4000 + i}`);
    await writer.put(`shared/s${i}/cut`).value(`127.0.0.1:${5000 + i}`);
  }
  const { header } = await writer.get('shared/s0/cut').exec();
  await etcdctl(cluster, 'compact', String(header.revision));
  t.comment(`compacted etcd to revision ${header.revision} while the connection was cut off`);
  proxy.resume();
  for (let i = 0; i < PREFIXES; i++) {
    const diff = await converge(sources[i]!, writer, `shared/s${i}/`);
    t.same(diff, { lost: [], phantom: [], stale: [] }, `s${i} equals etcd`);
  }
  await waitFor(() => ourConnections(proxy.port) === 1, { what: 'one connection again' });
  t.equal(ourConnections(proxy.port), 1, 'still one connection after the outage');
});

t.test("a prefix's watchdog finds the connection frozen and renews the shared client: the others resync on the new one and miss nothing", async (t) => {
  // Its own watchdog period does not make it a client of its own.
  await writer.put('shared/watchful/a').value('127.0.0.1:7000');
  const watchful = createSource({ target: 'etcd:///shared/watchful/', etcd: { ...etcd, watchdogMillis: 500 }, logger: silentLogger });
  t.teardown(() => watchful.close());
  await watchful.ready({ timeoutMillis: 10_000 });
  t.equal(sharedEtcdClients(), 1, 'the watchful source shares the client');
  // Quiet first: a listing still running when the link freezes would time out and renew the client before the watchdog does.
  await waitFor(() => sources.every((s) => s.status().connected), { what: 'every source connected' });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const reasons = sources.map(() => [] as string[]);
  sources.forEach((s, i) => s.on('resync', (r) => void reasons[i]!.push(r.reason)));
  const moved = once<{ reason: string }>(watchful, 'resync', (r) => r.reason === 'watchdog' || r.reason === 'reconnect', 30_000);
  proxy.pause();
  // Its probe times out on the frozen connection (dialTimeoutMillis 1 s): it renews the client, and everyone moves.
  const { reason } = await moved.finally(() => proxy.resume());
  t.equal(reason, 'watchdog', 'the watchful source found it (a call of another prefix timing out first would renew it the same way)');
  await waitFor(() => reasons.every((r) => r.length > 0), { what: 'every other prefix resynced', timeoutMs: 30_000 });
  t.ok(reasons.every((r) => r[0] === 'reconnect'), `the others resynced because the client was renewed (first reasons: ${[...new Set(reasons.map((r) => r[0]))].join(', ')})`);
  for (let i = 0; i < PREFIXES; i++) await writer.put(`shared/s${i}/after`).value(`127.0.0.1:${6000 + i}`);
  for (const [i, source] of sources.entries()) {
    const diff = await converge(source, writer, `shared/s${i}/`);
    t.same(diff, { lost: [], phantom: [], stale: [] }, `s${i} equals etcd`);
  }
  t.equal(sharedEtcdClients(), 1, 'still one client');
  await waitFor(() => ourConnections(proxy.port) === 1, { what: 'one connection: the old one was closed' });
});

t.test('a call that timed out renews the client only when nothing was heard on it while the call waited', async (t) => {
  // A share of its own (another dial timeout), so the sources above are not moved.
  const connection = resolveSourceOptions({ target: 'etcd:///shared/rule/', etcd: { ...etcd, dialTimeoutMillis: 1234 } }).etcd!;
  const share = acquireEtcdClient(connection, silentLogger);
  t.teardown(() => share.release());
  const first = share.current();
  t.equal(share.renewUnlessHeard(first, performance.now() - 60_000), true, 'never heard from: renewed');
  t.equal(share.retired(first), 'suspect');
  const second = share.current();
  t.not(second, first, 'a new client');
  const callBegan = performance.now();
  share.heard(second);
  t.equal(share.renewUnlessHeard(second, callBegan), false, 'heard from while the call waited: kept (a slow call next to calls that answer)');
  t.equal(share.current(), second);
  t.equal(share.retired(second), undefined);
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.equal(share.renewUnlessHeard(second, performance.now()), true, 'heard from only before the call began: renewed');
  t.not(share.current(), second);
});

t.test('the last close releases the connection', async (t) => {
  for (const channel of channels) channel.close();
  await Promise.all(sources.map((s) => s.close()));
  await waitFor(() => ourConnections(proxy.port) === 0, { what: 'no connection from this process', timeoutMs: 15_000 });
  t.equal(sharedEtcdClients(), 0);
  t.ok((await etcdTruth(writer, 'shared/s1/')).size > 0, 'etcd itself is untouched');
});
