/**
 * Typed errors. Every error anchorpool raises is an AnchorPoolError with a stable
 * `code` string that callers may switch on; messages are for people and may change.
 * `retryable` says whether the same call can succeed later without a config change.
 */

export interface ErrorDetails {
  cause?: unknown;
}

export abstract class AnchorPoolError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
  }
}

/** An option passed to anchorpool is invalid. The message lists every problem and its path. */
export class ConfigError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_CONFIG';
  readonly retryable = false;
}

/** A target URI (`etcd:///…`, `pass:///…`) cannot be parsed. */
export class InvalidTargetError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_INVALID_TARGET';
  readonly retryable = false;
  constructor(
    readonly target: string,
    reason: string,
  ) {
    super(`invalid target ${JSON.stringify(target)}: ${reason}`);
  }
}

/** etcd could not be reached (or did not answer) in time. */
export class EtcdUnavailableError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_ETCD_UNAVAILABLE';
  readonly retryable = true;
}

/** etcd refused the credentials or the permissions for the prefix. Fixing it needs a config change. */
export class EtcdAuthError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_ETCD_AUTH';
  readonly retryable = false;
}

/** The source (or pool) was closed; nothing more can be done with it. */
export class PoolClosedError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_CLOSED';
  readonly retryable = false;
}

export function isAnchorPoolError(err: unknown): err is AnchorPoolError {
  return err instanceof AnchorPoolError;
}

/** `pool.ready()` saw no READY anchor before its timeout. */
export class ReadyTimeoutError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_READY_TIMEOUT';
  readonly retryable = true;
}

/** No anchor could take a lease within the acquire timeout. */
export class AcquireTimeoutError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_ACQUIRE_TIMEOUT';
  readonly retryable = true;
}

/** The acquire's AbortSignal fired while it waited; the signal's reason is the cause. */
export class AcquireAbortedError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_ACQUIRE_ABORTED';
  readonly retryable = false;
}

/** `maxWaitingClients` callers are already waiting. */
export class TooManyWaitersError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_TOO_MANY_WAITERS';
  readonly retryable = true;
}

/** `failFast`: no anchor could take a lease right now. */
export class NoAnchorAvailableError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_NO_ANCHOR_AVAILABLE';
  readonly retryable = true;
}

/** The lease was already released. */
export class LeaseReleasedError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_LEASE_RELEASED';
  readonly retryable = false;
}

/** The object is not a lease of this pool. */
export class ForeignLeaseError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_FOREIGN_LEASE';
  readonly retryable = false;
}
