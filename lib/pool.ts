/**
 * AnchorPool: discovery → desired state → reconcile → anchors → picker → lease.
 * It owns the lifecycle (ready, close), the anchors by (key, index), the waiters and
 * the lease accounting. The acquire/release hot path is a pick and two counters; every
 * other piece of work (reconcile, schedule rebuild) happens on topology changes only.
 */
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { Anchor, type AnchorOwner, type AnchorState } from './anchor.js';
import { createSource } from './create-source.js';
import type { InvalidEndpoint } from './desired-state.js';
import type { Endpoint } from './endpoint.js';
import {
  AcquireAbortedError,
  AcquireTimeoutError,
  type AnchorPoolError,
  ConfigError,
  NoAnchorAvailableError,
  PoolClosedError,
  ReadyTimeoutError,
  TooManyWaitersError,
} from './errors.js';
import { Lease, type AcquireOptions, type LeaseOwner } from './lease.js';

export type { AcquireOptions } from './lease.js';
import { createPoolClient, type LeaseProvider } from './pool-client.js';
import { silentLogger, type Logger } from './logger.js';
import { Picker } from './picker.js';
import { resolvePoolOptions, type PoolOptions, type ResolvedPoolOptions } from './pool-config.js';
import { reconcile, type DesiredEntry, type LiveEntry } from './reconcile.js';
import { buildSchedule } from './schedule.js';
import type { EndpointChange, EndpointSnapshot, EndpointSource, ResyncInfo, SourceStatus } from './source.js';
import { WaiterQueue } from './waiter-queue.js';
import { registerPoolMetrics, type MetricsSource } from './metrics.js';
import type { Registry } from 'prom-client';

export interface AnchorStateEvent {
  readonly key: string;
  readonly anchor: number;
  readonly address: string;
  readonly state: AnchorState;
  readonly previous: AnchorState;
  readonly draining: boolean;
}

export interface LeaseLeakEvent {
  readonly key: string;
  readonly anchor: number;
  readonly address: string;
  readonly heldMillis: number;
  /** Stack of the acquire() that took the lease. */
  readonly stack: string;
}

export interface PoolEvents {
  'endpoint-added': [endpoint: Endpoint];
  'endpoint-updated': [change: { before: Endpoint; after: Endpoint }];
  'endpoint-removed': [endpoint: Endpoint];
  'endpoint-invalid': [record: InvalidEndpoint];
  'anchor-state': [event: AnchorStateEvent];
  resync: [info: ResyncInfo];
  'etcd-connected': [info: { revision: number }];
  'etcd-disconnected': [info: { since: Date; error: AnchorPoolError }];
  'lease-leak': [event: LeaseLeakEvent];
  error: [error: AnchorPoolError];
}

export interface AnchorInfo {
  readonly key: string;
  readonly anchor: number;
  readonly address: string;
  readonly state: AnchorState;
  readonly leased: number;
  /** Leases handed out on this anchor since it was created. */
  readonly acquired: number;
  readonly draining: boolean;
}

export interface PoolStats {
  readonly endpoints: number;
  readonly invalid: readonly { key: string; reason: string }[];
  readonly anchors: {
    /** Sum of N over all endpoints. */
    readonly wanted: number;
    readonly active: number;
    readonly draining: number;
    readonly byState: Record<Exclude<AnchorState, 'SHUTDOWN'>, number>;
  };
  readonly leased: number;
  readonly waiting: number;
  /** Leases handed out since the pool started. */
  readonly acquired: number;
  readonly timeouts: number;
  readonly source: SourceStatus;
}

interface PendingAcquire {
  readonly priority: number;
  readonly since: number;
  active: boolean;
  resolve(lease: Lease): void;
  reject(error: Error): void;
  cleanup(): void;
}

let poolCount = 0;
const slotOf = (key: string, index: number): string => `${key}#${index}`;

