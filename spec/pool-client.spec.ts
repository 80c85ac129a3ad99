// pool.client(): a stub whose every call takes a lease and gives it back when the call
// ends — for unary calls and all three kinds of stream, on success, error, cancel and
// deadline — against a real grpc-js backend.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, type AnchorPool } from '../lib/pool/pool.js';
import type { PoolOptions } from '../lib/pool/pool-options.js';
import { silentLogger } from '../lib/core/logger.js';
import { callEcho, EchoClient, startBackend } from '../testkit/tap-backend.js';
import { waitFor } from '../testkit/tap-etcd.js';

const backend = await startBackend(t, { name: 'solo' });

async function newPool(t: Test, options: Partial<PoolOptions> = {}, address = backend.address): Promise<AnchorPool> {
  const pool = createPool({ target: `pass:///${address}#2`, logger: silentLogger, ...options });
  t.teardown(() => pool.close());
  await pool.ready();
  return pool;
}

const statusOf = (call: { on(event: 'status', l: (s: grpc.StatusObject) => void): unknown }) =>
  new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));

t.test('unary calls, successful and failing, each release their lease', async (t) => {
  const pool = await newPool(t);
  const echo = pool.client(EchoClient);
  const reply = await callEcho(echo);
  t.equal(reply.server, 'solo');
  t.equal(pool.stats().leased, 0);
  await t.rejects(callEcho(echo, 5000, 'fail'), { code: grpc.status.FAILED_PRECONDITION });
  t.equal(pool.stats().leased, 0, 'released after an error status');
  t.equal(pool.stats().acquired, 2);
});

t.test('server, client and bidi streams release on end and on error', async (t) => {
  const pool = await newPool(t);
  const echo = pool.client(EchoClient);

  const counting = echo.count(Buffer.from('5'));
  let received = 0;
  counting.on('data', () => (received += 1));
  t.equal((await statusOf(counting)).code, grpc.status.OK);
  t.equal(received, 5, 'server stream delivered every message');
  t.equal(pool.stats().leased, 0, 'server stream released on end');

  const failing = echo.count(Buffer.from('fail'));
  failing.on('data', () => undefined);
  failing.on('error', () => undefined);
  t.equal((await statusOf(failing)).code, grpc.status.ABORTED);
  t.equal(pool.stats().leased, 0, 'server stream released on error');

  const total = await new Promise<string>((resolve, reject) => {
    const call = echo.collect((err: grpc.ServiceError | null, reply?: Buffer) => (err ? reject(err) : resolve(reply!.toString())));
    for (let i = 0; i < 4; i++) call.write(Buffer.from('x'));
    call.end();
  });
  t.equal(total, '4', 'client stream');
  t.equal(pool.stats().leased, 0, 'client stream released');

  const chat = echo.chat();
  const echoed: string[] = [];
  chat.on('data', (m: Buffer) => echoed.push(m.toString()));
  chat.write(Buffer.from('a'));
  chat.write(Buffer.from('b'));
  chat.end();
  t.equal((await statusOf(chat)).code, grpc.status.OK);
  t.same(echoed, ['a', 'b'], 'bidi stream');
  t.equal(pool.stats().leased, 0, 'bidi stream released');
});

t.test('cancel releases the lease, whether the call started or was still waiting for one', async (t) => {
  const pool = await newPool(t, { maxStreamsPerAnchor: 1 });
  const echo = pool.client(EchoClient);
  const running = echo.echo(Buffer.from('sleep:2000'), () => undefined);
  const status = statusOf(running);
  await waitFor(() => pool.stats().leased === 1, { what: 'the call to hold a lease' });
  running.cancel();
  t.equal((await status).code, grpc.status.CANCELLED);
  t.equal(pool.stats().leased, 0, 'a started call released on cancel');

  const held = [await pool.acquire(), await pool.acquire()]; // every slot taken
  const waiting = echo.echo(Buffer.from('ping'), () => undefined);
  const waitingStatus = statusOf(waiting);
  await waitFor(() => pool.stats().waiting === 1, { what: 'the call to wait for a lease' });
  waiting.cancel();
  t.equal((await waitingStatus).code, grpc.status.CANCELLED);
  t.equal(pool.stats().waiting, 0, 'a waiting call leaves no waiter behind');
  for (const lease of held) lease.release();
  t.equal(pool.stats().leased, 0);
});

