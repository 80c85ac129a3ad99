// Plain grpc-js clients on etcd:/// and pass:/// targets with the anchored_round_robin
// policy, against a real etcd (changed with etcdctl) and real backends counting their
// connections on the server side.
import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerAnchorpool } from '../lib/native/register-anchorpool.js';
import { AnchorResolver, ENTRIES_ATTRIBUTE, type ResolvedEntry } from '../lib/native/resolver.js';
import { silentLogger } from '../lib/core/logger.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { callEcho, echoClient, startBackend, type Backend } from '../testkit/tap-backend.js';

const cluster = await startEtcd(t);
registerAnchorpool({ etcd: { hosts: cluster.hosts }, logger: silentLogger });
async function connections(backend: Backend, count: number): Promise<number[]> {
  return waitFor(
    async () => {
      const { connections } = await backend.stats();
      return connections.length === count ? connections : false;
    },
    { timeoutMs: 15_000, what: `${count} connection(s) on ${backend.name}` },
  );
}

async function callsOf(...backends: Backend[]): Promise<number[]> {
  return Promise.all(backends.map(async (b) => (await b.stats()).calls));
}

t.test('a plain client on etcd:/// with anchors 3 and 1: 3 + 1 connections, calls split 3:1 exactly', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  await etcdctl(cluster, 'put', 'plain/a', JSON.stringify({ addr: a.address, anchors: 3 }));
  await etcdctl(cluster, 'put', 'plain/b', JSON.stringify({ addr: b.address, anchors: 1 }));
  const echo = echoClient(t, 'etcd:///plain/');
  await callEcho(echo);
  await connections(a, 3);
  await connections(b, 1);
  await sleep(100); // every subchannel READY in the picker
  const before = await callsOf(a, b);
  for (let i = 0; i < 400; i++) await callEcho(echo);
  const after = await callsOf(a, b);
  t.same([after[0]! - before[0]!, after[1]! - before[1]!], [300, 100], '400 calls split 300/100');
  t.equal((await a.stats()).connections.length, 3, 'a still holds exactly 3 connections');
});

t.test('etcdctl put of a new backend while calls run reaches it; etcdctl del stops it with no failed call', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const c = await startBackend(t, { name: 'c' });
  await etcdctl(cluster, 'put', 'live/a', `${a.address}#2`);
  const echo = echoClient(t, 'etcd:///live/');
  await callEcho(echo);
  let running = true;
  let failures = 0;
  let calls = 0;
  const seen: { server: string; at: number }[] = [];
  const load = (async () => {
    while (running) {
      try {
        const reply = await callEcho(echo);
        seen.push({ server: reply.server, at: Date.now() });
        calls += 1;
      } catch {
        failures += 1;
      }
    }
  })();
  await sleep(200);
  const putAt = Date.now();
  await etcdctl(cluster, 'put', 'live/c', `${c.address}#2`);
  const first = await waitFor(() => seen.find((s) => s.server === 'c'), { what: 'a call to reach c' });
  t.comment(`etcdctl put → first call on the new backend: ${first.at - putAt} ms (includes etcdctl's own start-up)`);
  await sleep(200);
  const delAt = Date.now();
  await etcdctl(cluster, 'del', 'live/c');
  await sleep(500);
  const cCallsAfterDel = (await c.stats()).calls;
  await sleep(500);
  t.equal((await c.stats()).calls, cCallsAfterDel, 'no call reaches c once its key is deleted');
  running = false;
  await load;
  const lastOnC = seen.filter((s) => s.server === 'c').at(-1)!;
  t.comment(`last call on c ${lastOnC.at - delAt} ms after etcdctl del started; ${calls} calls in all`);
  t.equal(failures, 0, 'no call failed while another backend was READY');
  await connections(c, 0);
});

t.test('N from 3 to 5 on a live key keeps the 3 existing connections', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  await etcdctl(cluster, 'put', 'grow/a', `${a.address}#3`);
  const echo = echoClient(t, 'etcd:///grow/');
  await callEcho(echo);
  const three = await connections(a, 3);
  await etcdctl(cluster, 'put', 'grow/a', `${a.address}#5`);
  const five = await connections(a, 5);
  t.same(five.filter((p) => three.includes(p)), three, 'same remote ports for the first 3');
  for (let i = 0; i < 10; i++) await callEcho(echo);
  t.equal((await a.stats()).connections.length, 5);
});

t.test('pass:/// works without etcd', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  const echo = echoClient(t, `pass:///${a.address}#2,${b.address}#1`);
  for (let i = 0; i < 30; i++) await callEcho(echo); // calls succeed while the connections come up
  await connections(a, 2);
  await connections(b, 1);
  // The first calls race the connections (on a busy machine 18/12 was seen), so the split
  // is counted over 30 calls made once all three are up.
  await sleep(100); // every subchannel READY in the picker
  await Promise.all([a.resetStats(), b.resetStats()]);
  for (let i = 0; i < 30; i++) await callEcho(echo);
  const [ca, cb] = await callsOf(a, b);
  t.ok(ca! >= 19 && ca! <= 21 && cb! >= 9 && cb! <= 11, `calls split about 2:1 (${ca}/${cb})`);
});

