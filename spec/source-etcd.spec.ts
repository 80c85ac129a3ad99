// The etcd source against a real single-node etcd: etcdctl put/del, the three value
// forms, invalid values, prefix boundaries, 10,000 keys and a 10,000-put burst.
import t, { type Test } from 'tap';
import { createSource } from '../lib/discovery/create-source.js';
import type { EndpointChange } from '../lib/discovery/source.js';
import type { InvalidEndpoint } from '../lib/discovery/desired-state.js';
import { etcdctl, startEtcd, waitFor } from '../testkit/tap-etcd.js';
import { capturingLogger, converge, directClient, putMany, sourceView } from '../testkit/tap-source.js';

const cluster = await startEtcd(t);
const hosts = cluster.hosts;
const direct = directClient(t, hosts);

function newSource(t: Test, target: string, extra: Record<string, unknown> = {}) {
  const logger = capturingLogger();
  const source = createSource({ target, etcd: { hosts }, logger, ...extra });
  t.teardown(() => source.close());
  return { source, logger };
}

t.test('a backend added with etcdctl put appears, and etcdctl del removes it', async (t) => {
  const { source } = newSource(t, 'etcd:///services/echo/');
  const changes: EndpointChange[] = [];
  source.on('change', (c) => changes.push(c));
  await source.ready();
  t.equal(source.snapshot().endpoints.size, 0, 'empty prefix, empty state');

  await etcdctl(cluster, 'put', 'services/echo/b1', '{"addr":"10.0.0.5:50051","anchors":4}');
  await waitFor(() => source.snapshot().endpoints.has('services/echo/b1'), { what: 'b1 to appear' });
  t.match(source.snapshot().endpoints.get('services/echo/b1'), { addr: '10.0.0.5:50051', anchors: 4, format: 'json' });
  t.match(changes.at(-1), { cause: 'watch', added: [{ key: 'services/echo/b1' }], removed: [] });

  await etcdctl(cluster, 'del', 'services/echo/b1');
  await waitFor(() => !source.snapshot().endpoints.has('services/echo/b1'), { what: 'b1 to disappear' });
  t.match(changes.at(-1), { cause: 'watch', added: [], removed: [{ key: 'services/echo/b1', addr: '10.0.0.5:50051' }] });
  t.match(source.status(), { connected: true, ready: true, endpoints: 0 });
});

t.test('the three value forms, written with etcdctl, parse', async (t) => {
  await etcdctl(cluster, 'put', 'forms/native', '{"addr":"10.0.0.5:50051","anchors":4}');
  // Byte for byte what Go's endpoints.Manager.AddEndpoint writes (json.Marshal of internal.Update).
  await etcdctl(cluster, 'put', 'forms/go', '{"Op":0,"Addr":"10.0.0.6:50051","Metadata":null}');
  await etcdctl(cluster, 'put', 'forms/go-anchors', '{"Op":0,"Addr":"10.0.0.7:50051","Metadata":{"anchors":3}}');
  await etcdctl(cluster, 'put', 'forms/text', '10.0.0.8:50051#2');
  const { source } = newSource(t, 'etcd:///forms/#5');
  const { endpoints, invalid } = await source.ready();
  t.equal(invalid.size, 0);
  t.same(
    Object.fromEntries([...endpoints].map(([k, e]) => [k, [e.addr, e.anchors, e.format]])),
    {
      'forms/native': ['10.0.0.5:50051', 4, 'json'],
      'forms/go': ['10.0.0.6:50051', 5, 'go'],
      'forms/go-anchors': ['10.0.0.7:50051', 3, 'go'],
      'forms/text': ['10.0.0.8:50051', 2, 'text'],
    },
    'Go values without metadata anchors take the #5 default of the target',
  );
});

