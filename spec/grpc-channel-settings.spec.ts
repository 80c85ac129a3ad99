// What a grpc-js channel on etcd:/// or pass:/// takes from registerAnchorpool() and from
// its own service config: each channel keeps the settings in force when it was made (a
// later registerAnchorpool() changes only later channels), channels share an etcd watch
// only when their target and settings are equal, and a top-level healthCheckConfig in
// the channel's own service config turns health checks on. Real etcd, real backends.
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import { sharedSourceCount } from '../lib/native/resolver.js';
import { silentLogger } from '../lib/core/logger.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { callEcho, callsBy, echoClient, startBackend } from '../testkit/tap-backend.js';
import { capturingLogger } from '../testkit/tap-source.js';

t.test('a channel keeps the etcd cluster it was made with; a later registerAnchorpool() moves only later channels', async (t) => {
  const clusterA = await startEtcd(t);
  const clusterB = await startEtcd(t);
  const onA = await startBackend(t, { name: 'on-a' });
  const onB = await startBackend(t, { name: 'on-b' });
  await etcdctl(clusterA, 'put', 'svc/x', onA.address);
  await etcdctl(clusterB, 'put', 'svc/x', onB.address);

  registerAnchorpool({ etcd: { hosts: clusterA.hosts }, logger: silentLogger });
  const first = echoClient(t, 'etcd:///svc/');
  t.same([...(await callsBy(first, 20))], [['on-a', 20]], 'the first channel reads cluster A');

  registerAnchorpool({ etcd: { hosts: clusterB.hosts }, logger: silentLogger });
  const second = echoClient(t, 'etcd:///svc/');
  t.same([...(await callsBy(second, 20))], [['on-b', 20]], 'a channel made after the second call reads cluster B: 20 of 20 calls on B');
  t.same([...(await callsBy(first, 20))], [['on-a', 20]], 'the first channel still reads cluster A');
  t.equal(sharedSourceCount(), 2, 'two sources: the settings differ');

  registerAnchorpool({ etcd: { hosts: clusterB.hosts }, logger: silentLogger });
  const third = echoClient(t, 'etcd:///svc/');
  t.same([...(await callsBy(third, 5))], [['on-b', 5]]);
  t.equal(sharedSourceCount(), 2, 'equal settings share the source of the second channel');
});

t.test('a channel keeps its ready timeout and its logger', async (t) => {
  const deadEtcd = ['127.0.0.1:9']; // discard port: nothing answers etcd there
  const first = capturingLogger();
  registerAnchorpool({ etcd: { hosts: deadEtcd, dialTimeoutMillis: 200 }, readyTimeoutMillis: 300, logger: first });
  const quick = echoClient(t, 'etcd:///nowhere/');
  registerAnchorpool({ etcd: { hosts: deadEtcd, dialTimeoutMillis: 200 }, readyTimeoutMillis: 60_000, logger: capturingLogger() });
  const started = performance.now();
  await t.rejects(callEcho(quick, 10_000), { code: grpc.status.UNAVAILABLE }, 'the first channel gives up after its own 300 ms');
  const took = performance.now() - started;
  t.ok(took < 5000, `UNAVAILABLE after ${took.toFixed(0)} ms, not the later call's 60 s`);
});

t.test("a top-level healthCheckConfig in the channel's own service config turns health checks on", async (t) => {
  registerAnchorpool({ logger: silentLogger });
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  const c = await startBackend(t, { name: 'c' });
  await c.setHealth('NOT_SERVING');
  const serviceConfig = { loadBalancingConfig: [{ anchored_round_robin: {} }], healthCheckConfig: { serviceName: '' } };
  const echo = echoClient(t, `pass:///${a.address}#2,${b.address},${c.address}`, { 'grpc.service_config': JSON.stringify(serviceConfig) });
  await callEcho(echo, 5000);
  const by = await callsBy(echo, 300);
  t.equal(by.get('c') ?? 0, 0, 'the NOT_SERVING backend got 0 of 300 calls');
  t.equal((by.get('a') ?? 0) + (by.get('b') ?? 0), 300);
});

t.test("the policy's own healthCheck wins over a top-level healthCheckConfig", async (t) => {
  registerAnchorpool({ logger: silentLogger });
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  await b.setHealth('NOT_SERVING'); // the whole server; its Echo service stays SERVING
  const serviceConfig = {
    loadBalancingConfig: [{ anchored_round_robin: { healthCheck: { serviceName: 'anchorpool.test.Echo' } } }],
    healthCheckConfig: { serviceName: '' },
  };
  const echo = echoClient(t, `pass:///${a.address},${b.address}`, { 'grpc.service_config': JSON.stringify(serviceConfig) });
  await callEcho(echo, 5000);
  await waitFor(async () => (await callsBy(echo, 10)).has('b'), { what: 'b in rotation', timeoutMs: 5000 });
  t.pass("b takes calls: the policy asks for anchorpool.test.Echo, which is SERVING, not for '' (NOT_SERVING)");
});

t.test('a backend without a health service is warned about once per channel, as once per pool', async (t) => {
  const logger = capturingLogger();
  registerAnchorpool({ healthCheck: {}, logger });
  const plain = await startBackend(t, { name: 'plain', healthService: false });
  const warnings = () => logger.lines.filter((l) => l.level === 'warn' && l.message.includes(plain.address)).length;
  const one = echoClient(t, `pass:///${plain.address}#3`);
  await callsBy(one, 5);
  await waitFor(() => warnings() === 1, { what: 'the first channel warns' });
  const two = echoClient(t, `pass:///${plain.address}#2`, { 'grpc.use_local_subchannel_pool': 1 });
  await callsBy(two, 5);
  await waitFor(() => warnings() === 2, { what: 'the second channel warns too' });
  await callsBy(one, 5);
  await callsBy(two, 5);
  t.equal(warnings(), 2, 'one warning per channel, whatever the number of its anchors');
});