t.test('a channel left idle past its idle timeout, then used again, still follows etcd', async (t) => {
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  await etcdctl(cluster, 'put', 'idle/a', `${a.address}#1`);
  const echo = echoClient(t, 'etcd:///idle/', { 'grpc.client_idle_timeout_ms': 1000 });
  t.equal((await callEcho(echo)).server, 'a');
  await waitFor(() => echo.getChannel().getConnectivityState(false) === grpc.connectivityState.IDLE, {
    timeoutMs: 5000,
    what: 'the channel to go IDLE',
  });
  t.pass('the channel went IDLE (its resolver was destroyed)');
  await etcdctl(cluster, 'del', 'idle/a');
  await etcdctl(cluster, 'put', 'idle/b', `${b.address}#1`);
  t.equal((await callEcho(echo)).server, 'b', 'the first call after idle sees the new state');
  await etcdctl(cluster, 'put', 'idle/a', `${a.address}#1`);
  const servers = new Set<string>();
  await waitFor(
    async () => {
      servers.add((await callEcho(echo)).server);
      return servers.has('a');
    },
    { what: 'the restarted resolver to follow a later put' },
  );
  t.pass('and it keeps following etcd');
});

t.test('an empty prefix is an UNAVAILABLE error naming it, not a silent hang', async (t) => {
  const echo = echoClient(t, 'etcd:///nothing-here/');
  await t.rejects(callEcho(echo, 3000), { code: grpc.status.UNAVAILABLE, details: /no valid endpoints under etcd:\/\/\/nothing-here\// });
});

t.test("grpc-js's own round_robin with the same duplicated addresses shares ONE connection", async (t) => {
  const a = await startBackend(t, { name: 'a' });
  await etcdctl(cluster, 'put', 'rr/a', `${a.address}#3`);
  const rr = echoClient(t, 'etcd:///rr/', { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) });
  for (let i = 0; i < 9; i++) await callEcho(rr);
  await sleep(200);
  t.equal((await a.stats()).connections.length, 1, 'round_robin: 1 connection for 3 anchors (why anchored_round_robin exists)');
});

t.test('the resolver hands each entry its zone (pass:/// and etcd values); calls work on a zoned target', async (t) => {
  const resolve = async (path: string, scheme = 'pass') => {
    let resolved: ResolvedEntry[] | undefined;
    const reported = new Promise<void>((done) => {
      const resolver = new AnchorResolver(
        { scheme, authority: '', path },
        (_endpoints, attributes) => {
          resolved = attributes[ENTRIES_ATTRIBUTE] as ResolvedEntry[];
          done();
          return true;
        },
        {},
      );
      t.teardown(() => resolver.destroy());
      resolver.updateResolution();
    });
    await reported;
    return resolved!;
  };
  const fromTarget = await resolve('127.0.0.1:5001#2@a,127.0.0.1:5002@topology.kubernetes.io/zone,127.0.0.1:5003#1-3');
  t.same(
    fromTarget.map((e) => [e.addr, e.anchors, e.maxAnchors, e.zone]),
    [
      ['127.0.0.1:5001', 2, undefined, 'a'],
      ['127.0.0.1:5002', 1, undefined, 'topology.kubernetes.io/zone'],
      ['127.0.0.1:5003', 1, 3, undefined],
    ],
  );
  t.notOk('zone' in fromTarget[2]!, 'an entry without a zone has no zone field');

  await etcdctl(cluster, 'put', 'zoned/a', '{"Op":0,"Addr":"127.0.0.1:5004","Metadata":{"anchors":2,"zone":"eu-west-1a"}}');
  await etcdctl(cluster, 'put', 'zoned/b', '127.0.0.1:5005@eu-west-1b');
  const fromEtcd = await resolve('zoned/', 'etcd');
  t.same(fromEtcd.map((e) => [e.key, e.zone]), [['zoned/a', 'eu-west-1a'], ['zoned/b', 'eu-west-1b']]);

  t.equal(AnchorResolver.getDefaultAuthority({ scheme: 'pass', path: '127.0.0.1:5001@a,127.0.0.1:5002' }), '127.0.0.1:5001', 'the authority leaves the zone out');
  t.equal(AnchorResolver.getDefaultAuthority({ scheme: 'pass', path: '127.0.0.1:5001#2@a' }), '127.0.0.1:5001');
  const a = await startBackend(t, { name: 'a' });
  const b = await startBackend(t, { name: 'b' });
  const echo = echoClient(t, `pass:///${a.address}#2@a,${b.address}@b`);
  await callEcho(echo);
  await connections(a, 2);
  await connections(b, 1);
  await sleep(100); // every subchannel READY in the picker
  const before = await callsOf(a, b);
  for (let i = 0; i < 300; i++) await callEcho(echo);
  const after = await callsOf(a, b);
  t.same([after[0]! - before[0]!, after[1]! - before[1]!], [200, 100], 'a zoned pass:/// target: 2 + 1 anchors, calls split 200/100');
});
