import t from 'tap';
import { createSource } from '../lib/discovery/create-source.js';
import type { EndpointChange } from '../lib/discovery/source.js';

t.test('pass:/// gives a fixed list of entries, ready without etcd', async (t) => {
  const source = createSource({ target: 'pass:///127.0.0.1:50051#2,127.0.0.1:50052,127.0.0.1:50051' });
  t.teardown(() => source.close());
  const changes: EndpointChange[] = [];
  source.on('change', (c) => changes.push(c));
  source.start();
  t.equal(changes.length, 0, 'no event is emitted synchronously from start()');
  const snapshot = await source.ready();
  t.same(
    [...snapshot.endpoints.values()].map((e) => [e.key, e.addr, e.anchors]),
    [
      ['static/0', '127.0.0.1:50051', 2],
      ['static/1', '127.0.0.1:50052', 1],
      ['static/2', '127.0.0.1:50051', 1],
    ],
    'the same address listed twice is two entries',
  );
  t.equal(changes.length, 1);
  t.equal(changes[0]?.cause, 'snapshot');
  t.equal(changes[0]?.added.length, 3);
  t.match(source.status(), { kind: 'static', ready: true, connected: true, endpoints: 3 });
});

t.test('ready() after close() rejects with a typed error', async (t) => {
  const source = createSource({ target: 'pass:///h:1' });
  await source.close();
  await t.rejects(source.ready(), { code: 'ANCHORPOOL_CLOSED' });
  await source.close();
  t.pass('close() is idempotent');
});

t.test('pass:/// entries carry their zone into the snapshot and the status target', async (t) => {
  const source = createSource({ target: 'pass:///127.0.0.1:5001#2@a,127.0.0.1:5002@b,127.0.0.1:5003#1-3' });
  t.teardown(() => source.close());
  source.start();
  const snapshot = await source.ready();
  t.same(
    [...snapshot.endpoints.values()].map((e) => [e.key, e.addr, e.anchors, e.maxAnchors, e.zone]),
    [
      ['static/0', '127.0.0.1:5001', 2, undefined, 'a'],
      ['static/1', '127.0.0.1:5002', 1, undefined, 'b'],
      ['static/2', '127.0.0.1:5003', 1, 3, undefined],
    ],
  );
  t.notOk('zone' in snapshot.endpoints.get('static/2')!, 'an entry without a zone has no zone field');
  t.equal(source.status().target, 'pass:///127.0.0.1:5001#2@a,127.0.0.1:5002#1@b,127.0.0.1:5003#1-3', 'the status target names the zones');
});
