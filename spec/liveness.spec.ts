// The liveness check against real servers: grpc-js and grpc-go backends, connections frozen
// by a TCP proxy (no RST), a listener that accepts and never answers, and a proxy that
// reads the HTTP/2 frames to see every PING and GOAWAY. Both paths: the lease pool and the
// anchored_round_robin policy of a plain grpc-js client.
import t, { type Test } from 'tap';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { createPool, registerAnchorpool, type AnchorPool, type PoolOptions } from '../lib/index.js';
import { callEcho, echoClient, EchoClient, startBackend } from '../testkit/tap-backend.js';
import { startTcpProxy, type TcpProxy } from '../testkit/tcp-proxy.js';
import { GoBackend } from '../testkit/go-backend.js';
import { goaways } from '../testkit/h2-frames.js';

async function proxyTo(t: Test, port: number, http2Frames = false): Promise<TcpProxy> {
  const proxy = await startTcpProxy({ targetHost: '127.0.0.1', targetPort: port, http2Frames });
  t.teardown(() => proxy.close());
  return proxy;
}

async function poolOn(t: Test, options: PoolOptions): Promise<AnchorPool> {
  const pool = createPool(options);
  t.teardown(() => pool.close());
  await pool.ready();
  return pool;
}

async function goBackend(t: Test, name: string): Promise<GoBackend> {
  const backend = new GoBackend({ name });
  t.teardown(() => backend.kill());
  await backend.start();
  return backend;
}

/** A quick check so the spec runs in seconds; the defaults are measured by the fault suite. */
const QUICK = { quietMillis: 200, pingTimeoutMillis: 500 };

/** The status a call ends with (OK, or the error's code). */
async function statusOf(call: Promise<unknown>): Promise<grpc.status> {
  try {
    await call;
    return grpc.status.OK;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}

const paths = {
  'the lease pool': async (t: Test, target: string, liveness: object | false) => {
    const pool = await poolOn(t, { target, liveness: liveness as PoolOptions['liveness'] });
    return pool.client(EchoClient);
  },
  'anchored_round_robin': async (t: Test, target: string, liveness: object | false) => {
    registerAnchorpool();
    const client = echoClient(t, target, { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { liveness } }] }) });
    await callEcho(client, 5000);
    return client;
  },
};

for (const [path, clientOn] of Object.entries(paths)) {
  t.test(`${path}: a frozen connection is dropped, its call fails UNAVAILABLE, and the backend serves again on a new connection`, async (t) => {
    const backend = await startBackend(t, { name: 'a' });
    const proxy = await proxyTo(t, backend.port);
    const client = await clientOn(t, `pass:///127.0.0.1:${proxy.port}#1`, QUICK);
    t.equal((await callEcho(client, 2000)).server, 'a');
    proxy.pause();
    const frozenAt = performance.now();
    t.equal(await statusOf(callEcho(client, 5000)), grpc.status.UNAVAILABLE, 'the call on the frozen connection ends UNAVAILABLE, long before its deadline');
    const failedAfter = performance.now() - frozenAt;
    t.ok(failedAfter < QUICK.quietMillis + QUICK.pingTimeoutMillis + 500, `it failed ${Math.round(failedAfter)} ms after the freeze`);
    // New connections through the proxy flow: the anchor is back on one.
    t.equal((await callEcho(client, 3000)).server, 'a', 'the next call is served on a new connection');
    t.equal(proxy.connectionCount(), 2, 'the frozen connection and the new one');
  });

  t.test(`${path}: liveness false keeps grpc-js's behaviour: the call waits out its deadline`, async (t) => {
    const backend = await startBackend(t, { name: 'a' });
    const proxy = await proxyTo(t, backend.port);
    const client = await clientOn(t, `pass:///127.0.0.1:${proxy.port}#1`, false);
    proxy.pause();
    t.equal(await statusOf(callEcho(client, 1500)), grpc.status.DEADLINE_EXCEEDED);
    t.equal(await statusOf(callEcho(client, 500)), grpc.status.DEADLINE_EXCEEDED, 'and the next one too: the connection stays in rotation');
  });

  t.test(`${path}: a call that is merely slow on a quiet connection to a grpc-go server succeeds; the connection stays`, async (t) => {
    const backend = await goBackend(t, 'slow');
    const proxy = await proxyTo(t, backend.port, true);
    const client = await clientOn(t, `pass:///127.0.0.1:${proxy.port}#1`, QUICK);
    const before = (await backend.stats()).connectionsTotal;
    const started = performance.now();
    t.equal((await callEcho(client, 10_000, 'sleep:3000')).server, 'slow', 'the 3 s call is answered');
    t.ok(performance.now() - started >= 2900);
    const pings = proxy.frames().flatMap((c) => c.events.filter((e) => e.kind === 'ping'));
    t.equal(pings.length, 1, 'one ping after the quiet time, answered; none after it (the server wrote nothing since)');
    t.equal((await backend.stats()).connectionsTotal, before, 'no new connection');
    t.same(goaways(proxy.frames()), [], 'no GOAWAY');
  });
}

