/**
 * LeaseBroker: grants leases and holds the callers waiting for one.
 *
 *   acquire() ──► pick hook ──► lease          release() ──► slot back ──► serve waiters
 *        └─ none: wait (priority, timeout, AbortSignal, maxWaitingClients, failFast)
 *
 * It does not know where anchors come from: the next anchor is whatever its one pick
 * hook returns (round robin today; a least-loaded pick can plug in there). It counts
 * leases, serves waiters when told that an anchor became eligible, reports leases held
 * past leakDetectionMillis, and settles its waiters through the owner's lifecycle, so
 * close() rejects every one of them at once.
 * The hot path (a free slot) is one pick, two counters and one object.
 */
import {
  AcquireAbortedError,
  AcquireTimeoutError,
  ConfigError,
  NoAnchorAvailableError,
  PoolClosedError,
  TooManyWaitersError,
} from '../core/errors.js';
import { attachLeakTimer, leaseTakenAt, newLease, settleLease, stampLease, type AcquireOptions, type Lease, type LeaseAnchor, type LeaseOwner } from './lease.js';
import { NO_OUTCOME, type CallOutcome, type ReleaseOutcome } from '../core/call-outcome.js';
import { deadlineWait, type Wait } from '../core/deadline-wait.js';
import type { Lifecycle } from '../core/lifecycle.js';
import { isTimeoutMillis, MAX_TIMER_MILLIS } from '../core/timer-limit.js';
import { WaiterQueue } from './waiter-queue.js';

export interface BrokerOptions {
  readonly acquireTimeoutMillis: number;
  readonly maxWaitingClients: number;
  readonly failFast: boolean;
  readonly leakDetectionMillis: number;
}

export interface LeaseLeakEvent {
  readonly key: string;
  readonly anchor: number;
  readonly address: string;
  readonly heldMillis: number;
  /** Stack of the acquire() that took the lease. */
  readonly stack: string;
}

export interface BrokerHooks<A extends LeaseAnchor> {
  /** The next anchor that can take a lease, or undefined. */
  pick(): A | undefined;
  /** A line describing the pool's state, for error messages. */
  describe(): string;
  /** A lease was held past leakDetectionMillis. */
  leaked(event: LeaseLeakEvent): void;
  /** A lease came back with how its call ended (for outlier ejection). */
  outcome?(anchor: A, outcome: CallOutcome): void;
  /** A lease came back after `millis`, at `now` (performance.now()); given only when set: latency-aware picks time their leases. */
  held?(anchor: A, millis: number, now: number, outcome: ReleaseOutcome): void;
  /** Callers are waiting and no anchor can take them: a chance to open more (load-driven anchors). */
  starved?(): void;
}

interface PendingAcquire {
  readonly priority: number;
  readonly since: number;
  /** Where acquire() was called, when leak detection is on (a served waiter's grant runs in a microtask). */
  readonly stack: string | undefined;
  /** In the queue: false once served (shift() took it) or given up (remove() counted it). */
  active: boolean;
  readonly wait: Wait<Lease>;
}