t.test('invalid values: reported with key and reason, the last good value kept, other keys untouched', async (t) => {
  await etcdctl(cluster, 'put', 'bad/good', '10.0.0.1:1#2');
  await etcdctl(cluster, 'put', 'bad/victim', '{"addr":"10.0.0.2:2","anchors":3}');
  const { source, logger } = newSource(t, 'etcd:///bad/');
  const invalids: InvalidEndpoint[] = [];
  source.on('invalid', (r) => invalids.push(r));
  await source.ready();

  const badValues = [
    'not an address',
    '{"addr":"10.0.0.2:2","anchors":0}',
    '{"addr":"10.0.0.2:2","anchors":-1}',
    '{"addr":"10.0.0.2:2","anchors":2.5}',
    '{"addr":"10.0.0.2:2","anchors":100000}',
    '{"addr":"10.0.0.2:0"}',
    '{"addr":"10.0.0.2:65536"}',
    '{"addr":"::1:80"}',
    '{"addr":42}',
    '{"Addr":"10.0.0.2:2","Metadata":{"anchors":"many"}}',
    '{"addr":',
    '[1,2,3]',
    `{"addr":"10.0.0.2:2","metadata":"${'x'.repeat(70 * 1024)}"}`,
  ];
  for (const value of badValues) {
    await etcdctl(cluster, 'put', 'bad/victim', value);
  }
  await etcdctl(cluster, 'put', 'bad/newcomer', 'garbage');
  await waitFor(() => invalids.length >= badValues.length + 1, { what: 'every invalid value to be reported' });

  t.equal(invalids.length, badValues.length + 1, 'one report per invalid value');
  for (const record of invalids) {
    t.ok(record.reason.length > 0, `${record.key}: ${record.reason.slice(0, 80)}`);
  }
  t.match(invalids.at(-2), { key: 'bad/victim', keptPrevious: true, reason: /over the limit/ });
  t.match(invalids.at(-1), { key: 'bad/newcomer', keptPrevious: false });
  const view = sourceView(source);
  t.equal(view.get('bad/victim'), '10.0.0.2:2#3', 'the victim keeps its last valid value');
  t.equal(view.get('bad/good'), '10.0.0.1:1#2', 'the other key is untouched');
  t.notOk(view.has('bad/newcomer'), 'a new key with an invalid value is not added');
  t.same([...source.snapshot().invalid.keys()].sort(), ['bad/newcomer', 'bad/victim'], 'invalid keys are visible in the state');
  t.match(source.status(), { invalid: 2, endpoints: 2, connected: true });
  const warnings = logger.lines.filter((l) => l.level === 'warn' && l.fields['key'] === 'bad/victim');
  t.equal(warnings.length, badValues.length, 'a log line per invalid value carries the key');
  t.match(warnings[1]?.message, /bad\/victim.*anchors: must be between 1 and 64/);

  await etcdctl(cluster, 'put', 'bad/victim', '10.0.0.3:3');
  await waitFor(() => sourceView(source).get('bad/victim') === '10.0.0.3:3#1', { what: 'victim to recover' });
  t.notOk(source.snapshot().invalid.has('bad/victim'), 'a valid value clears the invalid mark');
  await etcdctl(cluster, 'del', 'bad/newcomer');
  await waitFor(() => !source.snapshot().invalid.has('bad/newcomer'), { what: 'deleted invalid key to clear' });
  t.pass('deleting an invalid key removes it from the state');
});

t.test('a zone in a value: a bad one is reported with its reason, and the key keeps its last valid zone', async (t) => {
  await etcdctl(cluster, 'put', 'zoned/k', '{"addr":"10.0.0.7:7","anchors":2,"zone":"eu-west-1a"}');
  const { source } = newSource(t, 'etcd:///zoned/');
  const invalids: InvalidEndpoint[] = [];
  source.on('invalid', (r) => invalids.push(r));
  await source.ready();
  t.equal(source.snapshot().endpoints.get('zoned/k')?.zone, 'eu-west-1a');
  await etcdctl(cluster, 'put', 'zoned/k', '{"addr":"10.0.0.7:7","anchors":2,"zone":"eu west"}');
  await waitFor(() => invalids.length === 1, { what: 'the bad zone to be reported' });
  t.match(invalids[0], { key: 'zoned/k', keptPrevious: true, reason: /zone: must be 1 to 128 characters/ });
  t.equal(source.snapshot().endpoints.get('zoned/k')?.zone, 'eu-west-1a', 'the last valid zone is kept');
  await etcdctl(cluster, 'put', 'zoned/k', '10.0.0.7:7#2@eu-west-1b');
  await waitFor(() => source.snapshot().endpoints.get('zoned/k')?.zone === 'eu-west-1b', { what: 'the text form\'s zone' });
  t.pass('a valid text value moves it to eu-west-1b');
});

