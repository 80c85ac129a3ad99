// Calls that never left the client. The pool's anchor channels mark a call that failed at
// its pick (the anchor's connection is gone) as never sent; pool.client() runs such a call
// again on another lease, and manual-lease callers can tell with isNeverSent(). Here one
// anchor is "stale": it reports READY while its channel points at a closed port, as an
// anchor does in the instant between its backend's GOAWAY and the pool seeing it. The
// other anchor is a real backend, which counts the calls it runs.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import type { AnchorListener, AnchorSpec } from '../lib/anchors/anchor.js';
import { ChannelAnchor } from '../lib/pool/channel-anchor.js';
import { isNeverSent, NEVER_SENT_KEY } from '../lib/core/never-sent.js';
import { silentLogger } from '../lib/core/logger.js';
import { createPoolWithAnchors, type AnchorPool } from '../lib/pool/pool.js';
import { MAX_REPLAYS } from '../lib/core/request-log.js';
import { callEcho, chatEcho, collectEcho, countEcho, EchoClient, startBackend, type Backend } from '../testkit/tap-backend.js';
import { freePort } from '../etcd-dev/etcd-dev.mjs';

const settings = { credentials: grpc.credentials.createInsecure(), channelOptions: {}, maxStreams: 100, tag: 'replay-spec' };

/** Reports READY without connecting: its calls reach the pick and find no connection. */
class StaleAnchor extends ChannelAnchor {
  override start(): void {
    this.setState('READY');
  }
}

