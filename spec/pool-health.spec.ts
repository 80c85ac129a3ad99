// Client-side health checks on the lease pool, against real grpc-js backends that serve
// grpc.health.v1 (grpc-health-check) in child processes: a NOT_SERVING backend gets no
// lease, a flip takes it out of rotation and back within a second, a backend without a
// health service counts as healthy (one warning per address), a service the backend does
// not know is SERVICE_UNKNOWN, a reconnect waits for the first SERVING, and the health
// stream keeps one of each anchor's slots.
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, silentLogger, type AnchorPool, type Logger, type PoolOptions } from '../lib/index.js';
import { callEcho, EchoClient, startBackend } from '../testkit/tap-backend.js';
import { waitFor } from '../testkit/tap-etcd.js';
import { capturingLogger } from '../testkit/tap-source.js';

function newPool(t: Test, options: PoolOptions): AnchorPool {
  const pool = createPool({ logger: silentLogger, healthCheck: {}, ...options });
  t.teardown(() => pool.close());
  return pool;
}

async function leasesBy(pool: AnchorPool, count: number): Promise<Map<string, number>> {
  const by = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const lease = await pool.acquire({ timeoutMillis: 2000 });
    by.set(lease.address, (by.get(lease.address) ?? 0) + 1);
    lease.release();
  }
  return by;
}

t.test('a NOT_SERVING backend gets no lease; the SERVING ones share them', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  const c = await startBackend(t, { name: 'c' });
  await c.setHealth('NOT_SERVING');
  const pool = newPool(t, { target: `pass:///${a.address},${b.address},${c.address}` });
  await pool.ready();
  await waitFor(() => pool.stats().anchors.byHealth.SERVING === 2 && pool.stats().anchors.byHealth.NOT_SERVING === 1, { what: '2 SERVING, 1 NOT_SERVING' });
  const by = await leasesBy(pool, 300);
  t.equal(by.get(c.address) ?? 0, 0, 'c (NOT_SERVING) got 0 of 300 leases');
  t.equal(by.get(a.address), 150, 'a got half');
  t.equal(by.get(b.address), 150, 'b got half');
  t.match(pool.anchors().find((x) => x.address === c.address), { state: 'READY', health: 'NOT_SERVING', eligible: false }, 'c is connected but out of rotation');
});

t.test('flips: NOT_SERVING is out of rotation and SERVING back in, each within 1 s; calls running on it are not touched', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b', delayMillis: 0 });
  const pool = newPool(t, { target: `pass:///${a.address}#2,${b.address}#2` });
  await pool.ready();
  await waitFor(() => pool.stats().anchors.byHealth.SERVING === 4, { what: '4 SERVING' });
  const lastLeaseAt = new Map<string, number>();
  let running = true;
  let failed = 0;
  const loops = Array.from({ length: 4 }, async () => {
    while (running) {
      const lease = await pool.acquire({ timeoutMillis: 2000 });
      lastLeaseAt.set(lease.address, performance.now());
      try {
        await callEcho(lease.client(EchoClient), 2000);
      } catch {
        failed += 1;
      } finally {
        lease.release();
      }
    }
  });
  await sleep(300);
  const held = await pool.acquire(); // a lease held across the flip: its calls keep working
  const flippedOut = performance.now();
  await (held.address === a.address ? a : b).setHealth('NOT_SERVING');
  const flippedBackend = held.address;
  await waitFor(() => pool.anchors().filter((x) => x.address === flippedBackend && x.health === 'NOT_SERVING').length === 2, { what: 'both anchors NOT_SERVING' });
  const outAfter = performance.now() - flippedOut;
  await sleep(500);
  const lastOnIt = lastLeaseAt.get(flippedBackend)!;
  t.ok(performance.now() - lastOnIt >= 400, 'no lease went to the NOT_SERVING backend in the last 400 ms');
  t.match(await callEcho(held.client(EchoClient), 2000), {}, 'a call on a lease held across the flip still works');
  held.release();
  const flippedIn = performance.now();
  await (flippedBackend === a.address ? a : b).setHealth('SERVING');
  await waitFor(() => (lastLeaseAt.get(flippedBackend) ?? 0) > flippedIn, { what: 'a lease on the backend again' });
  const backAfter = (lastLeaseAt.get(flippedBackend) ?? 0) - flippedIn;
  running = false;
  await Promise.all(loops);
  t.ok(outAfter <= 1000, `out of rotation ${outAfter.toFixed(0)} ms after the flip to NOT_SERVING (bar 1 s); last lease on it ${(lastOnIt - flippedOut).toFixed(0)} ms after the flip`);
  t.ok(backAfter <= 1000, `first lease on it ${backAfter.toFixed(0)} ms after the flip to SERVING (bar 1 s)`);
  t.equal(failed, 0, 'no call failed');
});

