// Anchor refresh against real backends and a real etcd: with anchorMaxAgeMillis (or a
// key's maxAgeSeconds) each anchor is replaced by a new connection at its age, make
// before break, under load, with no failed call. The servers count the connections: new
// remote ports appear, and each key is back to its N connections.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { AnchoredRoundRobinConfig } from '../lib/native/policy-config.js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import { silentLogger } from '../lib/core/logger.js';
import { createPool, type AnchorPool } from '../lib/pool/pool.js';
import type { PoolOptions } from '../lib/pool/pool-options.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { callEcho, EchoClient, startBackend, type Backend } from '../testkit/tap-backend.js';

const cluster = await startEtcd(t);
registerAnchorpool({ etcd: { hosts: cluster.hosts }, logger: silentLogger });

function pool(t: Test, options: PoolOptions): AnchorPool {
  const p = createPool({ etcd: { hosts: cluster.hosts }, logger: silentLogger, ...options });
  t.teardown(() => p.close());
  return p;
}

/** Closed-loop callers on `call` until the returned stop(); counts calls and failures. */
function load(call: () => Promise<unknown>, loops = 4) {
  let running = true;
  const tally = { calls: 0, failed: [] as string[] };
  const workers = Array.from({ length: loops }, async () => {
    while (running) {
      try {
        await call();
      } catch (err) {
        tally.failed.push((err as Error).message);
      }
      tally.calls += 1;
    }
  });
  return { tally, stop: async () => ((running = false), await Promise.all(workers)) };
}

/** Every remote port the backend held a connection from, sampled every 50 ms while `during` runs. */
async function portsSeen(backend: Backend, during: Promise<unknown>): Promise<Set<number>> {
  const seen = new Set<number>();
  let done = false;
  void during.finally(() => (done = true));
  while (!done) {
    for (const port of (await backend.stats()).connections) seen.add(port);
    await sleep(50);
  }
  return seen;
}

t.test('pool: anchors are replaced at their age under load; 0 failed calls, N connections again', async (t) => {
  const backend = await startBackend(t, { name: 'aged', delayMillis: 2 });
  await etcdctl(cluster, 'put', 'refresh-pool/a', JSON.stringify({ addr: backend.address, anchors: 2 }));
  const p = pool(t, { target: 'etcd:///refresh-pool/', anchorMaxAgeMillis: 300 });
  const refreshed: string[] = [];
  p.on('anchor-refreshed', (e) => refreshed.push(`${e.key}#${e.anchor}`));
  await p.ready();
  const stub = p.client(EchoClient);
  const running = load(() => callEcho(stub, 3000));
  const before = new Set((await backend.stats()).connections);
  const seen = await portsSeen(backend, sleep(1500));
  await running.stop();
  t.same(running.tally.failed, [], `0 of ${running.tally.calls} calls failed`);
  t.ok(refreshed.length >= 4, `${refreshed.length} refreshes in 1.5 s at a 300 ms age (±15%)`);
  t.ok(refreshed.includes('refresh-pool/a#0') && refreshed.includes('refresh-pool/a#1'), 'both anchors were refreshed');
  t.ok([...seen].filter((port) => !before.has(port)).length >= 4, `the server saw ${seen.size} connections in all: new ones replaced the first 2`);
  const stats = p.stats();
  t.ok(stats.refreshes.done >= 4);
  t.equal(stats.refreshes.failed, 0);
  await waitFor(async () => (await backend.stats()).connections.length === 2 || (await backend.stats()).connections.length === 3, { what: 'back to 2 connections (3 while one is being replaced)' });
});

t.test("a key's maxAgeSeconds wins over the pool's: 0 keeps its anchors, a number refreshes them", async (t) => {
  const steady = await startBackend(t, { name: 'steady' });
  const aging = await startBackend(t, { name: 'aging' });
  await etcdctl(cluster, 'put', 'refresh-keys/steady', JSON.stringify({ addr: steady.address, anchors: 1, maxAgeSeconds: 0 }));
  await etcdctl(cluster, 'put', 'refresh-keys/aging', JSON.stringify({ addr: aging.address, anchors: 1, maxAgeSeconds: 0.25 }));
  const p = pool(t, { target: 'etcd:///refresh-keys/', anchorMaxAgeMillis: 200 });
  const refreshed: string[] = [];
  p.on('anchor-refreshed', (e) => refreshed.push(e.key));
  await p.ready();
  await sleep(1000);
  t.notOk(refreshed.includes('refresh-keys/steady'), 'maxAgeSeconds 0: never refreshed, whatever the pool says');
  t.ok(refreshed.filter((k) => k === 'refresh-keys/aging').length >= 2, `maxAgeSeconds 0.25: refreshed ${refreshed.length} times in 1 s`);
  await etcdctl(cluster, 'put', 'refresh-keys/aging', JSON.stringify({ addr: aging.address, anchors: 1, maxAgeSeconds: -1 }));
  await waitFor(() => p.stats().invalid.length === 1, { what: 'the invalid value reported' });
  t.match(p.stats().invalid[0]!.reason, /maxAgeSeconds: must be from 0 to 2147483 seconds/);
  t.equal(p.stats().endpoints, 2, 'fail-static: the key keeps its last valid value');
});

t.test('the native policy refreshes its subchannels too: new connections, 0 failed calls', async (t) => {
  const backend = await startBackend(t, { name: 'native', delayMillis: 2 });
  await etcdctl(cluster, 'put', 'refresh-native/a', JSON.stringify({ addr: backend.address, anchors: 2 }));
  const config = { loadBalancingConfig: [{ anchored_round_robin: { anchorMaxAgeMillis: 300 } }] };
  const client = new EchoClient('etcd:///refresh-native/', grpc.credentials.createInsecure(), { 'grpc.service_config': JSON.stringify(config) });
  t.teardown(() => client.close());
  await callEcho(client, 5000);
  const before = new Set((await backend.stats()).connections);
  t.equal(before.size, 2);
  const running = load(() => callEcho(client, 3000));
  const seen = await portsSeen(backend, sleep(1500));
  await running.stop();
  t.same(running.tally.failed, [], `0 of ${running.tally.calls} calls failed`);
  t.ok([...seen].filter((port) => !before.has(port)).length >= 4, `new connections replaced the first 2 (${seen.size} seen in all)`);
});

t.test("the policy's config: anchorMaxAgeMillis is read, written back, and refused when it is not a whole number of ms", async (t) => {
  const config = AnchoredRoundRobinConfig.createFromJson({ anchorMaxAgeMillis: 60_000 });
  t.equal(config.options.anchorMaxAgeMillis, 60_000);
  t.same(config.toJsonObject(), { anchored_round_robin: { anchorMaxAgeMillis: 60_000 } });
  t.equal(AnchoredRoundRobinConfig.createFromJson({}).options.anchorMaxAgeMillis, 0, 'default: off');
  for (const bad of [-5, 1.5, '300', 2 ** 31]) {
    t.throws(() => AnchoredRoundRobinConfig.createFromJson({ anchorMaxAgeMillis: bad }), { code: 'ANCHORPOOL_CONFIG', message: /anchored_round_robin config: anchorMaxAgeMillis: / }, `refused: ${JSON.stringify(bad)}`);
  }
  t.throws(() => registerAnchorpool({ anchorMaxAgeMillis: -1 }), { code: 'ANCHORPOOL_CONFIG' });
  t.throws(() => createPool({ target: 'pass:///127.0.0.1:1', anchorMaxAgeMillis: -1 }), { code: 'ANCHORPOOL_CONFIG', message: /anchorMaxAgeMillis/ });
});
