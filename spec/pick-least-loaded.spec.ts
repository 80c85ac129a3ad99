// pick: 'least-loaded' against real backends of uneven speed: one answers in 5 ms, the
// other in 100 ms. Under 16 closed-loop callers round robin gives each half the calls
// (the slow one holds its callers); the power of two choices sends far fewer to the slow
// one, on the pool (leases) and on the native policy (calls in flight per subchannel).
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import { silentLogger } from '../lib/core/logger.js';
import { createPool } from '../lib/pool/pool.js';
import { callEcho, EchoClient, startBackend, type Backend } from '../testkit/tap-backend.js';

registerAnchorpool({ logger: silentLogger });

async function shareOfSlow(t: Test, stub: grpc.Client, fast: Backend, slow: Backend): Promise<{ slow: number; calls: number }> {
  await Promise.all([fast.resetStats(), slow.resetStats()]);
  const end = performance.now() + 1500;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (performance.now() < end) await callEcho(stub, 3000);
    }),
  );
  const [f, s] = [(await fast.stats()).calls, (await slow.stats()).calls];
  t.ok(f + s > 0);
  return { slow: s / (f + s), calls: f + s };
}

t.test('pool: least-loaded sends the slow backend far fewer calls than round robin', async (t) => {
  const fast = await startBackend(t, { name: 'fast', delayMillis: 5 });
  const slow = await startBackend(t, { name: 'slow', delayMillis: 100 });
  const target = `pass:///${fast.address},${slow.address}`;
  const rr = createPool({ target, logger: silentLogger });
  const ll = createPool({ target, logger: silentLogger, pick: 'least-loaded' });
  t.teardown(() => Promise.all([rr.close(), ll.close()]));
  await Promise.all([rr.ready(), ll.ready()]);
  const roundRobin = await shareOfSlow(t, rr.client(EchoClient), fast, slow);
  const leastLoaded = await shareOfSlow(t, ll.client(EchoClient), fast, slow);
  t.ok(roundRobin.slow > 0.4, `round robin: slow served ${(roundRobin.slow * 100).toFixed(1)}% of ${roundRobin.calls} calls`);
  t.ok(leastLoaded.slow < 0.2, `least-loaded: slow served ${(leastLoaded.slow * 100).toFixed(1)}% of ${leastLoaded.calls} calls`);
  t.ok(leastLoaded.calls > roundRobin.calls * 1.5, `and more calls in all: ${leastLoaded.calls} vs ${roundRobin.calls}`);
  t.throws(() => createPool({ target, pick: 'fastest' as 'round-robin' }), { code: 'ANCHORPOOL_CONFIG', message: /pick/ });
});

t.test('native policy: {"pick":"least-loaded"} does the same with calls in flight per subchannel', async (t) => {
  const fast = await startBackend(t, { name: 'fast', delayMillis: 5 });
  const slow = await startBackend(t, { name: 'slow', delayMillis: 100 });
  const target = `pass:///${fast.address},${slow.address}`;
  const config = (pick: string) => ({ 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { pick } }] }) });
  const rr = new EchoClient(target, grpc.credentials.createInsecure(), config('round-robin'));
  const ll = new EchoClient(target, grpc.credentials.createInsecure(), { ...config('least-loaded'), 'grpc.use_local_subchannel_pool': 1 });
  t.teardown(() => (rr.close(), ll.close()));
  await Promise.all([callEcho(rr, 5000), callEcho(ll, 5000)]);
  const roundRobin = await shareOfSlow(t, rr, fast, slow);
  const leastLoaded = await shareOfSlow(t, ll, fast, slow);
  t.ok(roundRobin.slow > 0.4, `round robin: slow served ${(roundRobin.slow * 100).toFixed(1)}% of ${roundRobin.calls} calls`);
  t.ok(leastLoaded.slow < 0.2, `least-loaded: slow served ${(leastLoaded.slow * 100).toFixed(1)}% of ${leastLoaded.calls} calls`);
});
