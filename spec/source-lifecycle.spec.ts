// The lifecycle of both sources (static and etcd), on the shared Lifecycle and emitSafely:
// one close() promise for every caller, pending ready() calls settled by close(), and a
// throwing listener that neither disappears nor stops the source.
import t from 'tap';
import { createSource } from '../lib/discovery/create-source.js';
import { PoolClosedError } from '../lib/core/errors.js';
import { startEtcd } from '../testkit/tap-etcd.js';
import { runFixture } from './support/fixture-process.js';

const cluster = await startEtcd(t);
const hosts = cluster.hosts;

const targets = {
  static: () => createSource({ target: 'pass:///10.0.0.1:50051' }),
  etcd: () => createSource({ target: 'etcd:///lifecycle/', etcd: { hosts } }),
};

for (const [kind, make] of Object.entries(targets)) {
  t.test(`${kind}: a second close() is the first one's promise and settles only after its shutdown`, async (t) => {
    const source = make();
    await source.ready({ timeoutMillis: 10_000 });
    const first = source.close();
    const second = source.close();
    t.equal(second, first, 'the same promise');
    const order: string[] = [];
    void first.then(() => order.push('first'));
    void second.then(() => order.push('second'));
    await Promise.all([first, second]);
    t.same(order, ['first', 'second'], 'the second close() did not resolve before the first had finished');
    t.equal(source.close(), first, 'a close() after it finished is the same promise too');
  });

  t.test(`${kind}: close() rejects a pending ready() at once with PoolClosedError`, async (t) => {
    const source = make();
    const ready = source.ready({ timeoutMillis: 60_000 });
    const closed = source.close();
    await t.rejects(ready, PoolClosedError);
    await closed;
    await t.rejects(source.ready(), PoolClosedError, 'ready() after close()');
  });
}

t.test('a throwing change listener is rethrown on a later tick: the process dies of it', async (t) => {
  const { code, output } = await runFixture('source-close-exits', { ETCD_HOSTS: hosts.join(','), MODE: 'listener-throws' });
  t.match(output, /second listener got a snapshot change/, 'the other listener got the event first');
  t.match(output, /Error: listener boom/, "the listener's error is printed");
  t.not(code, 0, 'the process died of the uncaught error');
  t.notMatch(output, /closed/, 'it did not run on as if nothing happened');
});

t.test('a throwing change listener does not stop the source: later events still arrive', async (t) => {
  const { code, output } = await runFixture('source-close-exits', { ETCD_HOSTS: hosts.join(','), MODE: 'listener-throws-handled' });
  t.equal(code, 0, output);
  t.equal(output.match(/uncaught: listener boom/g)?.length, 2, 'rethrown once per change (snapshot, later put)');
  t.match(output, /later change arrived/);
  t.match(output, /closed/);
});

t.test('ready({ signal }) on a source rejects at once with AcquireAbortedError, the reason as cause', async (t) => {
  const source = createSource({ target: 'etcd:///lifecycle/', etcd: { hosts: ['127.0.0.1:1'], retryMaxMillis: 200 } });
  t.teardown(() => source.close());
  const abort = new AbortController();
  const pending = source.ready({ timeoutMillis: 5000, signal: abort.signal });
  const startedAt = performance.now();
  abort.abort(new Error('no longer needed'));
  const error = await pending.then(
    () => undefined,
    (e: unknown) => e as Error & { code?: string },
  );
  t.equal(error?.code, 'ANCHORPOOL_ACQUIRE_ABORTED', `typed (got ${String(error)})`);
  t.equal((error?.cause as Error | undefined)?.message, 'no longer needed', 'the abort reason is the cause');
  t.ok(performance.now() - startedAt < 500, 'at once');
});
