// emitSafely, the one emit of the pool, the sources and a registration: every listener
// gets the event, a throwing one is rethrown on a later tick, once() listeners go away,
// errorMonitor sees an 'error' first, and an 'error' nobody listens to is not emitted.
import t from 'tap';
import { EventEmitter, errorMonitor } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { emitSafely } from '../lib/core/emit-safely.js';

t.test('every listener gets the event, in order, even after one throws; the throw surfaces on a later tick', async (t) => {
  const uncaught: unknown[] = [];
  process.setUncaughtExceptionCaptureCallback((error) => uncaught.push(error));
  t.teardown(() => process.setUncaughtExceptionCaptureCallback(null));
  const emitter = new EventEmitter();
  const seen: string[] = [];
  emitter.on('x', (v) => seen.push(`a:${v}`));
  emitter.on('x', () => {
    throw new Error('b failed');
  });
  emitter.once('x', (v) => seen.push(`c:${v}`));
  emitSafely(emitter, 'x', 1);
  t.same(seen, ['a:1', 'c:1'], 'a and c got it although b threw');
  t.same(uncaught, [], 'nothing thrown synchronously into the emitter');
  await sleep(0);
  t.match(uncaught, [{ message: 'b failed' }], 'rethrown on a later tick');
  emitSafely(emitter, 'x', 2);
  t.same(seen, ['a:1', 'c:1', 'a:2'], 'the once() listener was removed');
  await sleep(0);
});

t.test("'error': errorMonitor first; not emitted at all without an 'error' listener", async (t) => {
  const emitter = new EventEmitter();
  const seen: string[] = [];
  emitter.on(errorMonitor, () => seen.push('monitor'));
  t.doesNotThrow(() => emitSafely(emitter, 'error', new Error('e')), 'no error listener: not emitted, not thrown');
  t.same(seen, [], 'and the monitor saw nothing either (nothing was emitted)');
  emitter.on('error', () => seen.push('listener'));
  emitSafely(emitter, 'error', new Error('e'));
  t.same(seen, ['monitor', 'listener'], 'the monitor sees it before the listener, as with emit()');
});
