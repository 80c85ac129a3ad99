// The etcd source under failure, against a real etcd behind a TCP proxy the test
// controls: compaction while disconnected, a half-open stream, etcd down and back,
// ready() timeouts, and close() leaving nothing behind.
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSource } from '../lib/discovery/create-source.js';
import type { ResyncInfo } from '../lib/discovery/source.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { startTcpProxy } from '../testkit/tcp-proxy.js';
import { capturingLogger, converge, directClient, once, sourceView } from '../testkit/tap-source.js';
import { freePort } from '../etcd-dev/etcd-dev.mjs';
import { runFixture } from './support/fixture-process.js';

const cluster = await startEtcd(t);
const member = cluster.members[0]!;
const direct = directClient(t, cluster.hosts);

async function proxied(t: Test) {
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: member.clientPort });
  t.teardown(() => proxy.close());
  return proxy;
}

function newSource(t: Test, prefix: string, hosts: string[], etcd: Record<string, unknown> = {}) {
  const logger = capturingLogger();
  const source = createSource({ target: `etcd:///${prefix}`, etcd: { hosts, retryMaxMillis: 500, ...etcd }, logger });
  t.teardown(() => source.close());
  return { source, logger };
}

async function currentRevision(): Promise<string> {
  return (await direct.get('any').exec()).header.revision;
}

t.test('compaction while the watcher is disconnected: after reconnect the state equals etcd', async (t) => {
  const prefix = 'compact/';
  for (let i = 0; i < 20; i++) await direct.put(`${prefix}k${i}`).value(`10.0.0.${i}:50051`);
  const proxy = await proxied(t);
  const { source } = newSource(t, prefix, [`127.0.0.1:${proxy.port}`]);
  await source.ready();
  t.equal(source.snapshot().endpoints.size, 20);

  const resynced = once<ResyncInfo>(source, 'resync', (r) => r.reason !== 'initial');
  proxy.cut();
  await waitFor(() => !source.status().connected, { what: 'the source to notice the cut' });
  t.equal(sourceView(source).size, 20, 'the last known state is kept while disconnected');

  for (let i = 0; i < 5; i++) await direct.delete().key(`${prefix}k${i}`);
  for (let i = 5; i < 10; i++) await direct.put(`${prefix}k${i}`).value(`10.0.1.${i}:50051#3`);
  for (let i = 20; i < 25; i++) await direct.put(`${prefix}k${i}`).value(`10.0.2.${i}:50051`);
  const revision = await currentRevision();
  await etcdctl(cluster, 'compact', revision);
  t.comment(`compacted etcd to revision ${revision} while the source was cut off`);

  proxy.resume();
  const info = await resynced;
  t.ok(Number(info.revision) >= Number(revision), `resynced (${info.reason}) at revision ${info.revision}`);
  t.same(await converge(source, direct, prefix), { lost: [], phantom: [], stale: [] }, 'no lost, phantom or stale key');
  t.equal(source.snapshot().endpoints.size, 20);
  t.match(source.status(), { connected: true, disconnectedSince: null });
});

t.test('half-open stream (proxy paused): the watchdog fires, the source resyncs, changes made meanwhile arrive', async (t) => {
  const prefix = 'halfopen/';
  await direct.put(`${prefix}a`).value('10.0.0.1:1');
  const proxy = await proxied(t);
  const { source, logger } = newSource(t, prefix, [`127.0.0.1:${proxy.port}`], { watchdogMillis: 1000, dialTimeoutMillis: 1000 });
  await source.ready();
  await sleep(300);

  const pausedAt = Date.now();
  const resynced = once<ResyncInfo>(source, 'resync', (r) => r.reason !== 'initial', 20_000);
  proxy.pause();
  await direct.put(`${prefix}b`).value('10.0.0.2:2');
  await direct.delete().key(`${prefix}a`);
  const info = await resynced;
  t.equal(info.reason, 'watchdog', 'the watchdog, not the transport, detected the frozen stream');
  t.comment(`frozen stream detected and resynced ${Date.now() - pausedAt} ms after the pause (watchdog 1000 ms + probe deadline 1000 ms)`);
  t.same(await converge(source, direct, prefix), { lost: [], phantom: [], stale: [] });
  t.same([...source.snapshot().endpoints.keys()], [`${prefix}b`]);
  t.ok(logger.lines.some((l) => l.level === 'warn' && /half-open/.test(l.message)), 'the log says why it resynced');

  proxy.resume();
  await direct.put(`${prefix}c`).value('10.0.0.3:3');
  await waitFor(() => source.snapshot().endpoints.has(`${prefix}c`), { what: 'watch to work after the resync' });
  t.pass('the new watch delivers events');
});

