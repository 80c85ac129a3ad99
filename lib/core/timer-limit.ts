/**
 * Node's timer limit: the longest delay setTimeout() takes is 2^31 - 1 ms (about 24.8
 * days). A longer one (Infinity included) is not an error: Node warns
 * (TimeoutOverflowWarning) and fires after 1 ms. So every `…Millis` option is capped at
 * MAX_TIMER_MILLIS, and every delay computed at run time goes through timerDelay().
 */

/** The longest delay Node's timers take (2^31 - 1 ms): the limit of every `…Millis` option. */
export const MAX_TIMER_MILLIS = 2_147_483_647;

/** The same limit in whole seconds (2147483): the limit of every `…Seconds` value that ends up as a timer. */
export const MAX_TIMER_SECONDS = Math.floor(MAX_TIMER_MILLIS / 1000);

/** An integer from 0 to MAX_TIMER_MILLIS: a timeout a caller may pass (acquire(), ready()). */
export function isTimeoutMillis(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= MAX_TIMER_MILLIS;
}

/** `millis` clamped to Node's timer limit: a timer armed with it fires no earlier than it can. */
export function timerDelay(millis: number): number {
  return Math.min(millis, MAX_TIMER_MILLIS);
}

/**
 * The whole milliseconds a timer can wait for a deadline `millisLeft` away (at least 0),
 * or undefined when the deadline is infinite or beyond the limit: the caller then bounds
 * the wait some other way (a call's lease wait falls back to acquireTimeoutMillis).
 */
export function timeoutForDeadline(millisLeft: number): number | undefined {
  return Number.isFinite(millisLeft) && millisLeft <= MAX_TIMER_MILLIS ? Math.max(0, Math.floor(millisLeft)) : undefined;
}
