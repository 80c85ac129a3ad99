// Load-driven anchors against a real stream-capped backend: a key at `addr#1-4` with
// maxStreamsPerAnchor equal to the server's cap opens connections while callers wait and
// all of its anchors are full, never more than 4, never a call over the cap (counted by
// the server), and drains back to its one anchor once the load is gone. Growth adds
// capacity, not share: a grown key still gets the share its N gives it.
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { silentLogger } from '../lib/core/logger.js';
import { createPool } from '../lib/pool/pool.js';
import { waitFor } from '../testkit/tap-etcd.js';
import { callEcho, EchoClient, startBackend } from '../testkit/tap-backend.js';

t.test('a key at #1-4 grows to 4 connections under load, never over the cap, and drains back', async (t) => {
  const backend = await startBackend(t, { name: 'capped', maxConcurrentStreams: 4, delayMillis: 20 });
  const pool = createPool({ target: `pass:///${backend.address}#1-4`, logger: silentLogger, maxStreamsPerAnchor: 4, extraAnchorIdleMillis: 300 });
  t.teardown(() => pool.close());
  const changes: string[] = [];
  pool.on('anchor-extra', (e) => changes.push(`#${e.anchor} ${e.change}`));
  await pool.ready();
  t.equal((await backend.stats()).connections.length, 1, 'one connection to start with');
  const stub = pool.client(EchoClient);
  await backend.resetStats();
  let failed = 0;
  let calls = 0;
  const end = performance.now() + 1500;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < end) {
        await callEcho(stub, 5000).catch(() => (failed += 1));
        calls += 1;
      }
    }),
  );
  const stats = await backend.stats();
  t.equal(failed, 0, `0 of ${calls} calls failed`);
  t.same(changes.slice(0, 3), ['#1 opened', '#2 opened', '#3 opened'], 'three extra anchors opened, one after another');
  t.equal(pool.stats().extraAnchors.opened, 3, 'and no more than maxAnchors allows');
  t.equal(Object.keys(stats.maxInFlightByConnection).length, 4, 'the server saw calls on 4 connections');
  t.ok(Object.values(stats.maxInFlightByConnection).every((n) => n <= 4), `never over the cap of 4 on a connection (peaks ${Object.values(stats.maxInFlightByConnection).join('/')})`);
  t.same(pool.anchors().filter((a) => !a.draining).map((a) => `${a.anchor}${a.extra ? ' extra' : ''}`), ['0', '1 extra', '2 extra', '3 extra']);
  await waitFor(() => pool.stats().extraAnchors.open === 0, { what: 'the extra anchors drained', timeoutMs: 10_000 });
  t.same(changes.slice(3), ['#3 drained', '#2 drained', '#1 drained'], 'drained newest first once idle');
  await waitFor(async () => (await backend.stats()).connections.length === 1, { what: 'one connection again, counted by the server' });
});

t.test("growth adds capacity, not share: a grown key (#1-4) and a plain one (#1) still split calls 1:1", async (t) => {
  const a = await startBackend(t, { name: 'a', maxConcurrentStreams: 2, delayMillis: 20 });
  const b = await startBackend(t, { name: 'b', delayMillis: 20 });
  const pool = createPool({ target: `pass:///${a.address}#1-4,${b.address}#1`, logger: silentLogger, maxStreamsPerAnchor: 2, extraAnchorIdleMillis: 60_000 });
  t.teardown(() => pool.close());
  await pool.ready();
  const stub = pool.client(EchoClient);
  // Load enough to fill both keys, so that a grows.
  await Promise.all(Array.from({ length: 12 }, () => callEcho(stub, 5000)));
  await waitFor(() => pool.stats().extraAnchors.open > 0, { what: 'a grew' });
  await sleep(100);
  await Promise.all([a.resetStats(), b.resetStats()]);
  for (let i = 0; i < 100; i++) await callEcho(stub, 5000);
  const [onA, onB] = [(await a.stats()).calls, (await b.stats()).calls];
  t.ok(Math.abs(onA - onB) <= 2, `one caller: a ${onA}, b ${onB} (a has ${pool.stats().extraAnchors.open} extra anchors open)`);
});
