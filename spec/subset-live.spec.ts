// Subsetting against real grpc-js backends, connections counted by the servers, on both
// paths: a client with `subset: {size: 2}` over 6 backends connects to 2 of them; when one
// of its 2 dies, a third backend gets its connections and the calls go on.
import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { createPool, silentLogger } from '../lib/index.js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import type { Backend } from '../testkit/echo/backend.js';
import { callEcho, EchoClient, startBackend } from '../testkit/tap-backend.js';
import { waitFor } from '../testkit/tap-etcd.js';

registerAnchorpool({ logger: silentLogger });

async function connectionsPerBackend(backends: readonly Backend[]): Promise<number[]> {
  return Promise.all(backends.map(async (b) => (b.port === 0 ? 0 : (await b.stats().catch(() => ({ connections: [] }))).connections.length)));
}

async function run(t: Test, path: 'pool' | 'native'): Promise<void> {
  const backends: Backend[] = [];
  for (let i = 0; i < 6; i++) backends.push(await startBackend(t, { name: `b${i}` }));
  const target = `pass:///${backends.map((b) => `${b.address}#2`).join(',')}`;
  const subset = { size: 2, clientId: `subset-live-${path}` };
  let echo: EchoClient;
  if (path === 'pool') {
    const pool = createPool({ target, logger: silentLogger, subset });
    t.teardown(() => pool.close());
    echo = pool.client(EchoClient);
  } else {
    echo = new EchoClient(target, grpc.credentials.createInsecure(), {
      'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ anchored_round_robin: { subset } }] }),
      'grpc.use_local_subchannel_pool': 1,
    });
    t.teardown(() => echo.close());
  }
  await callEcho(echo);
  const counts = await waitFor(async () => {
    const c = await connectionsPerBackend(backends);
    return c.filter((n) => n > 0).length === 2 && c.reduce((a, b) => a + b, 0) === 4 ? c : false;
  }, { what: `${path}: 2 backends with 2 connections each` });
  t.same([...counts].sort(), [0, 0, 0, 0, 2, 2], `${path}: the servers count 2 + 2 connections, on 2 of the 6 backends`);
  const chosen = counts.flatMap((n, i) => (n > 0 ? [i] : []));
  await backends[chosen[0]!]!.kill();
  const after = await waitFor(async () => {
    const c = await connectionsPerBackend(backends);
    return c.filter((n) => n > 0).length === 2 && c[chosen[0]!] === 0 && c.reduce((a, b) => a + b, 0) === 4 ? c : false;
  }, { what: `${path}: a third backend connected after one of the two died`, timeoutMs: 15_000 });
  t.equal(after[chosen[1]!], 2, `${path}: the surviving backend keeps its 2 connections`);
  t.equal(after.filter((n) => n === 2).length, 2, `${path}: another backend took the dead one's place (${after.join(' ')})`);
  let failed = 0;
  for (let i = 0; i < 20; i++) await callEcho(echo).catch(() => (failed += 1));
  t.equal(failed, 0, `${path}: calls go on`);
}

t.test('pool: subset of 2 over 6 backends, widened when one dies', async (t) => run(t, 'pool'));
t.test('anchored_round_robin: subset of 2 over 6 backends, widened when one dies', async (t) => run(t, 'native'));