t.test('a call waiting for a lease honours its deadline, and the cap holds', async (t) => {
  // A backend of its own, so that no call of another test is still running on it.
  const own = await startBackend(t, { name: 'capped' });
  const pool = await newPool(t, { maxStreamsPerAnchor: 1 }, own.address);
  const echo = pool.client(EchoClient);
  const held = [await pool.acquire(), await pool.acquire()];
  await t.rejects(callEcho(echo, 200), { code: grpc.status.DEADLINE_EXCEEDED, details: /within/ });
  held[0]!.release();
  t.equal((await callEcho(echo)).server, 'capped', 'a released slot serves the next call');
  held[1]!.release();

  // 8 concurrent slow calls over 2 anchors with 1 slot each: never more than 2 at once.
  await Promise.all(Array.from({ length: 8 }, () => callEcho(echo, 5000, 'sleep:30')));
  const stats = await own.stats();
  t.equal(stats.calls, 9);
  t.equal(stats.maxInFlight, 2, 'the server never saw more than 2 calls at once');
  t.equal(pool.stats().leased, 0);
});

t.test('after close() calls fail CANCELLED (not UNAVAILABLE, which clients retry) instead of hanging', async (t) => {
  const pool = await newPool(t);
  const echo = pool.client(EchoClient);
  await pool.close();
  await t.rejects(callEcho(echo), { code: grpc.status.CANCELLED, details: /closed/ });
});

t.test('10,000 mixed calls leave 0 leases held', async (t) => {
  const pool = await newPool(t, { maxStreamsPerAnchor: 16 });
  const echo = pool.client(EchoClient);
  const kinds = ['unary', 'fail', 'server', 'client', 'bidi', 'cancel'] as const;
  let index = 0;
  const one = async (kind: (typeof kinds)[number]): Promise<void> => {
    switch (kind) {
      case 'unary':
        await callEcho(echo);
        return;
      case 'fail':
        await callEcho(echo, 5000, 'fail').catch(() => undefined);
        return;
      case 'server': {
        const call = echo.count(Buffer.from('3'));
        call.on('data', () => undefined);
        await statusOf(call);
        return;
      }
      case 'client': {
        await new Promise<void>((resolve) => {
          const call = echo.collect(() => resolve());
          call.write(Buffer.from('x'));
          call.end();
        });
        return;
      }
      case 'bidi': {
        const call = echo.chat();
        call.on('data', () => undefined);
        call.write(Buffer.from('x'));
        call.end();
        await statusOf(call);
        return;
      }
      case 'cancel': {
        const call = echo.echo(Buffer.from('sleep:50'), () => undefined);
        const status = statusOf(call);
        setImmediate(() => call.cancel());
        await status;
      }
    }
  };
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let i = index++; i < 10_000; i = index++) await one(kinds[i % kinds.length]!);
    }),
  );
  await sleep(50);
  t.equal(pool.stats().leased, 0, '0 leased');
  t.equal(pool.stats().waiting, 0, '0 waiting');
  t.ok(pool.stats().acquired >= 10_000 - Math.ceil(10_000 / kinds.length), `${pool.stats().acquired} leases taken and returned`);
});

t.test("the stub's own interceptors run on every call, whether it got a lease at once or waited", async (t) => {
  const pool = await newPool(t, { maxStreamsPerAnchor: 1 });
  let intercepted = 0;
  const counting: grpc.Interceptor = (options, nextCall) => {
    intercepted += 1;
    return new grpc.InterceptingCall(nextCall(options));
  };
  const echo = pool.client(EchoClient, { interceptors: [counting] });
  await callEcho(echo); // a free slot: the direct path
  const held = [await pool.acquire(), await pool.acquire()];
  const waiting = callEcho(echo); // every slot taken: the waiting path
  await waitFor(() => pool.stats().waiting === 1, { what: 'the call to wait' });
  held[0]!.release();
  await waiting;
  held[1]!.release();
  t.equal(intercepted, 2, 'the interceptor saw both calls');
  t.equal(pool.stats().leased, 0);
});

t.test('a pool client reports SHUTDOWN once the pool closes: waitForReady ends at once, before and after', async (t) => {
  const pool = createPool({ target: 'pass:///127.0.0.1:1', logger: silentLogger }); // never READY
  const echo = pool.client(EchoClient);
  const waiting = new Promise<Error | undefined>((resolve) => echo.waitForReady(Date.now() + 10_000, (error) => resolve(error)));
  const startedAt = performance.now();
  await pool.close();
  const error = await waiting;
  t.ok(performance.now() - startedAt < 2000, 'a waitForReady pending at close() ended with it, not at its 10 s deadline');
  t.ok(error instanceof Error, `with an error (${String(error)})`);
  t.equal(echo.getChannel().getConnectivityState(false), grpc.connectivityState.SHUTDOWN, 'the channel says SHUTDOWN');
  const after = await new Promise<Error | undefined>((resolve) => echo.waitForReady(Date.now() + 10_000, (e) => resolve(e)));
  t.ok(after instanceof Error, 'a waitForReady after close() fails at once');
});
