// Picks that know latency and zones, against real grpc-js backends in child processes,
// on both paths (the lease pool's pool.client() and a plain grpc-js client through the
// anchored_round_robin policy), calls counted on the server side:
//   - peak-ewma sends few calls to a 50 ms backend beside two 5 ms ones, with 4 callers,
//     where round robin sends it a third (the bench has the figures: scripts/bench/slow-backend.ts);
//   - a caller in zone a keeps its calls on zone a's backends (and on a backend without a
//     zone), and its calls go to zone b once zone a's backend is gone.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { createPool, silentLogger } from '../lib/index.js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import type { Backend } from '../testkit/echo/backend.js';
import { callEcho, EchoClient, startBackend } from '../testkit/tap-backend.js';
import { waitFor } from '../testkit/tap-etcd.js';

registerAnchorpool({ logger: silentLogger });
const insecure = grpc.credentials.createInsecure();

type Path = 'pool' | 'native';

/** An Echo client on `target` through the given path, with `options` as the pool's options or the policy's config. */
async function echoOn(t: Test, path: Path, target: string, options: Record<string, unknown>): Promise<EchoClient> {
  if (path === 'pool') {
    const pool = createPool({ target, logger: silentLogger, ...options });
    t.teardown(() => pool.close());
    await pool.ready();
    return pool.client(EchoClient);
  }
  const client = new EchoClient(target, insecure, {
    'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: options }] }),
    'grpc.use_local_subchannel_pool': 1,
  });
  t.teardown(() => client.close());
  return client;
}

/** `loops` closed-loop callers for `millis`; resolves with the calls that failed. */
async function load(echo: EchoClient, loops: number, millis: number): Promise<number> {
  let failed = 0;
  const end = performance.now() + millis;
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (performance.now() < end) await callEcho(echo, 5000).catch(() => (failed += 1));
    }),
  );
  return failed;
}

/** Each backend's share of the calls it served since the last reset. */
async function shares(backends: readonly Backend[]): Promise<number[]> {
  const calls = await Promise.all(backends.map(async (b) => (await b.stats()).calls));
  const total = calls.reduce((a, b) => a + b, 0);
  return calls.map((c) => c / Math.max(1, total));
}

t.test('peak-ewma keeps 4 callers off a 50 ms backend that round robin gives a third of the calls', async (t) => {
  const backends = [
    await startBackend(t, { name: 'fast1', delayMillis: 5 }),
    await startBackend(t, { name: 'fast2', delayMillis: 5 }),
    await startBackend(t, { name: 'slow', delayMillis: 50 }),
  ];
  const target = `pass:///${backends.map((b) => `${b.address}#2`).join(',')}`;
  for (const path of ['pool', 'native'] as const) {
    const measured: Record<string, number> = {};
    for (const pick of ['round-robin', 'peak-ewma'] as const) {
      const echo = await echoOn(t, path, target, { pick });
      await load(echo, 4, 300); // every anchor connected, and measured
      await Promise.all(backends.map((b) => b.resetStats()));
      t.equal(await load(echo, 4, 1500), 0, `${path}, ${pick}: no call failed`);
      measured[pick] = (await shares(backends))[2]!;
    }
    t.ok(measured['round-robin']! > 0.25, `${path}: round robin gave the slow backend ${(measured['round-robin']! * 100).toFixed(1)}% (a third by N)`);
    // The target (≤ 5%) is the bench's; here, beside other specs on a busy machine, less than half of round robin's share.
    t.ok(measured['peak-ewma']! < measured['round-robin']! / 2, `${path}: peak-ewma gave it ${(measured['peak-ewma']! * 100).toFixed(1)}%`);
  }
});

t.test('a caller in zone a stays in zone a (keys without a zone count as local), and leaves it when zone a has nothing left', async (t) => {
  const [a, none, b] = [await startBackend(t, { name: 'a' }), await startBackend(t, { name: 'none' }), await startBackend(t, { name: 'b' })];
  const target = `pass:///${a.address}#2@zone-a,${none.address}#2,${b.address}#2@zone-b`;
  const echoes = { pool: await echoOn(t, 'pool', target, { zone: 'zone-a' }), native: await echoOn(t, 'native', target, { zone: 'zone-a' }) };
  for (const [path, echo] of Object.entries(echoes)) {
    await load(echo, 4, 200);
    await Promise.all([a, none, b].map((x) => x.resetStats()));
    t.equal(await load(echo, 4, 500), 0, `${path}: no call failed`);
    const [onA, onNone, onB] = await shares([a, none, b]);
    t.equal(onB, 0, `${path}: nothing went to zone b`);
    t.ok(onA! > 0.3 && onNone! > 0.3, `${path}: zone a and the key without a zone shared the calls (${(onA! * 100).toFixed(0)}% / ${(onNone! * 100).toFixed(0)}%)`);
  }
  await a.kill();
  await none.kill();
  for (const [path, echo] of Object.entries(echoes)) {
    await waitFor(async () => callEcho(echo, 1000).then(() => true, () => false), { what: `${path}: a call succeeds on zone b` });
    await b.resetStats();
    await load(echo, 4, 300);
    t.ok((await b.stats()).calls > 0, `${path}: with zone a gone, calls go to zone b`);
  }
});

t.test('a pool in a zone shows its zones: anchors() and stats() name them, the metrics count leases by zone', async (t) => {
  const [a, b] = [await startBackend(t, { name: 'a' }), await startBackend(t, { name: 'b' })];
  const pool = createPool({ target: `pass:///${a.address}#2@zone-a,${b.address}@zone-b`, logger: silentLogger, zone: 'zone-a', pick: 'peak-ewma' });
  t.teardown(() => pool.close());
  await pool.ready();
  // ready() needs one anchor; until zone a's are READY too, its calls go where they can.
  await waitFor(() => pool.stats().zones?.zones.every((z) => z.healthy === z.total), { what: 'every anchor in rotation' });
  for (let i = 0; i < 10; i++) (await pool.acquire()).release();
  t.same(
    pool.anchors().map((x) => [x.key, x.anchor, x.zone]),
    [['static/0', 0, 'zone-a'], ['static/0', 1, 'zone-a'], ['static/1', 0, 'zone-b']],
  );
  t.ok(pool.anchors().some((x) => x.latencyMillis !== undefined), 'anchors that had leases show their latency estimate (peak-ewma)');
  t.match(pool.stats().zones, { local: 'zone-a', mode: 'local', zones: [{ zone: 'zone-a', total: 2, healthy: 2, share: 1, picks: 10 }, { zone: 'zone-b', total: 1, healthy: 1, share: 0, picks: 0 }] });
  const text = await pool.metrics().metrics();
  t.match(text, /anchorpool_leases_by_zone_total\{zone="zone-a"\} 10/);
  t.match(text, /anchorpool_zone_share\{zone="zone-b"\} 0/);
  await b.kill();
  await a.kill();
  await waitFor(() => pool.stats().zones?.mode === 'none', { what: 'nothing in rotation' });
  t.equal(pool.stats().zones?.zones.every((z) => z.healthy === 0), true, 'both zones show nothing healthy');
});
