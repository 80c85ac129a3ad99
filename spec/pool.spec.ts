// The lease pool on pass:/// targets against real grpc-js backends in child processes:
// distinct connections counted on the server side, exact round-robin shares, the lease
// cap and its waiters, typed misuse errors, a killed backend, and close().
import t, { type Test } from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, type AnchorPool } from '../lib/pool/pool.js';
import type { PoolOptions } from '../lib/pool/pool-options.js';
import { silentLogger } from '../lib/core/logger.js';
import { callEcho, EchoClient, startBackend, type Backend } from '../testkit/tap-backend.js';

import { waitFor } from '../testkit/tap-etcd.js';

function newPool(t: Test, options: PoolOptions): AnchorPool {
  const pool = createPool({ logger: silentLogger, ...options });
  t.teardown(() => pool.close());
  return pool;
}

async function connectionsOf(backend: Backend, count: number, what: string): Promise<number[]> {
  return waitFor(
    async () => {
      const { connections } = await backend.stats();
      return connections.length === count ? connections : false;
    },
    { what: `${what}: ${count} connection(s) on ${backend.name}` },
  );
}

t.test('N anchors are N server-side connections, and two pools never share one', async (t) => {
  const backend = await startBackend(t, { name: 'b' });
  const first = newPool(t, { target: `pass:///${backend.address}#3` });
  await first.ready();
  const ports = await connectionsOf(backend, 3, 'first pool');
  const second = newPool(t, { target: `pass:///${backend.address}#2` });
  await second.ready();
  const all = await connectionsOf(backend, 5, 'both pools');
  t.same(all.filter((p) => ports.includes(p)), ports, 'the first pool kept its 3 connections');
  t.match(first.stats(), { anchors: { active: 3, byState: { READY: 3 } } });
});

t.test('2:1 anchors: 300 leases split 200/100 exactly, interleaved (no run longer than 2)', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  const pool = newPool(t, { target: `pass:///${a.address}#2,${b.address}#1` });
  await pool.ready();
  await waitFor(() => pool.stats().anchors.byState.READY === 3, { what: 'all anchors READY' });
  const addresses: string[] = [];
  for (let i = 0; i < 300; i++) {
    const lease = await pool.acquire();
    addresses.push(lease.address);
    lease.release();
  }
  t.equal(addresses.filter((x) => x === a.address).length, 200);
  t.equal(addresses.filter((x) => x === b.address).length, 100);
  let longest = 0;
  let run = 0;
  addresses.forEach((x, i) => {
    run = i > 0 && addresses[i - 1] === x ? run + 1 : 1;
    longest = Math.max(longest, run);
  });
  t.equal(longest, 2, 'the longest run on one address is 2 (a a b a a b …)');

  // Real calls through the leases reach the servers in the same proportion.
  for (let i = 0; i < 30; i++) await pool.use((lease) => callEcho(lease.client(EchoClient)));
  const [sa, sb] = [await a.stats(), await b.stats()];
  t.same([sa.calls, sb.calls], [20, 10], 'calls through the leases split 20/10');
  t.equal(sa.connections.length, 2);
  t.equal(sb.connections.length, 1);
});

t.test('lease fields, the client cache and `using`', async (t) => {
  const backend = await startBackend(t);
  const pool = newPool(t, { target: `pass:///${backend.address}#2` });
  await pool.ready();
  const lease = await pool.acquire();
  t.equal(lease.key, 'static/0');
  t.equal(lease.address, backend.address);
  t.ok(lease.anchor === 0 || lease.anchor === 1);
  t.equal(lease.client(EchoClient), lease.client(EchoClient), 'one client per anchor and constructor');
  const reply = await callEcho(new EchoClient(backend.address, null as never, { channelOverride: lease.channel }));
  t.equal(reply.server, 'backend', 'lease.channel works as a channelOverride');
  lease.release();
  {
    using scoped = await pool.acquire();
    t.equal(pool.stats().leased, 1);
    t.equal(scoped.released, false);
  }
  t.equal(pool.stats().leased, 0, '`using` released the lease');
});

t.test('the cap: with 2 slots on each of 3 anchors, the 7th acquire waits for a release', async (t) => {
  const backend = await startBackend(t);
  const pool = newPool(t, { target: `pass:///${backend.address}#3`, maxStreamsPerAnchor: 2 });
  await pool.ready();
  await waitFor(() => pool.stats().anchors.byState.READY === 3, { what: 'all anchors READY' });
  const held = await Promise.all(Array.from({ length: 6 }, () => pool.acquire()));
  const perAnchor = new Map<number, number>();
  for (const l of held) perAnchor.set(l.anchor, (perAnchor.get(l.anchor) ?? 0) + 1);
  t.same([...perAnchor.values()], [2, 2, 2], 'two leases on each anchor');
  let seventh: number | undefined;
  const waiting = pool.acquire().then((lease) => {
    seventh = lease.anchor;
    return lease;
  });
  await sleep(100);
  t.equal(seventh, undefined, 'the 7th acquire is waiting');
  t.equal(pool.stats().waiting, 1);
  held[4]!.release();
  const lease = await waiting;
  t.equal(lease.anchor, held[4]!.anchor, 'it got the released slot');
  t.equal(pool.stats().waiting, 0);
  for (const l of held) if (!l.released) l.release();
  lease.release();
  t.equal(pool.stats().leased, 0);
});

