// Health checks on the native path: a plain grpc-js client on pass:/// with the
// anchored_round_robin policy, health-checked through registerAnchorpool({ healthCheck })
// or the policy's own config, against real backends serving grpc.health.v1. Each
// subchannel runs its Watch on its own connection (no extra connection is opened).
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import { callEcho, callsBy, echoClient, EchoClient, startBackend, type Backend } from '../testkit/tap-backend.js';
import { waitFor } from '../testkit/tap-etcd.js';
import { capturingLogger } from '../testkit/tap-source.js';

const logger = capturingLogger();
registerAnchorpool({ healthCheck: {}, logger });
/** Waits until `count` calls in a row avoid (or reach, with `reach`) the backend named `name`. */
async function settledOn(echo: EchoClient, name: string, reach: boolean): Promise<void> {
  await waitFor(
    async () => {
      const by = await callsBy(echo, 6);
      return reach ? (by.get(name) ?? 0) > 0 : !by.has(name);
    },
    { what: `${name} ${reach ? 'back in' : 'out of'} rotation`, timeoutMs: 5000 },
  );
}

async function connectionsOf(backend: Backend): Promise<number> {
  return (await backend.stats()).connections.length;
}

t.test('a NOT_SERVING backend gets no call; its connections stay (one per anchor, the Watch rides on them)', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  const c = await startBackend(t, { name: 'c' });
  await c.setHealth('NOT_SERVING');
  const echo = echoClient(t, `pass:///${a.address}#2,${b.address}#2,${c.address}#2`);
  await callEcho(echo, 5000);
  await waitFor(async () => (await connectionsOf(c)) === 2, { what: '2 connections on c' });
  // Every anchor of a and b has had its first SERVING (on a loaded machine a Watch answers late).
  await waitFor(async () => {
    const warm = await callsBy(echo, 20);
    return warm.get('a') === 10 && warm.get('b') === 10;
  }, { what: 'all four anchors of a and b in rotation' });
  const by = await callsBy(echo, 300);
  t.equal(by.get('c') ?? 0, 0, 'c (NOT_SERVING) got 0 of 300 calls');
  t.equal((by.get('a') ?? 0) + (by.get('b') ?? 0), 300, 'a and b took them all');
  t.ok(Math.abs((by.get('a') ?? 0) - (by.get('b') ?? 0)) <= 2, `split evenly (${by.get('a')}/${by.get('b')})`);
  t.same([await connectionsOf(a), await connectionsOf(b), await connectionsOf(c)], [2, 2, 2], 'exactly 2 connections per backend: the health stream opened none of its own');
});

t.test('flips: NOT_SERVING leaves the rotation and SERVING returns to it, each within 1 s; no call fails', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  const echo = echoClient(t, `pass:///${a.address},${b.address}`);
  let failed = 0;
  let running = true;
  const background = (async () => {
    while (running) await callEcho(echo, 2000).catch(() => (failed += 1));
  })();
  await settledOn(echo, 'b', true);
  let out = performance.now();
  await b.setHealth('NOT_SERVING');
  await settledOn(echo, 'b', false);
  out = performance.now() - out;
  let back = performance.now();
  await b.setHealth('SERVING');
  await settledOn(echo, 'b', true);
  back = performance.now() - back;
  running = false;
  await background;
  t.ok(out <= 1000, `out of rotation within ${out.toFixed(0)} ms (bar 1 s)`);
  t.ok(back <= 1000, `back within ${back.toFixed(0)} ms (bar 1 s)`);
  t.equal(failed, 0, 'no call failed in a loop of calls running through both flips');
});

t.test('every backend NOT_SERVING: calls fail UNAVAILABLE saying so, not by a silent hang', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  await a.setHealth('NOT_SERVING');
  const echo = echoClient(t, `pass:///${a.address}`);
  await t.rejects(callEcho(echo, 3000), { code: grpc.status.UNAVAILABLE, details: /no healthy backend: 1 connected anchor\(s\) report NOT_SERVING/ });
});

t.test('a backend without a health service counts as healthy, with one warning for its address', async (t) => {
  const plain = await startBackend(t, { name: 'plain', healthService: false });
  const echo = echoClient(t, `pass:///${plain.address}#3`);
  const by = await callsBy(echo, 20);
  t.equal(by.get('plain'), 20, 'every call reaches it');
  await waitFor(() => logger.lines.some((l) => l.level === 'warn' && l.message.includes(plain.address)), { what: 'the warning' });
  t.equal(logger.lines.filter((l) => l.level === 'warn' && l.message.includes(plain.address)).length, 1, 'one warning for its 3 subchannels');
});

t.test("the policy's own healthCheck names the service (a channel's service config wins)", async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  const serviceConfig = { loadBalancingConfig: [{ anchored_round_robin: { healthCheck: { serviceName: 'anchorpool.test.Echo' } } }] };
  const echo = echoClient(t, `pass:///${a.address},${b.address}`, { 'grpc.service_config': JSON.stringify(serviceConfig) });
  await settledOn(echo, 'b', true);
  await b.setHealth('NOT_SERVING'); // the whole server: not the service this channel asks for
  const by = await callsBy(echo, 20);
  t.ok((by.get('b') ?? 0) > 0, 'b still gets calls: its Echo service is SERVING');
  await b.setHealth('NOT_SERVING', 'anchorpool.test.Echo');
  await settledOn(echo, 'b', false);
  t.pass('b leaves the rotation once anchorpool.test.Echo is NOT_SERVING');
});
