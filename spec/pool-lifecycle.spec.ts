// The pool's lifecycle as a user meets it: ready() settles at once on close() and on an
// abort at any stage and leaves no timer; a throwing listener is rethrown on a later
// tick while every other listener and the pool carry on; pool.metrics() twice.
import t, { type Test } from 'tap';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { createPool, isAnchorPoolError, silentLogger, type AnchorPool, type PoolOptions } from '../lib/index.js';
import { callEcho, EchoClient, startBackend } from '../testkit/tap-backend.js';

/** A loopback port nothing listens on: anchors to it never become READY. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function newPool(t: Test, options: PoolOptions): AnchorPool {
  const pool = createPool({ logger: silentLogger, ...options });
  t.teardown(() => pool.close());
  return pool;
}

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/** Time from `trigger()` to the settlement of `pending`, and how it settled. */
async function settleTime(pending: Promise<unknown>, trigger: () => unknown): Promise<{ millis: number; error: unknown }> {
  const outcome = pending.then(
    () => ({ error: undefined }),
    (error: unknown) => ({ error }),
  );
  const startedAt = performance.now();
  trigger();
  const { error } = await outcome;
  return { millis: performance.now() - startedAt, error };
}

t.test('close() while ready() waits for a READY anchor rejects it at once with PoolClosedError, leaving no timer', async (t) => {
  const before = timers();
  const pool = newPool(t, { target: `pass:///127.0.0.1:${await closedPort()}` });
  const pending = pool.ready({ timeoutMillis: 3000 });
  await sleep(100); // the static source is ready; the anchor is not
  const { millis, error } = await settleTime(pending, () => void pool.close());
  t.ok(isAnchorPoolError(error) && error.code === 'ANCHORPOOL_CLOSED', `rejected with PoolClosedError (got ${String(error)})`);
  t.ok(millis < 500, `at once (${millis.toFixed(0)} ms, the timeout was 3000 ms)`);
  await pool.close();
  t.ok(timers() <= before, `no timer left behind (${timers()} now, ${before} before)`);
});

t.test('close() while ready() waits for etcd rejects it at once too', async (t) => {
  const before = timers();
  const pool = newPool(t, { target: 'etcd:///lifecycle/', etcd: { hosts: [`127.0.0.1:${await closedPort()}`], retryMaxMillis: 200 } });
  const pending = pool.ready({ timeoutMillis: 3000 });
  await sleep(100);
  const { millis, error } = await settleTime(pending, () => void pool.close());
  t.ok(isAnchorPoolError(error) && error.code === 'ANCHORPOOL_CLOSED', `rejected with PoolClosedError (got ${String(error)})`);
  t.ok(millis < 500, `at once (${millis.toFixed(0)} ms)`);
  await pool.close();
  t.ok(timers() <= before, `no timer left behind (${timers()} now, ${before} before)`);
});

t.test('ready({ signal }) rejects at once when aborted, whatever the stage', async (t) => {
  const port = await closedPort();
  for (const stage of ['waiting for the source', 'waiting for a READY anchor'] as const) {
    const pool =
      stage === 'waiting for the source'
        ? newPool(t, { target: 'etcd:///lifecycle/', etcd: { hosts: [`127.0.0.1:${port}`], retryMaxMillis: 200 } })
        : newPool(t, { target: `pass:///127.0.0.1:${port}` });
    const abort = new AbortController();
    const pending = pool.ready({ timeoutMillis: 3000, signal: abort.signal });
    await sleep(100);
    const { millis, error } = await settleTime(pending, () => abort.abort(new Error('caller gave up')));
    t.ok(isAnchorPoolError(error) && error.code === 'ANCHORPOOL_ACQUIRE_ABORTED', `${stage}: AcquireAbortedError (got ${String(error)})`);
    t.equal((error as Error).cause instanceof Error && ((error as Error).cause as Error).message, 'caller gave up', `${stage}: the abort reason is the cause`);
    t.ok(millis < 500, `${stage}: at once (${millis.toFixed(0)} ms)`);
  }
  const pool = newPool(t, { target: `pass:///127.0.0.1:${port}` });
  const aborted = AbortSignal.abort();
  await t.rejects(pool.ready({ signal: aborted }), { code: 'ANCHORPOOL_ACQUIRE_ABORTED' }, 'an already aborted signal rejects at once');
});

t.test('a listener that throws is rethrown on a later tick; the other listeners and the pool carry on', async (t) => {
  const backend = await startBackend(t, { name: 'l' });
  const uncaught: unknown[] = [];
  process.setUncaughtExceptionCaptureCallback((error) => uncaught.push(error));
  t.teardown(() => process.setUncaughtExceptionCaptureCallback(null));
  const pool = newPool(t, { target: `pass:///${backend.address}#2` });
  const seen: string[] = [];
  pool.on('endpoint-added', () => {
    throw new Error('listener bug');
  });
  pool.on('endpoint-added', (endpoint) => seen.push(endpoint.addr));
  pool.on('anchor-state', () => {
    throw new Error('state listener bug');
  });
  await pool.ready();
  await sleep(20);
  t.same(seen, [backend.address], 'the listener after the throwing one still got the event');
  t.ok(uncaught.some((e) => (e as Error).message === 'listener bug'), 'the endpoint-added listener error surfaced as an uncaught exception');
  t.ok(uncaught.some((e) => (e as Error).message === 'state listener bug'), 'the anchor-state listener error surfaced too');
  t.equal(pool.stats().anchors.active, 2, 'both anchors exist: the reconcile ran despite the throwing listener');
  const lease = await pool.acquire();
  t.match(await callEcho(lease.client(EchoClient), 2000), { server: 'l' }, 'and the pool serves calls');
  lease.release();
  pool.removeAllListeners();
});

t.test('pool.metrics(): the same registry twice is returned as is; two registries both observe every wait', async (t) => {
  const backend = await startBackend(t, { name: 'm' });
  const pool = newPool(t, { target: `pass:///${backend.address}#1` });
  await pool.ready();
  const first = new Registry();
  const second = new Registry();
  t.equal(pool.metrics(first), first, 'returns the registry');
  t.doesNotThrow(() => pool.metrics(first), 'a second call with the same registry does not throw');
  pool.metrics(second);
  for (let i = 0; i < 3; i++) (await pool.acquire()).release();
  const count = async (registry: Registry): Promise<number> => {
    const json = await registry.getSingleMetricAsString('anchorpool_acquire_wait_seconds');
    return Number(/anchorpool_acquire_wait_seconds_count (\d+)/.exec(json)?.[1]);
  };
  t.equal(await count(first), 3, 'the first registry saw the 3 waits');
  t.equal(await count(second), 3, 'and so did the second');
  const own = pool.metrics();
  t.equal(pool.metrics(), own, 'without a registry: the registry it made the first time, not one more');
  const other = newPool(t, { target: `pass:///${backend.address}#1` });
  t.throws(() => other.metrics(first), { code: 'ANCHORPOOL_CONFIG' }, "another pool's series in the same registry: a clear ConfigError");
});
