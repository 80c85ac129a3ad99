/**
 * A Lease: one stream slot on one anchor, handed out by a pool. It exposes the
 * anchor's channel and a client-stub cache; release() gives the slot back exactly once.
 * `using lease = await pool.acquire()` and `await using` release it at scope end.
 *
 * Its bookkeeping (owner, released flag, leak timer) is private to this module: the
 * broker reaches it through the functions below, which are not part of the public API.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Anchor } from '../anchors/anchor.js';
import type { ClientConstructor } from './channel-anchor.js';
import { NO_OUTCOME, type CallOutcome, type ReleaseOutcome } from '../core/call-outcome.js';
import { ForeignLeaseError, LeaseReleasedError } from '../core/errors.js';

export interface AcquireOptions {
  /** Gives up waiting when aborted (AcquireAbortedError). */
  readonly signal?: AbortSignal;
  /** Overrides acquireTimeoutMillis for this call. */
  readonly timeoutMillis?: number;
  /** Higher is served first among waiters; default 0. */
  readonly priority?: number;
}

/** An anchor a lease can be taken on: the anchor base plus a channel and stubs on it. */
export interface LeaseAnchor extends Anchor {
  readonly channel: grpc.Channel;
  client<C extends grpc.Client>(Ctor: ClientConstructor<C>): C;
}

/** What a lease calls back into: its broker. */
export interface LeaseOwner {
  release(lease: Lease, outcome?: ReleaseOutcome): void;
  /** release() unless already released or the owner has shut down (for scope ends and call ends). */
  releaseAtEnd(lease: Lease, outcome?: ReleaseOutcome): void;
}

let create: (owner: LeaseOwner, anchor: LeaseAnchor) => Lease;
/** True only while create() runs: JavaScript can call a private constructor, this refuses it. */
let constructing = false;
let settle: (lease: unknown, owner: LeaseOwner) => LeaseAnchor;
let setLeakTimer: (lease: Lease, timer: NodeJS.Timeout) => void;
let stamp: (lease: Lease, at: number) => void;
let takenAt: (lease: Lease) => number;

export class Lease {
  readonly #owner: LeaseOwner;
  readonly #anchor: LeaseAnchor;
  #released = false;
  #leakTimer: NodeJS.Timeout | undefined;
  /** performance.now() when it was granted, for latency-aware picks; 0 when not timed. */
  #takenAt = 0;

  /** Leases are made by pools only (pool.acquire()). */
  private constructor(owner: LeaseOwner, anchor: LeaseAnchor) {
    if (!constructing) throw new TypeError('leases are handed out by pool.acquire(), not constructed');
    this.#owner = owner;
    this.#anchor = anchor;
  }

  /** A grpc-js Channel pinned to this lease's anchor (pass as `channelOverride`, or use client()). */
  get channel(): grpc.Channel {
    return this.#anchor.channel;
  }
  /** The etcd key (or static/<i>) of the endpoint entry. */
  get key(): string {
    return this.#anchor.key;
  }
  get address(): string {
    return this.#anchor.address;
  }
  /** Index of the anchor within its key, 0..N-1. */
  get anchor(): number {
    return this.#anchor.index;
  }
  get released(): boolean {
    return this.#released;
  }

  /** A client stub on this anchor's channel, cached per anchor and constructor. */
  client<C extends grpc.Client>(Ctor: ClientConstructor<C>): C {
    return this.#anchor.client(Ctor);
  }

  /**
   * Gives the slot back, with how the lease's call ended: nothing for success, or the
   * call's error (a grpc-js ServiceError) or status code; outlier ejection counts the
   * failures (see CallOutcome). Throws LeaseReleasedError on a second release, and
   * PoolClosedError once the pool's close() has finished (the lease was reclaimed).
   */
  release(outcome?: CallOutcome): void {
    this.#owner.release(this, outcome);
  }

  // A scope that ends after the pool shut down has nothing left to give back.
  // A scope's end says nothing of how its calls went: no outcome is counted.
  [Symbol.dispose](): void {
    this.#owner.releaseAtEnd(this, NO_OUTCOME);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#owner.releaseAtEnd(this, NO_OUTCOME);
  }

  static {
    create = (owner, anchor) => {
      constructing = true;
      try {
        return new Lease(owner, anchor);
      } finally {
        constructing = false;
      }
    };
    settle = (lease, owner) => {
      if (!(lease instanceof Lease) || lease.#owner !== owner) {
        throw new ForeignLeaseError('release() was given an object that is not a lease of this pool');
      }
      if (lease.#released) {
        throw new LeaseReleasedError(`the lease on ${lease.key}#${lease.anchor} (${lease.address}) was already released`);
      }
      lease.#released = true;
      if (lease.#leakTimer !== undefined) clearTimeout(lease.#leakTimer);
      return lease.#anchor;
    };
    setLeakTimer = (lease, timer) => {
      lease.#leakTimer = timer;
    };
    stamp = (lease, at) => {
      lease.#takenAt = at;
    };
    takenAt = (lease) => lease.#takenAt;
  }
}

/** For the broker: a new lease on `anchor`. */
export function newLease(owner: LeaseOwner, anchor: LeaseAnchor): Lease {
  return create(owner, anchor);
}

/**
 * For the broker: marks `lease` released on behalf of `owner` (stopping its leak timer)
 * and returns its anchor. Throws a typed error for a lease of another pool, a non-lease,
 * or a second release.
 */
export function settleLease(lease: unknown, owner: LeaseOwner): LeaseAnchor {
  return settle(lease, owner);
}

/** For the broker: the leak-detection timer of a lease, cleared when it is released. */
export function attachLeakTimer(lease: Lease, timer: NodeJS.Timeout): void {
  setLeakTimer(lease, timer);
}

/** For the broker: when the lease was granted (performance.now()), for latency-aware picks. */
export function stampLease(lease: Lease, at: number): void {
  stamp(lease, at);
}

/** For the broker: the time stampLease() recorded; 0 when the lease was not stamped. */
export function leaseTakenAt(lease: Lease): number {
  return takenAt(lease);
}