t.test('the ping rule is what keeps grpc-go from closing the connection: without the 5-minute floor it sends GOAWAY too_many_pings', async (t) => {
  const backend = await goBackend(t, 'strict');
  const silentFor = async (minPingIntervalMillis: number) => {
    const proxy = await proxyTo(t, backend.port, true);
    const pool = await poolOn(t, { target: `pass:///127.0.0.1:${proxy.port}#1`, liveness: { quietMillis: 100, pingTimeoutMillis: 1000, minPingIntervalMillis } });
    // A call the server answers only after 2.5 s: a silent stream, pinged whenever the rule allows.
    const status = await statusOf(callEcho(pool.client(EchoClient), 10_000, 'sleep:2500'));
    const frames = proxy.frames();
    return { status, pings: frames.flatMap((c) => c.events.filter((e) => e.kind === 'ping')).length, goaways: goaways(frames) };
  };
  const careless = await silentFor(0);
  t.ok(careless.pings >= 3, `a ping every quiet time: ${careless.pings} pings`);
  t.match(careless.goaways, [{ errorCode: 0xb, debug: 'too_many_pings' }], 'grpc-go closes the connection (ENHANCE_YOUR_CALM)');
  const ruled = await silentFor(300_000);
  t.equal(ruled.pings, 1, 'with the rule: one ping');
  t.same(ruled.goaways, [], 'no GOAWAY');
  t.equal(ruled.status, grpc.status.OK, 'and the call is answered');
});

t.test('a connection attempt that hangs is given up at connectTimeoutMillis and tried again; other keys serve meanwhile', async (t) => {
  const accepted: net.Socket[] = [];
  const blackHole = net.createServer((socket) => accepted.push(socket));
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of accepted) socket.destroy();
    blackHole.close();
  });
  const holePort = (blackHole.address() as net.AddressInfo).port;
  const backend = await startBackend(t, { name: 'up' });
  const attemptsWithin = async (connectTimeoutMillis: number): Promise<{ attempts: number; timeouts: number; served: Set<string> }> => {
    const before = accepted.length;
    const pool = await poolOn(t, { target: `pass:///${backend.address}#1,127.0.0.1:${holePort}#1`, connectTimeoutMillis });
    const served = new Set<string>();
    for (let i = 0; i < 20; i++) served.add((await callEcho(pool.client(EchoClient), 1000)).server);
    await sleep(1300);
    const timeouts = pool.stats().liveness.connectTimeouts;
    await pool.close();
    return { attempts: accepted.length - before, timeouts, served };
  };
  const deadline = await attemptsWithin(300);
  t.ok(deadline.attempts >= 3, `with a 300 ms deadline: ${deadline.attempts} attempts in about 1.5 s`);
  t.ok(deadline.timeouts >= 3, `${deadline.timeouts} attempts given up`);
  t.same([...deadline.served], ['up'], 'every call served by the key that answers');
  const none = await attemptsWithin(0);
  t.equal(none.attempts, 1, 'with no deadline (grpc-js alone) the one attempt hangs');
  t.equal(none.timeouts, 0);
});

t.test('a given-up attempt leaves no socket behind, in the HTTP/2 handshake and in the TLS one', async (t) => {
  for (const [handshake, credentials] of [
    ['HTTP/2', grpc.credentials.createInsecure()],
    ['TLS', grpc.credentials.createSsl()],
  ] as const) {
    let accepted = 0;
    let closed = 0;
    const sockets: net.Socket[] = [];
    // Accepts, reads, and never answers: the client's handshake waits.
    const blackHole = net.createServer((socket) => {
      accepted += 1;
      sockets.push(socket);
      socket.on('data', () => undefined);
      socket.on('close', () => (closed += 1));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const port = (blackHole.address() as net.AddressInfo).port;
    const pool = createPool({ target: `pass:///127.0.0.1:${port}#1`, credentials, connectTimeoutMillis: 200 });
    await sleep(1500);
    const given = pool.stats().liveness.connectTimeouts;
    await pool.close();
    await sleep(100);
    t.ok(given >= 4, `${handshake}: ${given} attempts given up in 1.5 s`);
    t.ok(accepted >= given, `${handshake}: ${accepted} connections reached the listener`);
    t.ok(closed >= accepted - 1, `${handshake}: the client closed ${closed} of them (the last may be open at close)`);
    for (const socket of sockets) socket.destroy();
    blackHole.close();
  }
});

t.test('the pool tells: an anchor-connection-lost event, a warning, stats().liveness and the metrics series', async (t) => {
  const backend = await startBackend(t, { name: 'a' });
  const proxy = await proxyTo(t, backend.port);
  const warnings: string[] = [];
  const logger = { debug() {}, info() {}, warn: (_fields: object, message: string) => void warnings.push(message), error() {} };
  const pool = await poolOn(t, { target: `pass:///127.0.0.1:${proxy.port}#1`, liveness: QUICK, logger });
  const events: { reason: string; detail: string }[] = [];
  pool.on('anchor-connection-lost', (event) => events.push(event));
  const registry = pool.metrics();
  const client = pool.client(EchoClient);
  await callEcho(client, 2000);
  proxy.pause();
  t.equal(await statusOf(callEcho(client, 5000)), grpc.status.UNAVAILABLE);
  t.match(events, [{ reason: 'frozen', detail: /no answer from 127\.0\.0\.1:\d+ \(static\/0#0\) to a ping within 500 ms after 200 ms of silence/ }]);
  t.match(warnings, [/anchor static\/0#0: no answer .* connection dropped, reconnecting/]);
  t.match(pool.stats().liveness, { pings: 1, frozen: 1, connectTimeouts: 0 });
  const text = await registry.metrics();
  t.match(text, /^anchorpool_connections_frozen_total 1$/m);
  t.match(text, /^anchorpool_liveness_pings_total 1$/m);
  t.match(text, /^anchorpool_connect_timeouts_total 0$/m);
});
