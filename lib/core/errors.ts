/**
 * Typed errors. Every error anchorpool raises is an AnchorPoolError with a stable
 * `code` string that callers may switch on; messages are for people and may change.
 * `retryable` says whether the same call can succeed later without a config change.
 *
 * Errors work across copies of the package: an application may end up with two
 * installed copies (a library depending on another version), and each has its own
 * classes. Every AnchorPoolError carries the brand `Symbol.for('anchorpool.error')`,
 * a key shared by all copies, and `isAnchorPoolError()` and `instanceof AnchorPoolError`
 * check the brand. `instanceof` a subclass (`PoolClosedError`, …) stays a prototype
 * check, so it is true only for errors of the same copy: switch on `code` to be safe.
 * The mapping of these errors to gRPC status codes is in `error-status.ts`.
 */

export interface ErrorDetails {
  cause?: unknown;
}

/** Shared by every copy of anchorpool (a registered symbol); never change the key. */
const BRAND: unique symbol = Symbol.for('anchorpool.error');

export abstract class AnchorPoolError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;

  /**
   * `err instanceof AnchorPoolError` also checks the brand, so it holds for an error
   * from another copy of anchorpool (and stays true for whatever the prototype check
   * accepts). Subclasses inherit this method: for them (`this` is the subclass) it is
   * only the ordinary prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    const ordinary = Function.prototype[Symbol.hasInstance].call(this, value);
    return this === AnchorPoolError ? ordinary || isAnchorPoolError(value) : ordinary;
  }

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    // On the instance (the prototype would brand AnchorPoolError.prototype itself), and
    // not enumerable: it stays out of JSON.stringify, util.inspect and object spreads.
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/**
 * True for an error raised by any copy of anchorpool (it checks the shared brand, not
 * the class of this copy), so `err.code` and `err.retryable` can be read.
 */
export function isAnchorPoolError(err: unknown): err is AnchorPoolError {
  return typeof err === 'object' && err !== null && (err as { [BRAND]?: unknown })[BRAND] === true;
}

/** An option passed to anchorpool is invalid. The message lists every problem and its path. */
export class ConfigError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_CONFIG';
  readonly retryable = false;
}

/**
 * A subsetting client's id is held in etcd by another live client (coordinated subsets):
 * two clients with one id would take the same subset. Retried until the other's lease ends.
 */
export class ClientIdTakenError extends AnchorPoolError {
  readonly code = 'ANCHORPOOL_CLIENT_ID_TAKEN';
  readonly retryable = true;
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
