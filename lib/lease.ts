/**
 * A Lease: one stream slot on one anchor, handed out by a pool. It exposes the
 * anchor's channel and a client-stub cache; release() gives the slot back exactly once.
 * `using lease = await pool.acquire()` and `await using` release it at scope end.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Anchor } from './anchor.js';
import { ForeignLeaseError, LeaseReleasedError } from './errors.js';

export interface AcquireOptions {
  /** Gives up waiting when aborted (AcquireAbortedError). */
  readonly signal?: AbortSignal;
  /** Overrides acquireTimeoutMillis for this call. */
  readonly timeoutMillis?: number;
  /** Higher is served first among waiters; default 0. */
  readonly priority?: number;
}

/** What a lease needs from its pool. */
export interface LeaseOwner {
  release(lease: Lease): void;
  /** release() unless already released or the owner has shut down (for scope ends and call ends). */
  releaseAtEnd(lease: Lease): void;
}

type ClientConstructor<C extends grpc.Client> = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C;

export class Lease {
  readonly #owner: LeaseOwner;
  readonly #anchor: Anchor;
  #released = false;
  /** Set when leak detection is on: when the lease was taken and where. */
  leakTimer: NodeJS.Timeout | undefined;

  constructor(owner: LeaseOwner, anchor: Anchor) {
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

  release(): void {
    this.#owner.release(this);
  }

  // A scope that ends after the pool shut down has nothing left to give back.
  [Symbol.dispose](): void {
    this.#owner.releaseAtEnd(this);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#owner.releaseAtEnd(this);
  }

  /**
   * Marks `lease` released on behalf of `owner` and returns its anchor. Throws a typed
   * error for a lease of another pool, a non-lease, or a second release.
   */
  static settle(lease: unknown, owner: LeaseOwner): Anchor {
    if (!(lease instanceof Lease) || lease.#owner !== owner) {
      throw new ForeignLeaseError('release() was given an object that is not a lease of this pool');
    }
    if (lease.#released) {
      throw new LeaseReleasedError(`the lease on ${lease.key}#${lease.anchor} (${lease.address}) was already released`);
    }
    lease.#released = true;
    return lease.#anchor;
  }
}
