/**
 * How a call on a lease ended, as the caller reports it to `lease.release(outcome)` (and
 * `pool.client()` does by itself): nothing for success, the call's error (a grpc-js
 * ServiceError) or its status code. Outlier ejection counts an outcome as a failure only
 * when its code says the backend or the connection is at fault; application errors
 * (NOT_FOUND, INVALID_ARGUMENT, …) never eject a backend.
 */
import { status } from '@grpc/grpc-js';

export type CallOutcome = status | { readonly code?: unknown } | null | undefined;

/**
 * Internal: a lease came back without an outcome to count (a `using` scope's end, a call
 * cancelled while it waited, an error of the caller's own in `pool.use()`). Unlike
 * `release()` without an argument, it is not a success: it leaves the failure count alone.
 */
export const NO_OUTCOME: unique symbol = Symbol('anchorpool.no-outcome');
export type ReleaseOutcome = CallOutcome | typeof NO_OUTCOME;

/**
 * The codes that count as failures by default: the server or the connection failed
 * (UNAVAILABLE, INTERNAL, UNKNOWN, DATA_LOSS), did not answer in time (DEADLINE_EXCEEDED),
 * or shed load (RESOURCE_EXHAUSTED). Envoy's consecutive_5xx counts the same kinds of
 * answer (5xx and gateway failures) for HTTP.
 */
export const DEFAULT_FAILURE_CODES: readonly status[] = [
  status.UNKNOWN,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.INTERNAL,
  status.UNAVAILABLE,
  status.DATA_LOSS,
];

/** The status code of an outcome: OK for none, UNKNOWN for an error that carries no code. */
export function outcomeCode(outcome: CallOutcome): status {
  if (outcome === undefined || outcome === null) return status.OK;
  if (typeof outcome === 'number') return outcome;
  const code = (outcome as { code?: unknown }).code;
  return typeof code === 'number' ? (code as status) : status.UNKNOWN;
}

const FAILURES = new Set<status>(DEFAULT_FAILURE_CODES);

/** Whether a lease's or a call's outcome is a failure by the default codes (for latency estimates: a failure must not look fast). */
export function isFailure(outcome: ReleaseOutcome): boolean {
  return outcome !== NO_OUTCOME && FAILURES.has(outcomeCode(outcome));
}