t.test('etcd stopped for a while: the state is kept and reported disconnected; after restart, changes arrive', async (t) => {
  const prefix = 'outage/';
  for (let i = 0; i < 5; i++) await direct.put(`${prefix}k${i}`).value(`10.0.0.${i}:50051#2`);
  const { source } = newSource(t, prefix, cluster.hosts);
  await source.ready();
  const before = sourceView(source);

  const disconnected = once(source, 'disconnected');
  await member.kill('SIGKILL');
  await disconnected;
  await sleep(2000);
  const status = source.status();
  t.equal(status.connected, false, 'status reports disconnected');
  t.ok(status.disconnectedSince instanceof Date, `disconnected since ${status.disconnectedSince?.toISOString()}`);
  t.match(status.lastError, /unavailable/i, 'and says why');
  t.same(sourceView(source), before, 'the last known endpoints are still served');

  await member.start();
  await direct.delete().key(`${prefix}k0`);
  await direct.put(`${prefix}k1`).value('10.0.9.1:50051#4');
  await direct.put(`${prefix}k9`).value('10.0.9.9:50051');
  t.same(await converge(source, direct, prefix), { lost: [], phantom: [], stale: [] }, 'changes made after the restart arrive');
  await waitFor(() => source.status().connected, { what: 'connected again' });
  t.ok(source.status().resyncs >= 1, 'reconnecting re-listed the prefix');
});

t.test('ready() with a timeout rejects with a typed error when etcd is unreachable', async (t) => {
  const port = await freePort();
  const { source } = newSource(t, 'nowhere/', [`127.0.0.1:${port}`]);
  const startedAt = Date.now();
  await t.rejects(source.ready({ timeoutMillis: 1500 }), {
    code: 'ANCHORPOOL_ETCD_UNAVAILABLE',
    retryable: true,
    message: new RegExp(`127\\.0\\.0\\.1:${port}.*within 1500 ms`),
  });
  t.ok(Date.now() - startedAt >= 1400, 'it waited for the timeout');
  t.match(source.status(), { ready: false, connected: false });
});

t.test('ready() without a timeout keeps retrying until etcd is reachable', async (t) => {
  const proxy = await proxied(t);
  proxy.cut();
  await direct.put('later/a').value('10.0.0.1:1');
  const { source } = newSource(t, 'later/', [`127.0.0.1:${proxy.port}`]);
  let resolved = false;
  const ready = source.ready({ timeoutMillis: Infinity }).then((snapshot) => {
    resolved = true;
    return snapshot;
  });
  await sleep(1500);
  t.equal(resolved, false, 'still waiting while etcd is unreachable');
  proxy.resume();
  const snapshot = await ready;
  t.equal(snapshot.endpoints.size, 1, 'resolved with the first snapshot once etcd answered');
});

t.test('close() leaves nothing that keeps the process alive', async (t) => {
  const { code, output } = await runFixture('source-close-exits', { ETCD_HOSTS: cluster.hosts.join(',') });
  t.equal(code, 0, `the process exited by itself after close() (output: ${output})`);
  t.match(output, /closed/);
});
