/**
 * The gRPC status a call reports when anchorpool failed it before it reached a backend
 * (a `pool.client()` stub whose lease could not be had). It lives beside the errors so
 * that a new error code gets its status in the same change. It reads `code` through
 * isAnchorPoolError(), so errors from another copy of anchorpool map the same way.
 */
import * as grpc from '@grpc/grpc-js';
import { isAnchorPoolError } from './errors.js';

export interface GrpcStatusContext {
  /**
   * The wait for a lease was bounded by the call's own deadline (not by the pool's
   * `acquireTimeoutMillis`), so an acquire timeout means the deadline passed.
   */
  readonly byDeadline?: boolean;
}

/**
 * Why each status:
 * - ACQUIRE_TIMEOUT → UNAVAILABLE: no anchor had a free slot in time; a retry (perhaps to
 *   another pool or later) may succeed. DEADLINE_EXCEEDED instead when the call's deadline
 *   bounded the wait, as grpc-js reports a call that waited for a connection past it.
 * - NO_ANCHOR_AVAILABLE → UNAVAILABLE: `failFast` found no ready anchor; transient.
 * - TOO_MANY_WAITERS → RESOURCE_EXHAUSTED: the local queue (`maxWaitingClients`) is full,
 *   which is what grpc-js reports for its own local limits (message size, buffer).
 * - ACQUIRE_ABORTED → CANCELLED: the call was cancelled while it waited.
 * - CLOSED → CANCELLED, not UNAVAILABLE: clients and retry policies retry UNAVAILABLE, but
 *   a closed pool will never serve again, so a retry could only fail the same way. A pool
 *   is closed by its own application shutting down, which is what CANCELLED means ("the
 *   operation was cancelled, typically by the caller"), and grpc-go fails calls on a
 *   closing ClientConn with CANCELLED too. FAILED_PRECONDITION would also stop retries,
 *   but gRPC reserves it for applications (the status-code guide lists it among the codes
 *   a gRPC library never generates), and a server passing it on would tell its own caller
 *   to fix a precondition that the caller cannot see.
 * - anything else → INTERNAL: no other error is expected on this path (it is a bug).
 */
const STATUS_OF_CODE: Readonly<Record<string, grpc.status>> = {
  ANCHORPOOL_ACQUIRE_TIMEOUT: grpc.status.UNAVAILABLE,
  ANCHORPOOL_NO_ANCHOR_AVAILABLE: grpc.status.UNAVAILABLE,
  ANCHORPOOL_TOO_MANY_WAITERS: grpc.status.RESOURCE_EXHAUSTED,
  ANCHORPOOL_ACQUIRE_ABORTED: grpc.status.CANCELLED,
  ANCHORPOOL_CLOSED: grpc.status.CANCELLED,
};

/** The gRPC status for an error raised while a call waited for a lease (see STATUS_OF_CODE). */
export function grpcStatusOf(error: unknown, context: GrpcStatusContext = {}): grpc.status {
  if (!isAnchorPoolError(error)) return grpc.status.INTERNAL;
  if (error.code === 'ANCHORPOOL_ACQUIRE_TIMEOUT' && context.byDeadline === true) return grpc.status.DEADLINE_EXCEEDED;
  return Object.hasOwn(STATUS_OF_CODE, error.code) ? STATUS_OF_CODE[error.code]! : grpc.status.INTERNAL;
}
