/**
 * The one way to wait for something that another part of the library reports (a lease,
 * a READY anchor, a first snapshot) with a timeout, an optional AbortSignal and the
 * owner's Lifecycle: the broker's acquire() waiters and both ready()s use it.
 *
 *   deadlineWait(lifecycle, options, start) ──► Promise<T>
 *
 * Contract:
 *   - Rejects at once, without calling `start`, with `aborted(signal.reason)` when the
 *     signal is already aborted, else with `closed()` when the lifecycle is closing.
 *   - Otherwise calls `start(wait)` synchronously. The caller puts `wait` where the thing
 *     it waits for is reported, and returns the function that takes it out again.
 *   - Settles once, with the first of: `wait.resolve(value)` / `wait.reject(error)` (the
 *     caller's report, from inside `start` too); `timedOut()` once `timeoutMillis` have
 *     passed; `aborted(reason)` when the signal aborts; `closed()` when close() begins
 *     (held with Lifecycle.hold()). Later calls are no-ops; `wait.settled` tells.
 *   - Cleanup runs exactly once on every exit, before anything awaiting the promise runs:
 *     the timer is cleared, the abort listener removed, the hold released, and the
 *     function `start` returned is called. Nothing of the wait is left behind.
 *   - The errors are the caller's (its factories build them); the helper throws none.
 *   - The timer is ref'd on purpose: a caller awaiting the wait must not see Node exit
 *     under it (every other timer of the library is unref'd). A timeout beyond Node's
 *     timer limit is waited in steps of MAX_TIMER_MILLIS, never cut short; Infinity
 *     never times out.
 *   - `timedOut()` may return undefined: the time is up, but something else is due to end
 *     the wait (pool.ready() leaves it to the source's own timeout). No timer remains.
 */
import type { Lifecycle } from './lifecycle.js';
import { MAX_TIMER_MILLIS } from './timer-limit.js';

export interface DeadlineWaitOptions {
  /** How long to wait; beyond MAX_TIMER_MILLIS (Infinity included) the wait goes on in steps. */
  readonly timeoutMillis: number;
  readonly signal?: AbortSignal | undefined;
  /** The error a timed-out wait rejects with (undefined: keep waiting, without a timer). */
  timedOut(): Error | undefined;
  /** The error an aborted wait rejects with. */
  aborted(reason: unknown): Error;
  /** The error the wait rejects with when the lifecycle closes. */
  closed(): Error;
}

/** A wait in progress, as the caller sees it. */
export interface Wait<T> {
  /** Resolved, rejected, timed out, aborted or closed. */
  readonly settled: boolean;
  resolve(value: T): void;
  reject(error: Error): void;
}

export function deadlineWait<T>(lifecycle: Lifecycle, options: DeadlineWaitOptions, start: (wait: Wait<T>) => () => void): Promise<T> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(options.aborted(signal.reason));
  if (lifecycle.closing) return Promise.reject(options.closed());
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let unhold: (() => void) | undefined;
    let unregister: (() => void) | undefined;
    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      unhold?.();
      unregister?.();
    };
    const wait: Wait<T> = {
      get settled() {
        return settled;
      },
      resolve(value) {
        if (settled) return;
        cleanup();
        resolve(value);
      },
      reject(error) {
        if (settled) return;
        cleanup();
        reject(error);
      },
    };
    const onAbort = (): void => wait.reject(options.aborted(signal?.reason));
    const timeUp = (): void => {
      timer = undefined;
      const error = options.timedOut();
      if (error !== undefined) wait.reject(error);
    };
    // `!(<=)` also sends NaN here: a timeout that is not a number never fires.
    const arm = (millis: number): void => {
      timer = !(millis <= MAX_TIMER_MILLIS)
        ? setTimeout(() => arm(millis - MAX_TIMER_MILLIS), MAX_TIMER_MILLIS)
        : setTimeout(timeUp, millis);
    };
    const stop = start(wait);
    if (settled) return stop();
    unregister = stop;
    arm(options.timeoutMillis);
    signal?.addEventListener('abort', onAbort, { once: true });
    unhold = lifecycle.hold(() => wait.reject(options.closed()));
  });
}