export function validateAcquireOptions(options: AcquireOptions): void {
  const { timeoutMillis, priority, signal } = options;
  if (timeoutMillis !== undefined && !isTimeoutMillis(timeoutMillis)) {
    throw new ConfigError(`acquire(): timeoutMillis must be an integer from 0 to ${MAX_TIMER_MILLIS}, got ${String(timeoutMillis)}`);
  }
  if (priority !== undefined && !Number.isFinite(priority)) {
    throw new ConfigError(`acquire(): priority must be a finite number, got ${String(priority)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new ConfigError('acquire(): signal must be an AbortSignal');
  }
}

export class LeaseBroker<A extends LeaseAnchor> {
  readonly #options: BrokerOptions;
  readonly #hooks: BrokerHooks<A>;
  readonly #lifecycle: Lifecycle;
  readonly #waiters = new WaiterQueue<PendingAcquire>();
  readonly #waitObservers = new Set<(seconds: number) => void>();
  #observeWait: ((seconds: number) => void) | undefined;
  #leased = 0;
  #acquired = 0;
  #timeouts = 0;
  #servePending = false;
  /** The leases' way back in; not the broker itself, so nothing else can call it. */
  readonly #owner: LeaseOwner = {
    release: (lease, outcome) => this.release(lease, outcome),
    releaseAtEnd: (lease, outcome) => this.releaseAtEnd(lease, outcome),
  };

  constructor(options: BrokerOptions, hooks: BrokerHooks<A>, lifecycle: Lifecycle) {
    this.#options = options;
    this.#hooks = hooks;
    this.#lifecycle = lifecycle;
  }

  /** Leases held now; 0 once the owner's close() finished (held leases were reclaimed). */
  get leased(): number {
    return this.#lifecycle.finished ? 0 : this.#leased;
  }
  get waiting(): number {
    return this.#waiters.size;
  }
  /** Leases handed out so far. */
  get acquired(): number {
    return this.#acquired;
  }
  get timeouts(): number {
    return this.#timeouts;
  }

  acquire(options?: AcquireOptions): Promise<Lease> {
    if (options !== undefined) {
      try {
        validateAcquireOptions(options);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.#lifecycle.closing) return Promise.reject(new PoolClosedError('acquire() on a closed pool'));
    // An aborted signal wins over a free slot, as in Node's own APIs.
    if (options?.signal?.aborted) return Promise.reject(new AcquireAbortedError('acquire() was aborted', { cause: options.signal.reason }));
    const lease = this.tryAcquire();
    return lease === undefined ? this.#wait(options) : Promise.resolve(lease);
  }

  /** A lease right now, or undefined when no anchor has a free slot (or callers are already waiting). */
  tryAcquire(): Lease | undefined {
    if (this.#lifecycle.closing || this.#waiters.size > 0) return undefined;
    const anchor = this.#hooks.pick();
    if (anchor === undefined) return undefined;
    this.#observeWait?.(0);
    return this.#grant(anchor);
  }

  release(lease: Lease, outcome?: ReleaseOutcome): void {
    const anchor = settleLease(lease, this.#owner);
    if (this.#lifecycle.finished) {
      throw new PoolClosedError(`release() after close() finished: the lease on ${lease.key}#${lease.anchor} (${lease.address}) was already reclaimed`);
    }
    this.#leased -= 1;
    anchor.give();
    if (this.#hooks.held !== undefined) {
      const now = performance.now();
      this.#hooks.held(anchor as A, now - leaseTakenAt(lease), now, outcome);
    }
    if (outcome !== NO_OUTCOME) this.#hooks.outcome?.(anchor as A, outcome);
    if (this.#waiters.size > 0) this.#serve();
  }

  /** Gives back a lease whose work ended (a call's status, a scope's end); a no-op once released or after close() finished. */
  releaseAtEnd(lease: Lease, outcome?: ReleaseOutcome): void {
    if (!lease.released && !this.#lifecycle.finished) this.release(lease, outcome);
  }

  /** An anchor became eligible: serve waiters on the next microtask (not from inside the anchor's own state change). */
  wake(): void {
    if (this.#waiters.size === 0 || this.#servePending) return;
    this.#servePending = true;
    queueMicrotask(() => {
      this.#servePending = false;
      this.#serve();
    });
  }

  /** Calls `observer` with the wait, in seconds, of every lease granted from now on. Returns the unsubscribe function. */
  observeWaits(observer: (seconds: number) => void): () => void {
    this.#waitObservers.add(observer);
    this.#composeObservers();
    return () => {
      this.#waitObservers.delete(observer);
      this.#composeObservers();
    };
  }

  #composeObservers(): void {
    const observers = [...this.#waitObservers];
    this.#observeWait =
      observers.length === 0 ? undefined : observers.length === 1 ? observers[0] : (seconds) => observers.forEach((observe) => observe(seconds));
  }

  #grant(anchor: A, acquiredAt?: string): Lease {
    anchor.take();
    this.#leased += 1;
    this.#acquired += 1;
    const lease = newLease(this.#owner, anchor);
    if (this.#hooks.held !== undefined) stampLease(lease, performance.now());
    const leakMillis = this.#options.leakDetectionMillis;
    if (leakMillis > 0) {
      const stack = acquiredAt ?? new Error('lease acquired here').stack ?? '';
      const takenAt = Date.now();
      const timer = setTimeout(() => {
        this.#hooks.leaked({ key: lease.key, anchor: lease.anchor, address: lease.address, heldMillis: Date.now() - takenAt, stack });
      }, leakMillis);
      timer.unref();
      attachLeakTimer(lease, timer);
    }
    return lease;
  }

  #wait(options: AcquireOptions | undefined): Promise<Lease> {
    if (this.#options.failFast) {
      return Promise.reject(new NoAnchorAvailableError(`no anchor can take a lease now (failFast): ${this.#hooks.describe()}`));
    }
    if (this.#waiters.size >= this.#options.maxWaitingClients) {
      return Promise.reject(new TooManyWaitersError(`${this.#waiters.size} callers are already waiting (maxWaitingClients)`));
    }
    const timeoutMillis = options?.timeoutMillis ?? this.#options.acquireTimeoutMillis;
    const leased = deadlineWait<Lease>(
      this.#lifecycle,
      {
        timeoutMillis,
        signal: options?.signal,
        timedOut: () => {
          this.#timeouts += 1;
          return new AcquireTimeoutError(`no anchor could take a lease within ${timeoutMillis} ms (${this.#hooks.describe()})`);
        },
        aborted: (reason) => new AcquireAbortedError('acquire() was aborted while waiting', { cause: reason }),
        closed: () => new PoolClosedError('the pool was closed while waiting for a lease'),
      },
      (wait) => {
        const waiter: PendingAcquire = {
          priority: options?.priority ?? 0,
          since: performance.now(),
          stack: this.#options.leakDetectionMillis > 0 ? (new Error('lease acquired here').stack ?? '') : undefined,
          active: true,
          wait,
        };
        this.#waiters.push(waiter);
        // Given up (timeout, abort, close): out of the queue's count. A served waiter is out already.
        return () => {
          if (!waiter.active) return;
          waiter.active = false;
          this.#waiters.remove();
        };
      },
    );
    this.#hooks.starved?.();
    return leased;
  }

  /** Hands free slots to waiters, in priority order. */
  #serve(): void {
    while (this.#waiters.size > 0) {
      const anchor = this.#hooks.pick();
      if (anchor === undefined) return this.#hooks.starved?.();
      const waiter = this.#waiters.shift()!;
      waiter.active = false;
      this.#observeWait?.((performance.now() - waiter.since) / 1000);
      waiter.wait.resolve(this.#grant(anchor, waiter.stack));
    }
  }
}