t.test('a backend without a health service counts as healthy, with one warning per address', async (t) => {
  const plain = await startBackend(t, { name: 'plain', healthService: false });
  const logger = capturingLogger();
  const pool = newPool(t, { target: `pass:///${plain.address}#3`, logger: logger as Logger });
  await pool.ready();
  await waitFor(() => pool.stats().anchors.byHealth.UNCHECKED === 3, { what: '3 UNCHECKED' });
  const by = await leasesBy(pool, 30);
  t.equal(by.get(plain.address), 30, 'every lease goes to it');
  const warnings = logger.lines.filter((l) => l.level === 'warn' && /no grpc.health.v1 service/.test(l.message));
  t.equal(warnings.length, 1, 'one warning for its 3 anchors');
});

t.test('a service name the backend does not know is SERVICE_UNKNOWN: out of rotation; a known one is checked by name', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const unknown = newPool(t, { target: `pass:///${a.address}`, healthCheck: { serviceName: 'no.such.Service' }, readyTimeoutMillis: 1500 });
  await t.rejects(unknown.ready(), { code: 'ANCHORPOOL_READY_TIMEOUT', message: /SERVICE_UNKNOWN/ }, 'never ready, and the error says why');
  const named = newPool(t, { target: `pass:///${a.address}`, healthCheck: { serviceName: 'anchorpool.test.Echo' } });
  await named.ready();
  await a.setHealth('NOT_SERVING', 'anchorpool.test.Echo');
  await waitFor(() => named.anchors()[0]?.health === 'NOT_SERVING', { what: 'the named service NOT_SERVING' });
  t.equal(named.tryAcquire(), undefined, 'no lease while the named service is NOT_SERVING');
  await a.setHealth('SERVING', 'anchorpool.test.Echo');
  await waitFor(() => named.anchors()[0]?.eligible === true, { what: 'back in rotation' });
  const lease = named.tryAcquire();
  t.ok(lease !== undefined, 'a lease again once SERVING');
  lease?.release();
});

t.test('after a restart the anchors wait for the first SERVING of the new connection', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const pool = newPool(t, { target: `pass:///${a.address}#2` });
  await pool.ready();
  await waitFor(() => pool.stats().anchors.byHealth.SERVING === 2, { what: 'both SERVING before the restart' });
  const seen: string[] = [];
  pool.on('anchor-health', (e) => seen.push(`${e.anchor}:${e.previous}->${e.health}`));
  await a.restart();
  await waitFor(() => pool.stats().anchors.byHealth.SERVING === 2, { what: 'SERVING again after the restart' });
  for (const i of [0, 1]) {
    const mine = seen.filter((s) => s.startsWith(`${i}:`));
    // The old stream may fail (NOT_SERVING) before the connection is seen to drop; either way
    // the new connection starts UNKNOWN and waits for its first SERVING.
    t.same(mine.slice(-1), [`${i}:UNKNOWN->SERVING`], `anchor ${i}: SERVING again only from UNKNOWN, on the new connection (${mine.join(', ')})`);
    t.ok(mine.some((s) => s === `${i}:SERVING->UNKNOWN` || s === `${i}:NOT_SERVING->UNKNOWN`), `anchor ${i}: back to UNKNOWN when its connection went away`);
  }
});

t.test('the health stream keeps one slot: maxStreamsPerAnchor 4 gives 3 leases per anchor', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const pool = newPool(t, { target: `pass:///${a.address}#1`, maxStreamsPerAnchor: 4, failFast: true });
  await pool.ready();
  const leases = [pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire()];
  t.ok(leases.every((l) => l !== undefined), '3 leases');
  t.equal(pool.tryAcquire(), undefined, 'not a fourth: the health stream is the fourth stream');
  for (const lease of leases) lease?.release();
  t.throws(() => createPool({ target: `pass:///${a.address}`, healthCheck: {}, maxStreamsPerAnchor: 1 }), { code: 'ANCHORPOOL_CONFIG', message: /maxStreamsPerAnchor/ }, 'exclusive leases and a health stream do not fit one slot: a clear ConfigError');
});
