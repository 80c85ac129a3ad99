/**
 * What every EndpointSource shares: the desired state, coalesced change events,
 * invalid-value reporting, the ready() promise and close(), on the shared Lifecycle
 * (one close() promise for every caller; pending ready() calls settled when it begins)
 * and emitSafely (every listener gets the event; a listener's exception is rethrown on
 * a later tick, never swallowed). Subclasses only implement begin() (start fetching)
 * and end() (stop all I/O).
 */
import { EventEmitter } from 'node:events';
import { deadlineWait, type Wait } from '../core/deadline-wait.js';
import { DesiredState, type InvalidEndpoint } from './desired-state.js';
import { emitSafely } from '../core/emit-safely.js';
import type { ParseLimits } from './endpoint-entry.js';
import { AcquireAbortedError, type AnchorPoolError, PoolClosedError } from '../core/errors.js';
import { Lifecycle } from '../core/lifecycle.js';
import type { Logger } from '../core/logger.js';
import type {
  ChangeCause,
  EndpointSnapshot,
  EndpointSource,
  ReadyOptions,
  SourceEvents,
  SourceStatus,
} from './source.js';

export const DEFAULT_READY_TIMEOUT_MILLIS = 10_000;

export abstract class SourceBase extends EventEmitter<SourceEvents> implements EndpointSource {
  abstract readonly kind: 'etcd' | 'static';
  protected readonly state: DesiredState;
  protected readonly logger: Logger;
  protected revision = 0;
  readonly #coalesceMillis: number;
  readonly #lifecycle = new Lifecycle();
  #started = false;
  #ready = false;
  readonly #waiters = new Set<Wait<EndpointSnapshot>>();
  #flushTimer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  #pendingCause: ChangeCause = 'snapshot';

  constructor(limits: ParseLimits, logger: Logger, coalesceMillis: number) {
    super();
    this.state = new DesiredState(limits);
    this.logger = logger;
    this.#coalesceMillis = coalesceMillis;
  }

  /** Begins fetching. Must not emit synchronously. */
  protected abstract begin(): void;
  /** Stops all I/O and timers; resolves when nothing of the source is left running. */
  protected abstract end(): Promise<void>;
  /** The error a timed-out ready() rejects with. */
  protected abstract readyTimeoutError(timeoutMillis: number): AnchorPoolError;
  abstract status(): SourceStatus;

  get isReady(): boolean {
    return this.#ready;
  }

  start(): void {
    if (this.#started || this.#lifecycle.closing) return;
    this.#started = true;
    this.begin();
  }

  snapshot(): EndpointSnapshot {
    return { endpoints: new Map(this.state.endpoints), invalid: new Map(this.state.invalid), revision: this.revision };
  }

  ready(options: ReadyOptions = {}): Promise<EndpointSnapshot> {
    if (this.#lifecycle.closing) return Promise.reject(new PoolClosedError('the endpoint source is closed'));
    if (this.#ready) return Promise.resolve(this.snapshot());
    this.start();
    const timeoutMillis = options.timeoutMillis ?? DEFAULT_READY_TIMEOUT_MILLIS;
    return deadlineWait<EndpointSnapshot>(
      this.#lifecycle,
      {
        timeoutMillis,
        signal: options.signal,
        timedOut: () => this.readyTimeoutError(timeoutMillis),
        aborted: (reason) => new AcquireAbortedError('ready() was aborted', { cause: reason }),
        closed: () => new PoolClosedError('the endpoint source was closed before it became ready'),
      },
      (wait) => {
        this.#waiters.add(wait);
        return () => this.#waiters.delete(wait);
      },
    );
  }

  /** Stops the source. Every call returns the same promise, settled once end() has finished. */
  close(): Promise<void> {
    return this.#lifecycle.close(() => {
      this.#cancelFlush();
      return this.end();
    });
  }

  /** Marks the state as changed; the diff is emitted once per coalescing window. */
  protected changed(cause: ChangeCause): void {
    if (cause !== 'watch') this.#pendingCause = cause;
    if (this.#flushTimer !== undefined || this.#lifecycle.closing) return;
    this.#flushTimer =
      this.#coalesceMillis === 0
        ? setImmediate(() => this.flush())
        : setTimeout(() => this.flush(), this.#coalesceMillis).unref();
  }

  /** Emits the pending diff now. Called before ready/resync so events keep their order. */
  protected flush(): void {
    this.#cancelFlush();
    const cause = this.#pendingCause;
    this.#pendingCause = 'watch';
    const diff = this.state.takeDiff();
    if (diff !== null) this.emitSafely('change', { ...diff, revision: this.revision, cause });
  }

  protected markReady(): void {
    this.flush();
    if (this.#ready) return;
    this.#ready = true;
    const snapshot = this.snapshot();
    for (const waiter of [...this.#waiters]) waiter.resolve(snapshot);
  }

  /** Rejects current ready() callers at once (for errors that waiting cannot fix). */
  protected failReady(error: AnchorPoolError): void {
    for (const waiter of [...this.#waiters]) waiter.reject(error);
  }

  protected reportInvalid(record: InvalidEndpoint): void {
    this.logger.warn(
      { key: record.key, reason: record.reason, modRevision: record.modRevision, keptPrevious: record.keptPrevious },
      `ignoring invalid endpoint value at ${JSON.stringify(record.key)}: ${record.reason}`,
    );
    this.emitSafely('invalid', record);
  }

  protected reportError(error: AnchorPoolError): void {
    this.logger.error({ code: error.code, error: error.message }, error.message);
    this.emitSafely('error', error);
  }

  /**
   * Every listener gets the event and the source carries on; a listener that throws has
   * its exception rethrown on a later tick (an uncaught exception, as with a plain
   * EventEmitter), so it never disappears.
   */
  protected emitSafely<E extends keyof SourceEvents>(event: E, ...args: SourceEvents[E]): void {
    emitSafely(this, event, ...args);
  }

  #cancelFlush(): void {
    if (this.#flushTimer === undefined) return;
    clearTimeout(this.#flushTimer as NodeJS.Timeout);
    clearImmediate(this.#flushTimer as NodeJS.Immediate);
    this.#flushTimer = undefined;
  }
}