t.test('the prefix svc/echo/ does not pick up svc/echo_other/, with or without the trailing slash', async (t) => {
  await etcdctl(cluster, 'put', 'svc/echo/a', '10.0.0.1:1');
  await etcdctl(cluster, 'put', 'svc/echo_other/x', '10.0.0.9:9');
  await etcdctl(cluster, 'put', 'svc/echoes', '10.0.0.9:9');
  for (const target of ['etcd:///svc/echo/', 'etcd:///svc/echo']) {
    const { source } = newSource(t, target);
    await source.ready();
    await etcdctl(cluster, 'put', 'svc/echo_other/y', '10.0.0.9:9');
    await etcdctl(cluster, 'put', 'svc/echo/b', '10.0.0.2:2');
    await waitFor(() => source.snapshot().endpoints.has('svc/echo/b'), { what: 'svc/echo/b' });
    t.same([...source.snapshot().endpoints.keys()].sort(), ['svc/echo/a', 'svc/echo/b'], target);
    await etcdctl(cluster, 'del', 'svc/echo/b');
    await waitFor(() => !source.snapshot().endpoints.has('svc/echo/b'), { what: 'svc/echo/b gone' });
  }
});

t.test('a prefix with a leading slash: etcd:////services/echo/', async (t) => {
  await etcdctl(cluster, 'put', '/services/echo/a', '10.0.0.1:1');
  await etcdctl(cluster, 'put', 'services/echo/not-me', '10.0.0.2:2');
  const { source } = newSource(t, 'etcd:////services/echo/');
  const { endpoints } = await source.ready();
  t.same([...endpoints.keys()], ['/services/echo/a']);
});

t.test('10,000 keys load, and a burst of 10,000 puts is fully applied', async (t) => {
  const prefix = 'big/';
  const key = (i: number) => `${prefix}k${String(i).padStart(5, '0')}`;
  const inParallel = async (indices: number[], write: (i: number) => Promise<unknown>) => {
    const queue = [...indices];
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) await write(i);
      }),
    );
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  // The setup in transactions (a second, not 4 of single puts): the listing is what is tested here.
  await putMany(direct, range(0, 10_000).map((i) => [key(i), `10.0.${i >> 8}.${i & 255}:50051`] as const));
  const { source } = newSource(t, `etcd:///${prefix}`);
  const startedAt = performance.now();
  const { endpoints } = await source.ready({ timeoutMillis: 30_000 });
  t.comment(`snapshot of 10,000 keys applied in ${(performance.now() - startedAt).toFixed(0)} ms`);
  t.equal(endpoints.size, 10_000, 'all 10,000 keys are loaded');

  // The burst: rewrite all 10,000 with 2 anchors, delete every tenth, add 1,000 new ones.
  await inParallel(range(0, 10_000), async (i) => { await direct.put(key(i)).value(`10.0.${i >> 8}.${i & 255}:50051#2`); });
  await inParallel(range(0, 1000), async (i) => { await direct.delete().key(key(i * 10)); });
  await inParallel(range(10_000, 11_000), async (i) => { await direct.put(key(i)).value(`10.1.${i >> 8}.${i & 255}:50051`); });
  const diff = await converge(source, direct, prefix, 60_000);
  t.same(diff, { lost: [], phantom: [], stale: [] }, 'the source equals etcd after the burst');
  t.equal(source.status().resyncs, 0, 'the burst was applied from the watch, without a resync');
});