function validateAcquireOptions(options: AcquireOptions): void {
  const { timeoutMillis, priority, signal } = options;
  if (timeoutMillis !== undefined && !(Number.isInteger(timeoutMillis) && timeoutMillis >= 0 && timeoutMillis <= 2_147_483_647)) {
    throw new ConfigError(`acquire(): timeoutMillis must be an integer from 0 to 2147483647, got ${String(timeoutMillis)}`);
  }
  if (priority !== undefined && !Number.isFinite(priority)) {
    throw new ConfigError(`acquire(): priority must be a finite number, got ${String(priority)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new ConfigError('acquire(): signal must be an AbortSignal');
  }
}

export class AnchorPool extends EventEmitter<PoolEvents> implements AnchorOwner, LeaseOwner, LeaseProvider, MetricsSource {
  readonly #options: ResolvedPoolOptions;
  readonly #source: EndpointSource;
  readonly #logger: Logger;
  readonly #tag: string;
  readonly #active = new Map<string, Anchor>();
  readonly #draining = new Set<Anchor>();
  readonly #picker = new Picker<Anchor>();
  readonly #waiters = new WaiterQueue<PendingAcquire>();
  readonly #readyWaiters = new Set<() => void>();
  #leased = 0;
  #acquired = 0;
  #timeouts = 0;
  #wanted = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** close() has finished: every anchor is closed, and a lease still held was reclaimed. */
  #shutDown = false;
  #allClosed: (() => void) | undefined;
  #servePending = false;
  #waitObserver: ((seconds: number) => void) | undefined;

  constructor(options: PoolOptions) {
    super();
    this.#options = resolvePoolOptions(options);
    this.#source = createSource(this.#options.source);
    this.#logger = options.logger ?? silentLogger;
    poolCount += 1;
    this.#tag = `pool${poolCount}.${process.pid}`;
    const source = this.#source;
    source.on('change', (change) => this.#onChange(change));
    source.on('invalid', (record) => this.#emit('endpoint-invalid', record));
    source.on('resync', (info) => this.#emit('resync', info));
    source.on('connected', (info) => this.#emit('etcd-connected', info));
    source.on('disconnected', (info) => this.#emit('etcd-disconnected', info));
    source.on('error', (error) => this.#emit('error', error));
    source.start();
  }

  // ── leases ────────────────────────────────────────────────────────────────

  /** A lease on the next READY anchor with a free slot, in round-robin order; waits if none has one. */
  acquire(options?: AcquireOptions): Promise<Lease> {
    if (options !== undefined) {
      try {
        validateAcquireOptions(options);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (this.#closed) return Promise.reject(new PoolClosedError('acquire() on a closed pool'));
    const lease = this.tryAcquire();
    return lease === undefined ? this.#wait(options) : Promise.resolve(lease);
  }

  /** A lease right now, or undefined when no anchor has a free slot (or callers are already waiting). */
  tryAcquire(): Lease | undefined {
    if (this.#closed || this.#waiters.size > 0) return undefined;
    const anchor = this.#picker.pick();
    if (anchor === undefined) return undefined;
    this.#waitObserver?.(0);
    return this.#grant(anchor);
  }

  /** Registers the pool's Prometheus series (see lib/metrics.ts) in `registry`, or a new one. */
  metrics(registry?: Registry): Registry {
    return registerPoolMetrics(this, registry);
  }

  /** Called with the wait of every granted lease, in seconds (used by metrics). */
  observeAcquireWait(observer: (seconds: number) => void): void {
    this.#waitObserver = observer;
  }

  /**
   * Gives a lease back. Throws LeaseReleasedError on a second release, ForeignLeaseError
   * for another pool's lease, and PoolClosedError once close() has finished (the lease was
   * reclaimed when drainTimeoutMillis ran out). Releasing while close() drains is the
   * normal way to let it finish.
   */
  release(lease: Lease): void {
    const anchor = Lease.settle(lease, this);
    if (lease.leakTimer !== undefined) clearTimeout(lease.leakTimer);
    if (this.#shutDown) {
      throw new PoolClosedError(`release() after close() finished: the lease on ${lease.key}#${lease.anchor} (${lease.address}) was already reclaimed`);
    }
    this.#leased -= 1;
    anchor.give();
    if (this.#waiters.size > 0) this.#serve();
  }

  /** Gives back a lease whose work ended (a call's status, use()'s finally); a no-op once released or after close() finished. */
  releaseAtEnd(lease: Lease): void {
    if (!lease.released && !this.#shutDown) this.release(lease);
  }

  /** acquire(), run fn, and release in finally. */
  async use<T>(fn: (lease: Lease) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    const lease = await this.acquire(options);
    try {
      return await fn(lease);
    } finally {
      this.releaseAtEnd(lease);
    }
  }

  /**
   * A client stub whose every call (unary or streaming) takes a lease and releases it
   * when the call ends, however it ends. Calls wait for a lease like acquire() does,
   * bounded by their deadline.
   */
  client<C extends grpc.Client>(
    Ctor: new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C,
    options?: grpc.ClientOptions,
  ): C {
    return createPoolClient(this, Ctor, options);
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────

  /** Resolves once the first snapshot is applied and at least one anchor is READY. */
  async ready(options: { timeoutMillis?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (this.#closed) throw new PoolClosedError('ready() on a closed pool');
    const timeoutMillis = options.timeoutMillis ?? this.#options.readyTimeoutMillis;
    const startedAt = Date.now();
    const sourceOptions = options.signal ? { timeoutMillis, signal: options.signal } : { timeoutMillis };
    await this.#source.ready(sourceOptions);
    if (this.hasReadyAnchor()) return;
    const remaining = Math.max(0, timeoutMillis - (Date.now() - startedAt));
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#readyWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#readyWaiters.delete(done);
        reject(new ReadyTimeoutError(`no anchor became READY within ${timeoutMillis} ms (${this.#describe()})`));
      }, remaining);
      this.#readyWaiters.add(done);
    });
  }

  /** Rejects waiters and new acquires, stops discovery, drains leases (drainTimeoutMillis), closes every channel. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  get closed(): boolean {
    return this.#closed;
  }

  stats(): PoolStats {
    const byState = { IDLE: 0, CONNECTING: 0, READY: 0, TRANSIENT_FAILURE: 0 };
    for (const anchor of this.#active.values()) {
      if (anchor.state !== 'SHUTDOWN') byState[anchor.state] += 1;
    }
    const snapshot = this.#source.snapshot();
    return {
      endpoints: snapshot.endpoints.size,
      invalid: [...snapshot.invalid.values()].map(({ key, reason }) => ({ key, reason })),
      anchors: { wanted: this.#wanted, active: this.#active.size, draining: this.#draining.size, byState },
      leased: this.#leased,
      waiting: this.#waiters.size,
      acquired: this.#acquired,
      timeouts: this.#timeouts,
      source: this.#source.status(),
    };
  }

  /** What discovery sees: the endpoints, the invalid keys and the etcd revision. */
  snapshot(): EndpointSnapshot {
    return this.#source.snapshot();
  }

  /** Every anchor, active ones in (key, index) order, then the draining ones. */
  anchors(): AnchorInfo[] {
    const info = (a: Anchor): AnchorInfo => ({
      key: a.key,
      anchor: a.index,
      address: a.address,
      state: a.state,
      leased: a.leases,
      acquired: a.acquired,
      draining: a.draining,
    });
    const active = [...this.#active.values()].sort((a, b) => (a.key === b.key ? a.index - b.index : a.key < b.key ? -1 : 1));
    return [...active.map(info), ...[...this.#draining].map(info)];
  }

  // ── LeaseProvider (for pool.client) ──────────────────────────────────────

  hasReadyAnchor(): boolean {
    for (const anchor of this.#active.values()) if (anchor.state === 'READY') return true;
    return false;
  }

  onStateChange(listener: () => void): () => void {
    this.on('anchor-state', listener);
    return () => this.off('anchor-state', listener);
  }

  describeTarget(): string {
    return this.#source.status().target;
  }

  // ── AnchorOwner ───────────────────────────────────────────────────────────

  anchorState(anchor: Anchor, state: AnchorState, previous: AnchorState): void {
    this.#emit('anchor-state', { key: anchor.key, anchor: anchor.index, address: anchor.address, state, previous, draining: anchor.draining });
    if (state === 'READY' && this.#active.get(slotOf(anchor.key, anchor.index)) === anchor) {
      for (const done of [...this.#readyWaiters]) done();
    }
  }

  anchorEligibility(anchor: Anchor, eligible: boolean): void {
    // Only the anchor that currently holds its slot counts; a replaced one is ignored.
    if (this.#active.get(slotOf(anchor.key, anchor.index)) !== anchor) return;
    this.#picker.eligibilityChanged(eligible);
    if (eligible && this.#waiters.size > 0 && !this.#servePending) {
      // Not from inside the anchor's own state change: serve on the next microtask.
      this.#servePending = true;
      queueMicrotask(() => {
        this.#servePending = false;
        this.#serve();
      });
    }
  }

  anchorClosed(anchor: Anchor): void {
    this.#draining.delete(anchor);
    if (this.#closed && this.#draining.size === 0) this.#allClosed?.();
  }

  // ── internals ─────────────────────────────────────────────────────────────

  #grant(anchor: Anchor): Lease {
    anchor.take();
    this.#leased += 1;
    this.#acquired += 1;
    const lease = new Lease(this, anchor);
    const leakMillis = this.#options.leakDetectionMillis;
    if (leakMillis > 0) {
      const stack = new Error('lease acquired here').stack ?? '';
      const takenAt = Date.now();
      lease.leakTimer = setTimeout(() => {
        const event = { key: lease.key, anchor: lease.anchor, address: lease.address, heldMillis: Date.now() - takenAt, stack };
        this.#logger.warn({ ...event }, `lease on ${lease.key}#${lease.anchor} held for over ${leakMillis} ms; acquired at: ${stack}`);
        this.#emit('lease-leak', event);
      }, leakMillis);
      lease.leakTimer.unref();
    }
    return lease;
  }

  #wait(options: AcquireOptions | undefined): Promise<Lease> {
    if (this.#options.failFast) {
      return Promise.reject(new NoAnchorAvailableError(`no anchor can take a lease now (failFast): ${this.#describe()}`));
    }
    if (this.#waiters.size >= this.#options.maxWaitingClients) {
      return Promise.reject(new TooManyWaitersError(`${this.#waiters.size} callers are already waiting (maxWaitingClients)`));
    }
    const timeoutMillis = options?.timeoutMillis ?? this.#options.acquireTimeoutMillis;
    const signal = options?.signal;
    return new Promise<Lease>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new AcquireAbortedError('acquire() was aborted', { cause: signal.reason }));
        return;
      }
      const giveUp = (error: Error): void => {
        if (!waiter.active) return;
        waiter.active = false;
        this.#waiters.remove();
        waiter.cleanup();
        reject(error);
      };
      const onAbort = (): void => giveUp(new AcquireAbortedError('acquire() was aborted while waiting', { cause: signal?.reason }));
      const timer = setTimeout(() => {
        this.#timeouts += 1;
        giveUp(new AcquireTimeoutError(`no anchor could take a lease within ${timeoutMillis} ms (${this.#describe()})`));
      }, timeoutMillis);
      const waiter: PendingAcquire = {
        priority: options?.priority ?? 0,
        since: performance.now(),
        active: true,
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Hands free slots to waiters, in priority order. */
  #serve(): void {
    while (this.#waiters.size > 0) {
      const anchor = this.#picker.pick();
      if (anchor === undefined) return;
      const waiter = this.#waiters.shift()!;
      waiter.active = false;
      waiter.cleanup();
      this.#waitObserver?.((performance.now() - waiter.since) / 1000);
      waiter.resolve(this.#grant(anchor));
    }
  }

  #onChange(change: EndpointChange): void {
    for (const endpoint of change.added) this.#emit('endpoint-added', endpoint);
    for (const update of change.updated) this.#emit('endpoint-updated', update);
    for (const endpoint of change.removed) this.#emit('endpoint-removed', endpoint);
    if (!this.#closed) this.#reconcile();
  }

  #reconcile(): void {
    const endpoints = this.#source.snapshot().endpoints;
    const desired = new Map<string, DesiredEntry>();
    let wanted = 0;
    for (const [key, endpoint] of endpoints) {
      desired.set(key, { addr: endpoint.addr, anchors: endpoint.anchors });
      wanted += endpoint.anchors;
    }
    this.#wanted = wanted;
    const live = new Map<string, LiveEntry>();
    for (const anchor of this.#active.values()) {
      const entry = live.get(anchor.key);
      live.set(anchor.key, { addr: anchor.address, count: (entry?.count ?? 0) + 1 });
    }
    const plan = reconcile(desired, live);
    for (const { key, index } of plan.drain) {
      const slot = slotOf(key, index);
      const anchor = this.#active.get(slot)!;
      this.#active.delete(slot);
      this.#draining.add(anchor);
      anchor.drain(this.#options.drainTimeoutMillis);
    }
    const created: Anchor[] = [];
    for (const { key, index, addr } of plan.create) {
      const anchor = new Anchor(
        {
          key,
          index,
          address: addr,
          credentials: this.#options.credentials,
          channelOptions: this.#options.channelOptions,
          maxLeases: this.#options.maxLeasesPerAnchor,
          tag: this.#tag,
        },
        this,
      );
      this.#active.set(slotOf(key, index), anchor);
      created.push(anchor);
    }
    if (plan.drain.length > 0 || plan.create.length > 0) {
      const entries = [...desired].map(([key, entry]) => ({
        key,
        anchors: Array.from({ length: entry.anchors }, (_, i) => this.#active.get(slotOf(key, i))!),
      }));
      this.#picker.setSchedule(buildSchedule(entries));
      this.#logger.debug({ created: plan.create.length, drained: plan.drain.length, anchors: this.#active.size }, 'reconciled anchors');
    }
    // Started only once scheduled, so their first state changes find them in the picker.
    for (const anchor of created) anchor.start();
  }


  #describe(): string {
    const s = this.stats();
    const states = Object.entries(s.anchors.byState)
      .filter(([, n]) => n > 0)
      .map(([state, n]) => `${n} ${state}`)
      .join(', ');
    return `${s.endpoints} endpoint(s), ${s.anchors.active} anchor(s)${states ? `: ${states}` : ''}, ${s.leased} leased, ${s.waiting} waiting`;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    const closed = new PoolClosedError('the pool was closed while waiting for a lease');
    for (let waiter = this.#waiters.shift(); waiter !== undefined; waiter = this.#waiters.shift()) {
      waiter.active = false;
      waiter.cleanup();
      waiter.reject(closed);
    }
    await this.#source.close();
    const allClosed = new Promise<void>((resolve) => (this.#allClosed = resolve));
    for (const anchor of this.#active.values()) this.#draining.add(anchor);
    this.#active.clear();
    this.#picker.setSchedule([]);
    // Ref'd while close() is awaited: leases still held get drainTimeoutMillis.
    const keepAlive = setTimeout(() => undefined, this.#options.drainTimeoutMillis + 1000);
    for (const anchor of [...this.#draining]) anchor.drain(this.#options.drainTimeoutMillis);
    if (this.#draining.size > 0) await allClosed;
    clearTimeout(keepAlive);
    this.#shutDown = true;
    this.#leased = 0; // leases still held were reclaimed with their anchors
  }

  /** A listener that throws must not break the pool; an 'error' without listeners is logged, not thrown. */
  #emit<E extends keyof PoolEvents>(event: E, ...args: PoolEvents[E]): void {
    if (event === 'error' && this.listenerCount('error') === 0) return;
    try {
      (this.emit as (event: E, ...args: PoolEvents[E]) => boolean)(event, ...args);
    } catch (err) {
      this.#logger.error({ event, error: String(err) }, `a listener of "${event}" threw`);
    }
  }
}

export function createPool(options: PoolOptions): AnchorPool {
  return new AnchorPool(options);
}
