// Node's timer limit: the one constant, the clamp for delays computed at run time, the
// timeout a call's deadline gives its lease wait, and the check on caller timeouts.
import t from 'tap';
import { isTimeoutMillis, MAX_TIMER_MILLIS, MAX_TIMER_SECONDS, timeoutForDeadline, timerDelay } from '../lib/core/timer-limit.js';

t.equal(MAX_TIMER_MILLIS, 2 ** 31 - 1, 'the limit is 2^31 - 1 ms');
t.equal(MAX_TIMER_SECONDS, 2_147_483, 'in whole seconds: 2147483 s');

t.test('timerDelay() clamps to the limit and leaves shorter delays alone', async (t) => {
  const table: [number, number][] = [
    [0, 0],
    [1500, 1500],
    [MAX_TIMER_MILLIS, MAX_TIMER_MILLIS],
    [MAX_TIMER_MILLIS + 1, MAX_TIMER_MILLIS],
    [Infinity, MAX_TIMER_MILLIS],
  ];
  for (const [delay, expected] of table) t.equal(timerDelay(delay), expected, `${delay} → ${expected}`);
});

t.test('timeoutForDeadline(): whole ms, at least 0; none for an infinite deadline or one beyond the limit', async (t) => {
  const table: [number, number | undefined][] = [
    [-250, 0],
    [0, 0],
    [99.9, 99],
    [MAX_TIMER_MILLIS, MAX_TIMER_MILLIS],
    [MAX_TIMER_MILLIS + 1, undefined],
    [Infinity, undefined],
    [NaN, undefined],
  ];
  for (const [left, expected] of table) t.equal(timeoutForDeadline(left), expected, `${left} ms left → ${String(expected)}`);
});

t.test('isTimeoutMillis(): an integer from 0 to the limit', async (t) => {
  for (const good of [0, 1, MAX_TIMER_MILLIS]) t.ok(isTimeoutMillis(good), `${good} is a timeout`);
  for (const bad of [-1, 1.5, MAX_TIMER_MILLIS + 1, Infinity, NaN, '100', undefined]) t.notOk(isTimeoutMillis(bad), `${String(bad)} is not`);
});
