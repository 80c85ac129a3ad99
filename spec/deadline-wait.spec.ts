// deadlineWait, the one wait behind acquire() waiters and both ready()s: it settles once
// (the caller's report, a timeout, an abort or close()), cleans up exactly once on every
// exit (timer, abort listener, lifecycle hold, the caller's own registration), holds the
// process only while it waits, and waits out timeouts beyond Node's timer limit in steps.
import t from 'tap';
import { getEventListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { deadlineWait, type DeadlineWaitOptions, type Wait } from '../lib/core/deadline-wait.js';
import { Lifecycle } from '../lib/core/lifecycle.js';
import { MAX_TIMER_MILLIS } from '../lib/core/timer-limit.js';

// Named, so that tap's rejects() tells them apart.
class TimedOut extends Error {
  override name = 'TimedOut';
}
class Aborted extends Error {
  override name = 'Aborted';
}
class Closed extends Error {
  override name = 'Closed';
}

/** Ref'd timers: what keeps the process alive. */
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/** A wait whose factories and registration count their calls. */
function track<T>(lifecycle: Lifecycle, options: Partial<DeadlineWaitOptions> = {}, onStart?: (wait: Wait<T>) => void) {
  const counts = { started: 0, unregistered: 0, timedOut: 0, aborted: 0, closed: 0 };
  let wait: Wait<T> | undefined;
  const promise = deadlineWait<T>(
    lifecycle,
    {
      timeoutMillis: 10_000,
      timedOut: () => {
        counts.timedOut += 1;
        return new TimedOut('time is up');
      },
      aborted: (reason) => {
        counts.aborted += 1;
        return new Aborted('aborted', { cause: reason });
      },
      closed: () => {
        counts.closed += 1;
        return new Closed('closed');
      },
      ...options,
    },
    (w) => {
      counts.started += 1;
      wait = w;
      onStart?.(w);
      return () => {
        counts.unregistered += 1;
      };
    },
  );
  const outcome: { value?: T; error?: unknown } = {};
  promise.then(
    (value) => (outcome.value = value),
    (error: unknown) => (outcome.error = error),
  );
  return { promise, counts, outcome, wait: () => wait! };
}

t.test('resolves with what the caller reports; cleans up once and leaves no timer, listener or hold', async (t) => {
  const lifecycle = new Lifecycle();
  const controller = new AbortController();
  const before = timers();
  const w = track<string>(lifecycle, { signal: controller.signal });
  t.equal(w.counts.started, 1, 'start() was called synchronously');
  t.ok(timers() > before, 'the waiting timer holds the process (ref\'d on purpose)');
  t.equal(getEventListeners(controller.signal, 'abort').length, 1, 'one abort listener while waiting');
  w.wait().resolve('lease');
  t.equal(await w.promise, 'lease');
  t.ok(w.wait().settled, 'settled');
  t.equal(w.counts.unregistered, 1, 'the caller\'s registration removed once');
  t.equal(timers(), before, 'no timer left');
  t.equal(getEventListeners(controller.signal, 'abort').length, 0, 'abort listener removed');
  w.wait().reject(new Error('late'));
  w.wait().resolve('late');
  controller.abort();
  await lifecycle.close(async () => undefined);
  await sleep(0);
  t.same(w.counts, { started: 1, unregistered: 1, timedOut: 0, aborted: 0, closed: 0 }, 'later reports, an abort and close() change nothing');
  t.same(w.outcome, { value: 'lease' });
});

t.test('times out with timedOut()\'s error after timeoutMillis, cleaning up once', async (t) => {
  const lifecycle = new Lifecycle();
  const before = timers();
  const started = performance.now();
  const w = track<string>(lifecycle, { timeoutMillis: 50 });
  await t.rejects(w.promise, TimedOut);
  const waited = performance.now() - started;
  t.ok(waited >= 45 && waited < 1000, `after about 50 ms (${waited.toFixed(0)} ms)`);
  t.same(w.counts, { started: 1, unregistered: 1, timedOut: 1, aborted: 0, closed: 0 });
  t.equal(timers(), before, 'no timer left');
  w.wait().resolve('too late');
  await sleep(0);
  t.type(w.outcome.error, TimedOut, 'a report after the timeout is a no-op');
});

t.test('timedOut() returning undefined keeps the wait open, without a timer, until something else ends it', async (t) => {
  const lifecycle = new Lifecycle();
  const before = timers();
  let calls = 0;
  const w = track<string>(lifecycle, {
    timeoutMillis: 20,
    timedOut: () => {
      calls += 1;
      return undefined;
    },
  });
  await sleep(60);
  t.equal(calls, 1, 'asked once');
  t.notOk(w.wait().settled, 'still waiting');
  t.equal(timers(), before, 'no timer re-armed');
  w.wait().reject(new Error('the other timer'));
  await t.rejects(w.promise, { message: 'the other timer' });
  t.equal(w.counts.unregistered, 1);
});

t.test('a signal aborted before the wait: rejects at once with aborted(reason), without calling start()', async (t) => {
  const lifecycle = new Lifecycle();
  const controller = new AbortController();
  const reason = new Error('caller gave up');
  controller.abort(reason);
  const before = timers();
  const w = track<string>(lifecycle, { signal: controller.signal });
  await t.rejects(w.promise, Aborted);
  t.equal((w.outcome.error as Error).cause, reason, 'the signal\'s reason is the cause');
  t.same(w.counts, { started: 0, unregistered: 0, timedOut: 0, aborted: 1, closed: 0 });
  t.equal(timers(), before, 'no timer armed');
  t.equal(getEventListeners(controller.signal, 'abort').length, 0, 'no listener added');
});

t.test('a signal aborted while waiting: rejects at once with aborted(reason) and cleans up once', async (t) => {
  const lifecycle = new Lifecycle();
  const controller = new AbortController();
  const before = timers();
  const w = track<string>(lifecycle, { signal: controller.signal, timeoutMillis: 10_000 });
  const started = performance.now();
  controller.abort('stop');
  await t.rejects(w.promise, Aborted);
  t.ok(performance.now() - started < 500, 'at once, not at the timeout');
  t.equal((w.outcome.error as Error).cause, 'stop');
  t.same(w.counts, { started: 1, unregistered: 1, timedOut: 0, aborted: 1, closed: 0 });
  t.equal(timers(), before, 'no timer left');
  t.equal(getEventListeners(controller.signal, 'abort').length, 0, 'listener removed');
  await lifecycle.close(async () => undefined);
  t.equal(w.counts.closed, 0, 'the hold was released: close() does not settle it again');
});

t.test('close() rejects every waiter with closed() before its shutdown runs; a closing lifecycle rejects new waits at once', async (t) => {
  const lifecycle = new Lifecycle();
  const before = timers();
  const first = track<string>(lifecycle);
  const second = track<string>(lifecycle, { timeoutMillis: Infinity });
  let settledBeforeShutdown: boolean[] = [];
  await lifecycle.close(async () => {
    settledBeforeShutdown = [first.wait().settled, second.wait().settled];
  });
  t.same(settledBeforeShutdown, [true, true], 'both settled synchronously when close() began');
  await t.rejects(first.promise, Closed);
  await t.rejects(second.promise, Closed);
  t.same([first.counts.unregistered, second.counts.unregistered], [1, 1], 'each cleaned up once');
  t.equal(timers(), before, 'no timer left');
  const late = track<string>(lifecycle);
  await t.rejects(late.promise, Closed);
  t.equal(late.counts.started, 0, 'start() not called on a closed lifecycle');
});

t.test('a wait settled from inside start(): its registration is removed once, and nothing is armed', async (t) => {
  const lifecycle = new Lifecycle();
  const controller = new AbortController();
  const before = timers();
  const w = track<string>(lifecycle, { signal: controller.signal }, (wait) => wait.resolve('at once'));
  t.equal(await w.promise, 'at once');
  t.equal(w.counts.unregistered, 1, 'removed once, after start() returned it');
  t.equal(timers(), before, 'no timer armed');
  t.equal(getEventListeners(controller.signal, 'abort').length, 0, 'no listener added');
  await lifecycle.close(async () => undefined);
  t.equal(w.counts.closed, 0, 'nothing held on the lifecycle');
});

/** Runs `body` with setTimeout/clearTimeout replaced by fakes that record each timer and fire only when told. */
function withFakeTimers(body: (armed: { millis: number; fire(): void; cleared: boolean }[]) => void): void {
  const armed: { millis: number; fire(): void; cleared: boolean }[] = [];
  const real = { setTimeout: globalThis.setTimeout, clearTimeout: globalThis.clearTimeout };
  globalThis.setTimeout = ((fire: () => void, millis: number) => {
    const timer = { millis, fire, cleared: false };
    armed.push(timer);
    return timer;
  }) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((timer: { cleared: boolean } | undefined) => {
    if (timer !== undefined) timer.cleared = true;
  }) as unknown as typeof clearTimeout;
  try {
    body(armed);
  } finally {
    Object.assign(globalThis, real);
  }
}

t.test('a timeout beyond Node\'s limit is armed at the limit and waited out in steps, never cut short', async (t) => {
  const lifecycle = new Lifecycle();
  let w: ReturnType<typeof track<string>> | undefined;
  withFakeTimers((armed) => {
    w = track<string>(lifecycle, { timeoutMillis: MAX_TIMER_MILLIS + 5 });
    t.same(armed.map((timer) => timer.millis), [MAX_TIMER_MILLIS], 'armed with the limit, not with an overflowing delay');
    armed[0]!.fire();
    t.same(armed.map((timer) => timer.millis), [MAX_TIMER_MILLIS, 5], 'then re-armed for what is left');
    t.equal(w.counts.timedOut, 0, 'not timed out after the first step');
    armed[1]!.fire();
    t.equal(w.counts.timedOut, 1, 'timed out once the whole timeout has passed');
  });
  await t.rejects(w!.promise, TimedOut);
});

t.test('Infinity never times out: it steps at the limit until the wait ends, then the step is cleared', async (t) => {
  const lifecycle = new Lifecycle();
  let w: ReturnType<typeof track<string>> | undefined;
  withFakeTimers((armed) => {
    w = track<string>(lifecycle, { timeoutMillis: Infinity });
    for (let step = 0; step < 3; step += 1) armed.at(-1)!.fire();
    t.same(armed.map((timer) => timer.millis), Array(4).fill(MAX_TIMER_MILLIS), 'every step at the limit');
    t.equal(w.counts.timedOut, 0, 'never timed out');
    w.wait().resolve('finally');
    t.ok(armed.at(-1)!.cleared, 'the pending step is cleared when the wait ends');
  });
  t.equal(await w!.promise, 'finally');
});

t.test('real timers: a wait beyond the limit raises no TimeoutOverflowWarning and does not fire early', async (t) => {
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning.name);
  };
  process.on('warning', onWarning);
  t.teardown(() => process.off('warning', onWarning));
  const lifecycle = new Lifecycle();
  const before = timers();
  const beyond = track<string>(lifecycle, { timeoutMillis: MAX_TIMER_MILLIS + 1 });
  const forever = track<string>(lifecycle, { timeoutMillis: Infinity });
  t.equal(timers(), before + 2, 'each holds one ref\'d timer');
  await sleep(50);
  t.same([beyond.wait().settled, forever.wait().settled], [false, false], 'neither fired after 50 ms (an overflowing delay fires after 1 ms)');
  t.same(warnings, [], 'no warning');
  await lifecycle.close(async () => undefined);
  await t.rejects(beyond.promise, Closed);
  await t.rejects(forever.promise, Closed);
  t.equal(timers(), before, 'no timer left');
});
