/**
 * One safe emit for every emitter of anchorpool (pool, sources, registration).
 *
 * Every listener gets the event, even when an earlier one throws; the owner's state
 * stays consistent because the emit never throws into it. A listener's exception does
 * not disappear either: it is rethrown on a later tick, where it surfaces as an
 * uncaught exception exactly as a throwing listener of a plain EventEmitter would
 * (Node streams and etcd3 do the same).
 * An 'error' event nobody listens to is not emitted (the owner logs it instead), so a
 * library error never crashes a process that did not ask for error events.
 */
import { errorMonitor, type EventEmitter } from 'node:events';

export function emitSafely(emitter: EventEmitter, event: string, ...args: unknown[]): void {
  if (event === 'error' && emitter.listenerCount('error') === 0) return;
  // As emit() does: errorMonitor listeners see an 'error' before its listeners do.
  const monitors = event === 'error' ? emitter.rawListeners(errorMonitor) : [];
  // rawListeners: calling a once() wrapper removes it, as emit() would.
  for (const listener of [...monitors, ...emitter.rawListeners(event)] as ((...a: unknown[]) => unknown)[]) {
    try {
      listener.apply(emitter, args);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }
}