/** A pool on one stale anchor and, unless `liveBackend` is absent, one anchor on a real backend. */
async function replayPool(t: Test, liveBackend: Backend | undefined) {
  // A free port nothing listens on: the stale anchor's calls are refused.
  const dead = `127.0.0.1:${await freePort()}`;
  const stale: StaleAnchor[] = [];
  const factory = (spec: AnchorSpec, listener: AnchorListener): ChannelAnchor => {
    if (spec.address !== dead) return new ChannelAnchor(spec, settings, listener);
    const anchor = new StaleAnchor(spec, settings, listener);
    stale.push(anchor);
    return anchor;
  };
  const targets = liveBackend === undefined ? `${dead}#2` : `${dead}#1,${liveBackend.address}#1`;
  const pool: AnchorPool = createPoolWithAnchors({ target: `pass:///${targets}`, logger: silentLogger, acquireTimeoutMillis: 1000 }, factory);
  t.teardown(() => pool.close());
  await pool.ready();
  if (liveBackend !== undefined) {
    // Both anchors take leases: the live one must be READY, not just the stale one.
    while (pool.stats().anchors.eligible < 2) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { pool, stale };
}

t.test('pool.client(): a unary call leased on an anchor whose connection is gone runs again on another, once', async (t) => {
  const backend = await startBackend(t, { name: 'live' });
  const { pool, stale } = await replayPool(t, backend);
  const stub = pool.client(EchoClient);
  await backend.resetStats();
  const replies = [];
  for (let i = 0; i < 20; i++) replies.push(await callEcho(stub, 3000));
  t.equal(replies.length, 20, '20 of 20 calls OK');
  t.ok(replies.every((r) => r.server === 'live'), 'every one answered by the live backend');
  t.ok(stale[0]!.acquired >= 10, `the stale anchor was leased for ${stale[0]!.acquired} of them (round robin)`);
  t.equal((await backend.stats()).calls, 20, 'the backend ran each call exactly once');
  t.equal(pool.stats().leased, 0, 'every lease given back, the replaced ones too');
});

t.test('pool.client(): streams are run again with every request message, in order', async (t) => {
  const backend = await startBackend(t, { name: 'live' });
  const { pool, stale } = await replayPool(t, backend);
  const stub = pool.client(EchoClient);
  for (let i = 0; i < 2; i++) {
    // Two of each: round robin puts one of the two on the stale anchor.
    t.equal(await collectEcho(stub, ['a', 'b', 'c']), '3', 'client stream: the server received all 3 messages');
    t.same(await chatEcho(stub, ['x', 'y']), ['x', 'y'], 'bidi stream: both messages echoed, in order');
    t.same(await countEcho(stub, 3), ['0', '1', '2'], 'server stream: all 3 replies');
  }
  t.ok(stale[0]!.acquired >= 3, `the stale anchor was leased ${stale[0]!.acquired} times`);
  t.equal(pool.stats().leased, 0);
});

t.test('a call that reached a server is not run again, whatever its status', async (t) => {
  const backend = await startBackend(t, { name: 'live' });
  const { pool } = await replayPool(t, backend);
  const stub = pool.client(EchoClient);
  await backend.resetStats();
  let failures = 0;
  for (let i = 0; i < 6; i++) {
    const error = await callEcho(stub, 3000, 'unavailable').then(
      () => undefined,
      (err: grpc.ServiceError) => err,
    );
    t.equal(error?.code, grpc.status.UNAVAILABLE, 'the server\'s UNAVAILABLE reaches the caller');
    t.notOk(isNeverSent(error), 'and is not marked never sent');
    failures += 1;
  }
  t.equal((await backend.stats()).calls, failures, 'the server ran each failing call once: no replay');
});

t.test('manual leases: a call on the stale anchor fails UNAVAILABLE and is marked; a call cut off on a server is not', async (t) => {
  const backend = await startBackend(t, { name: 'live' });
  const { pool, stale } = await replayPool(t, backend);
  let marked: grpc.ServiceError | undefined;
  let cutOff: grpc.ServiceError | undefined;
  for (let i = 0; i < 2; i++) {
    const lease = await pool.acquire();
    const onStale = lease.address === stale[0]!.address;
    if (onStale) {
      marked = await callEcho(lease.client(EchoClient), 3000).then(() => undefined, (err: grpc.ServiceError) => err);
      lease.release(marked);
    } else {
      const call = callEcho(lease.client(EchoClient), 3000, 'sleep:2000').then(() => undefined, (err: grpc.ServiceError) => err);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await backend.kill();
      cutOff = await call;
      lease.release(cutOff);
    }
  }
  t.equal(marked?.code, grpc.status.UNAVAILABLE, `the stale anchor's call: ${marked?.details}`);
  t.ok(isNeverSent(marked), 'isNeverSent(): it never left the client');
  t.same(marked?.metadata.get(NEVER_SENT_KEY), ['1'], 'the mark is one metadata entry');
  t.equal(cutOff?.code, grpc.status.UNAVAILABLE, `the call on the killed backend: ${cutOff?.details}`);
  t.notOk(isNeverSent(cutOff), 'a call that reached its server is not marked, though it failed UNAVAILABLE');
  t.notOk(isNeverSent(undefined));
  t.notOk(isNeverSent(new Error('plain')));
  t.notOk(isNeverSent({ metadata: { get: () => ['1'] } }), 'only grpc-js Metadata counts');
});

t.test(`pool.client(): with every anchor stale a call gives up after ${MAX_REPLAYS} replays, marked, its leases given back`, async (t) => {
  const { pool, stale } = await replayPool(t, undefined);
  const stub = pool.client(EchoClient);
  const error = await callEcho(stub, 3000).then(() => undefined, (err: grpc.ServiceError) => err);
  t.equal(error?.code, grpc.status.UNAVAILABLE);
  t.ok(isNeverSent(error), 'the caller can still tell it never left the client');
  t.equal(stale.reduce((sum, a) => sum + a.acquired, 0), MAX_REPLAYS + 1, `${MAX_REPLAYS + 1} attempts in all`);
  t.equal(pool.stats().leased, 0);
});

t.test('a service config in channelOptions is kept for its method configs; one that is not a JSON object is refused', async (t) => {
  const { createPool } = await import('../lib/pool/pool.js');
  t.throws(() => createPool({ target: 'pass:///127.0.0.1:1', channelOptions: { 'grpc.service_config': '[1]' } }), { code: 'ANCHORPOOL_CONFIG', message: /grpc\.service_config.*JSON object/ });
  t.throws(() => createPool({ target: 'pass:///127.0.0.1:1', channelOptions: { 'grpc.service_config': 'nope' } }), { code: 'ANCHORPOOL_CONFIG' });
  const backend = await startBackend(t, { name: 'live', delayMillis: 500 });
  // A method config's timeout still applies on the anchor channels (the policy is replaced, the rest kept).
  const serviceConfig = { loadBalancingPolicy: 'round_robin', methodConfig: [{ name: [{ service: 'anchorpool.test.Echo' }], timeout: '0.1s' }] };
  const pool = createPool({ target: `pass:///${backend.address}`, logger: silentLogger, channelOptions: { 'grpc.service_config': JSON.stringify(serviceConfig) } });
  t.teardown(() => pool.close());
  await pool.ready();
  const error = await callEcho(pool.client(EchoClient), 3000).then(() => undefined, (err: grpc.ServiceError) => err);
  t.equal(error?.code, grpc.status.DEADLINE_EXCEEDED, 'the 0.1 s method timeout cut the 500 ms call');
});