t.test('waiting: timeout, abort, priority, failFast and maxWaitingClients', async (t) => {
  const backend = await startBackend(t);
  const pool = newPool(t, { target: `pass:///${backend.address}#1`, maxStreamsPerAnchor: 1, maxWaitingClients: 3 });
  await pool.ready();
  const only = await pool.acquire();

  await t.rejects(pool.acquire({ timeoutMillis: 50 }), { code: 'ANCHORPOOL_ACQUIRE_TIMEOUT', message: /within 50 ms/ });
  t.equal(pool.stats().timeouts, 1);

  const controller = new AbortController();
  const aborted = pool.acquire({ signal: controller.signal });
  controller.abort(new Error('user gave up'));
  await t.rejects(aborted, { code: 'ANCHORPOOL_ACQUIRE_ABORTED' });
  await t.rejects(pool.acquire({ signal: AbortSignal.abort() }), { code: 'ANCHORPOOL_ACQUIRE_ABORTED' }, 'an already aborted signal');
  t.equal(pool.stats().waiting, 0, 'aborted waiters leave no residue');

  const order: string[] = [];
  const low = pool.acquire({ priority: 0 }).then((l) => (order.push('low'), l));
  const high = pool.acquire({ priority: 10 }).then((l) => (order.push('high'), l));
  const mid = pool.acquire({ priority: 5 }).then((l) => (order.push('mid'), l));
  await t.rejects(pool.acquire(), { code: 'ANCHORPOOL_TOO_MANY_WAITERS' }, 'a 4th waiter is over maxWaitingClients');
  only.release();
  (await high).release();
  (await mid).release();
  (await low).release();
  t.same(order, ['high', 'mid', 'low'], 'waiters are served by priority');

  const strict = newPool(t, { target: `pass:///${backend.address}#1`, maxStreamsPerAnchor: 1, failFast: true });
  await strict.ready();
  const held = await strict.acquire();
  await t.rejects(strict.acquire(), { code: 'ANCHORPOOL_NO_ANCHOR_AVAILABLE', message: /failFast/ });
  held.release();
  await t.rejects(pool.acquire({ timeoutMillis: -1 }), { code: 'ANCHORPOOL_CONFIG', message: /timeoutMillis/ });
  await t.rejects(pool.acquire({ priority: Number.NaN }), { code: 'ANCHORPOOL_CONFIG', message: /priority/ });
});

t.test('misuse: double release, a lease of another pool, release and acquire after close', async (t) => {
  const backend = await startBackend(t);
  const one = newPool(t, { target: `pass:///${backend.address}`, drainTimeoutMillis: 100 });
  const two = newPool(t, { target: `pass:///${backend.address}` });
  await Promise.all([one.ready(), two.ready()]);
  const lease = await one.acquire();
  lease.release();
  t.throws(() => lease.release(), { code: 'ANCHORPOOL_LEASE_RELEASED', message: /already released/ });
  const other = await two.acquire();
  t.throws(() => one.release(other), { code: 'ANCHORPOOL_FOREIGN_LEASE' });
  t.throws(() => one.release({} as never), { code: 'ANCHORPOOL_FOREIGN_LEASE' });
  t.equal(two.stats().leased, 1, 'a refused release changes nothing');
  other.release();
  const held = await one.acquire();
  const scoped = await one.acquire();
  await one.close(); // drainTimeoutMillis runs out with both leases still held
  t.equal(one.stats().leased, 0, 'the leases were reclaimed with their anchors');
  t.throws(() => held.release(), { code: 'ANCHORPOOL_CLOSED', message: /after close\(\) finished.*already reclaimed/ });
  t.throws(() => held.release(), { code: 'ANCHORPOOL_LEASE_RELEASED' }, 'and a second try is a double release');
  t.doesNotThrow(() => scoped[Symbol.dispose](), 'a `using` scope that ends after close() has nothing to give back');
  await t.rejects(one.acquire(), { code: 'ANCHORPOOL_CLOSED' });
  await t.rejects(one.ready(), { code: 'ANCHORPOOL_CLOSED' });
});

t.test('a lease released while close() drains lets close() finish early', async (t) => {
  const backend = await startBackend(t);
  const pool = newPool(t, { target: `pass:///${backend.address}`, drainTimeoutMillis: 10_000 });
  await pool.ready();
  const lease = await pool.acquire();
  const startedAt = Date.now();
  const closing = pool.close();
  setTimeout(() => lease.release(), 50);
  await closing;
  t.ok(Date.now() - startedAt < 5000, `close() finished ${Date.now() - startedAt} ms after the release, not at the drain timeout`);
  t.equal(lease.released, true);
});

t.test('invalid pool options throw ConfigError naming each problem', async (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ target: 'pass:///h:1', maxStreamsPerAnchor: 0 }, /maxStreamsPerAnchor/],
    [{ target: 'pass:///h:1', credentials: {} }, /credentials: must be grpc\.ChannelCredentials/],
    [{ target: 'pass:///h:1', failFast: 'yes' }, /failFast/],
    [{ target: 'pass:///h:1', acquireTimeoutMillis: -5, drainTimeoutMillis: 1.5 }, /acquireTimeoutMillis.*drainTimeoutMillis/],
    [{ target: 'pass:///h:1', maxLeasesPerAnchr: 3 }, /maxLeasesPerAnchr/],
  ];
  for (const [options, message] of cases) {
    t.throws(() => createPool(options as PoolOptions), { code: 'ANCHORPOOL_CONFIG', message }, JSON.stringify(options));
  }
});

t.test('a killed backend gets no lease once grpc-js reports it; leases come back when it is READY again', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  const pool = newPool(t, { target: `pass:///${a.address}#2,${b.address}#2` });
  await pool.ready();
  await waitFor(() => pool.stats().anchors.byState.READY === 4, { what: 'all anchors READY' });
  const states: string[] = [];
  pool.on('anchor-state', (e) => {
    if (e.address === b.address) states.push(e.state);
  });
  const killedAt = Date.now();
  await b.kill();
  await waitFor(() => pool.stats().anchors.byState.READY === 2, { what: "b's anchors to leave READY" });
  t.comment(`grpc-js reported b down ${Date.now() - killedAt} ms after the kill`);
  for (let i = 0; i < 50; i++) {
    const lease = await pool.acquire();
    t.equal(lease.address, a.address, 'no lease on the dead backend');
    lease.release();
  }
  await b.start(); // same port
  const restartedAt = Date.now();
  await waitFor(() => pool.stats().anchors.byState.READY === 4, { timeoutMs: 20_000, what: "b's anchors READY again" });
  t.comment(`b back in rotation ${Date.now() - restartedAt} ms after its restart`);
  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) {
    const lease = await pool.acquire();
    seen.add(lease.address);
    lease.release();
  }
  t.ok(seen.has(b.address), 'leases go to the restarted backend again');
  t.ok(states.includes('READY'), `anchor states of b seen: ${[...new Set(states)].join(', ')}`);
  t.equal((await b.stats()).connections.length, 2, 'and it holds 2 connections again');
});

t.test('close() under load: waiters rejected, leases drained, every connection closed', async (t) => {
  const backend = await startBackend(t, { delayMillis: 20 });
  const pool = newPool(t, { target: `pass:///${backend.address}#2`, maxStreamsPerAnchor: 4, drainTimeoutMillis: 2000 });
  await pool.ready();
  let running = true;
  const failures: string[] = [];
  const workers = Array.from({ length: 16 }, async () => {
    while (running) {
      try {
        await pool.use((lease) => callEcho(lease.client(EchoClient)));
      } catch (err) {
        failures.push((err as { code?: string }).code ?? String(err));
        return;
      }
    }
  });
  await sleep(300);
  const closing = pool.close();
  running = false;
  await closing;
  await Promise.all(workers);
  t.ok(failures.every((code) => code === 'ANCHORPOOL_CLOSED'), `only PoolClosedError after close (${failures.length} waiters rejected)`);
  t.equal(pool.stats().leased, 0, 'every lease came back');
  await connectionsOf(backend, 0, 'after close');
  t.pass('the server sees no connection left');
});

t.test('leak detection (opt-in) reports a lease held too long, with the stack of its acquire', async (t) => {
  const backend = await startBackend(t);
  const pool = newPool(t, { target: `pass:///${backend.address}`, leakDetectionMillis: 100 });
  await pool.ready();
  const leaks: { key: string; heldMillis: number; stack: string }[] = [];
  pool.on('lease-leak', (event) => leaks.push(event));
  const forgotten = await pool.acquire();
  const returned = await pool.acquire();
  returned.release();
  await sleep(250);
  t.equal(leaks.length, 1, 'only the lease still held is reported');
  // Date.now() counts whole milliseconds and timers run on another clock: 99 ms is a 100 ms timer.
  t.ok(leaks[0]!.heldMillis >= 99, `reported after ${leaks[0]!.heldMillis} ms (leakDetectionMillis 100)`);
  t.match(leaks[0]!.stack, /pool\.spec\.ts/, 'the stack points at the acquire in this file');
  forgotten.release();
});

t.test('`await using` releases at the end of the scope', async (t) => {
  const backend = await startBackend(t);
  const pool = newPool(t, { target: `pass:///${backend.address}` });
  await pool.ready();
  {
    await using lease = await pool.acquire();
    t.equal(lease.released, false);
    t.equal(pool.stats().leased, 1);
  }
  t.equal(pool.stats().leased, 0);
});
