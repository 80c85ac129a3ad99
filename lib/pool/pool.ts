/**
 * AnchorPool: the facade that wires the lease path together.
 *
 *   source ──► desired entries ──► AnchorSet (reconcile, schedule, pick) ──► LeaseBroker ──► Lease
 *
 * The pool owns no slot table and no waiter queue of its own: the anchor set owns the
 * anchors by (key, index) and the broker the waiters and lease counts. What is left
 * here is the wiring, the lifecycle (ready, close), the events and the views (stats,
 * anchors, metrics). Internal protocol (what pool.client() and the metrics need) is
 * passed as closures, never as public methods.
 */
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { AnchorHealth, AnchorState } from '../anchors/anchor.js';
import { ChannelAnchor, type ChannelAnchorSettings, type ClientConstructor } from './channel-anchor.js';
import { AnchorSet, type AnchorFactory } from '../anchors/anchor-set.js';
import { DEFAULT_GROWTH_SETTINGS } from '../anchors/anchor-growth.js';
import { livenessSettingsOf, subsetSettingsOf, zoneSettingsOf } from '../anchors/anchor-options.js';
import { describeLoss } from '../anchors/liveness-watch.js';
import { isFailure, NO_OUTCOME, outcomeCode, type CallOutcome, type ReleaseOutcome } from '../core/call-outcome.js';
import { createSource } from '../discovery/create-source.js';
import { ClientMembership } from '../discovery/client-membership.js';
import { warnOncePerAddress } from '../anchors/health-watch.js';
import { emitSafely } from '../core/emit-safely.js';
import { deadlineWait } from '../core/deadline-wait.js';
import { AcquireAbortedError, ConfigError, PoolClosedError, ReadyTimeoutError, type AnchorPoolError } from '../core/errors.js';
import { LeaseBroker } from './lease-broker.js';
import type { AcquireOptions, Lease, LeaseAnchor } from './lease.js';
import { Lifecycle } from '../core/lifecycle.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { registerPoolMetrics } from './metrics.js';
import type { Ejection } from '../anchors/outlier-detector.js';
import { OutlierEjection } from '../anchors/outlier-ejection.js';
import { createPoolClient, type LeaseProvider } from './pool-client.js';
import { resolvePoolOptions, type PoolOptions, type ResolvedPoolOptions } from './pool-options.js';
import type { AnchorInfo, PoolEvents, PoolStats, ReadyWaitOptions } from './pool-views.js';
import type { DesiredEntry } from '../anchors/reconcile.js';
import type { EndpointChange, EndpointSnapshot, EndpointSource } from '../discovery/source.js';
import { isTimeoutMillis, MAX_TIMER_MILLIS, timerDelay } from '../core/timer-limit.js';

export type { AcquireOptions } from './lease.js';
export type { LeaseLeakEvent } from './lease-broker.js';

export type { AnchorHealthEvent, AnchorInfo, AnchorStateEvent, PoolEvents, PoolStats, ReadyWaitOptions } from './pool-views.js';

let poolCount = 0;

export class AnchorPool extends EventEmitter<PoolEvents> {
  readonly #options: ResolvedPoolOptions;
  readonly #source: EndpointSource;
  readonly #logger: Logger;
  readonly #lifecycle = new Lifecycle();
  readonly #anchors: AnchorSet<LeaseAnchor>;
  readonly #broker: LeaseBroker<LeaseAnchor>;
  /** ready() callers waiting for a READY anchor; each checks for itself. */
  readonly #readyChecks = new Set<() => void>();
  /** pool.client() routing channels watching the pool's state. */
  readonly #stateWatchers = new Set<() => void>();
  readonly #metricsRegistries = new WeakSet<Registry>();
  /** The registry pool.metrics() made itself, returned again by later calls without one. */
  #ownRegistry: Registry | undefined;
  readonly #provider: LeaseProvider;
  readonly #outliers: OutlierEjection<LeaseAnchor> | undefined;
  /** Coordinated subsets: this pool's registration among the clients, and its place there. */
  readonly #membership: ClientMembership | undefined;

  constructor(options: PoolOptions);
  /** @internal The specs' seam (createPoolWithAnchors): anchors from `factory` instead of grpc-js channels. */
  constructor(options: PoolOptions, factory: AnchorFactory<LeaseAnchor>);
  constructor(options: PoolOptions, factory?: AnchorFactory<LeaseAnchor>) {
    super();
    this.#options = resolvePoolOptions(options);
    this.#source = createSource(this.#options.source);
    this.#logger = options.logger ?? silentLogger;
    poolCount += 1;
    const anchorOptions = this.#options.anchors;
    const subset = subsetSettingsOf(anchorOptions);
    const healthCheck = anchorOptions.healthCheck;
    const settings: ChannelAnchorSettings = {
      credentials: this.#options.credentials,
      channelOptions: this.#options.channelOptions,
      maxStreams: anchorOptions.maxStreamsPerAnchor,
      tag: `pool${poolCount}.${process.pid}`,
      ...(healthCheck && { healthCheck: { ...healthCheck, unimplemented: warnOncePerAddress(() => this.#logger) } }),
    };
    this.#anchors = new AnchorSet<LeaseAnchor>(
      factory ?? ((spec, listener) => new ChannelAnchor(spec, settings, listener)),
      {
        state: (anchor, state, previous) => this.#anchorState(anchor, state, previous),
        health: (anchor, health, previous) => this.#anchorHealth(anchor, health, previous),
        eligible: () => this.#broker.wake(),
        sharesChanged: () => this.#broker.wake(),
        // Over the keys with anchors (the subset, with subsetting): maxEjectionPercent is a share of those.
        applying: (entries) => this.#outliers?.setEntries(new Map([...entries].map(([key, entry]) => [key, entry.addr]))),
        extra: (anchor, change) => {
          this.#logger.debug({ key: anchor.key, anchor: anchor.index, address: anchor.address, change }, `extra anchor ${change}`);
          this.#emit('anchor-extra', { key: anchor.key, anchor: anchor.index, address: anchor.address, change });
        },
        connectionLost: (anchor, reason, detail) => {
          this.#logger.warn({ key: anchor.key, anchor: anchor.index, address: anchor.address, reason }, `anchor ${anchor.key}#${anchor.index}: ${describeLoss(reason, detail)}`);
          this.#emit('anchor-connection-lost', { key: anchor.key, anchor: anchor.index, address: anchor.address, reason, detail });
        },
        refreshed: (old, fresh, ageMillis) => {
          this.#logger.debug({ key: fresh.key, anchor: fresh.index, address: fresh.address, ageMillis: Math.round(ageMillis) }, 'anchor refreshed');
          this.#emit('anchor-refreshed', { key: fresh.key, anchor: fresh.index, address: fresh.address, ageMillis });
        },
      },
      {
        drainTimeoutMillis: this.#options.drainTimeoutMillis,
        pick: anchorOptions.pick,
        growth: { ...DEFAULT_GROWTH_SETTINGS, idleMillis: anchorOptions.extraAnchorIdleMillis },
        liveness: livenessSettingsOf(anchorOptions),
        zone: zoneSettingsOf(anchorOptions),
        slowStart: anchorOptions.slowStart,
        subset,
      },
    );
    const coordination = this.#options.coordination;
    if (coordination !== undefined && subset !== undefined) {
      const membership = new ClientMembership({ ...coordination, clientId: subset.clientId, logger: this.#logger });
      membership.on('view', (view) => this.#anchors.placeSubset(view));
      membership.on('late', () => this.#anchors.placeSubset(undefined));
      membership.on('conflict', (error) => this.#emit('error', error));
      this.#membership = membership;
    }
    this.#broker = new LeaseBroker<LeaseAnchor>(
      this.#options,
      {
        pick: () => this.#anchors.pick(),
        starved: () => this.#anchors.starved(),
        describe: () => this.#describe(),
        outcome: (anchor, outcome) => {
          if (!this.#lifecycle.closing) this.#outliers?.record(anchor, outcome);
        },
        ...(anchorOptions.pick === 'peak-ewma' && {
          held: (anchor: LeaseAnchor, millis: number, now: number, outcome: ReleaseOutcome) => {
            // A cancelled call took as long as the caller chose: it says nothing of the backend.
            if (outcome === NO_OUTCOME || outcomeCode(outcome) !== grpcStatus.CANCELLED) anchor.latency.observe(millis, now, isFailure(outcome));
          },
        }),
        leaked: (event) => {
          // A lease still out when close() finished was reclaimed: not a leak of the caller's any more.
          if (this.#lifecycle.finished) return;
          this.#logger.warn({ ...event }, `lease on ${event.key}#${event.anchor} held for over ${this.#options.leakDetectionMillis} ms; acquired at: ${event.stack}`);
          this.#emit('lease-leak', event);
        },
      },
      this.#lifecycle,
    );
    const outliers = anchorOptions.outlierDetection;
    this.#outliers =
      outliers === undefined
        ? undefined
        : new OutlierEjection(outliers, this.#anchors, { ejected: (ejection) => this.#ejected(ejection), returned: (key) => this.#returned(key) });
    this.#provider = {
      acquire: (acquireOptions) => this.#broker.acquire(acquireOptions),
      tryAcquire: () => this.#broker.tryAcquire(),
      releaseAtEnd: (lease, outcome) => this.#broker.releaseAtEnd(lease, outcome),
      hasReadyAnchor: () => this.#anchors.hasReady(),
      isClosed: () => this.#lifecycle.closing,
      onStateChange: (listener) => {
        this.#stateWatchers.add(listener);
        return () => this.#stateWatchers.delete(listener);
      },
      describeTarget: () => this.#source.status().target,
    };
    const source = this.#source;
    source.on('change', (change) => this.#onChange(change));
    source.on('invalid', (record) => this.#emit('endpoint-invalid', record));
    source.on('resync', (info) => this.#emit('resync', info));
    source.on('connected', (info) => this.#emit('etcd-connected', info));
    source.on('disconnected', (info) => this.#emit('etcd-disconnected', info));
    source.on('error', (error) => this.#emit('error', error));
    source.start();
    this.#membership?.start();
  }

  // ── leases ────────────────────────────────────────────────────────────────

  /** A lease on the next READY anchor with a free slot, in round-robin order; waits if none has one. */
  acquire(options?: AcquireOptions): Promise<Lease> {
    return this.#broker.acquire(options);
  }

  /** A lease right now, or undefined when no anchor has a free slot (or callers are already waiting). */
  tryAcquire(): Lease | undefined {
    return this.#broker.tryAcquire();
  }

  /**
   * Gives a lease back (the same as lease.release()). Throws LeaseReleasedError on a
   * second release, ForeignLeaseError for another pool's lease, and PoolClosedError once
   * close() has finished (the lease was reclaimed when drainTimeoutMillis ran out).
   * Releasing while close() drains is the normal way to let it finish.
   */
  release(lease: Lease, outcome?: CallOutcome): void {
    this.#broker.release(lease, outcome);
  }

  /**
   * acquire(), run fn, and release in finally. A gRPC error fn throws (one with a numeric
   * `code`, as grpc-js's ServiceError) is the lease's outcome for outlier ejection; other
   * errors are the caller's own and count as nothing.
   */
  async use<T>(fn: (lease: Lease) => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    const lease = await this.#broker.acquire(options);
    let outcome: ReleaseOutcome;
    try {
      return await fn(lease);
    } catch (err) {
      outcome = typeof (err as { code?: unknown } | null)?.code === 'number' ? (err as CallOutcome) : NO_OUTCOME;
      throw err;
    } finally {
      this.#broker.releaseAtEnd(lease, outcome);
    }
  }

  /**
   * A client stub whose every call (unary or streaming) takes a lease and releases it
   * when the call ends, however it ends. Calls wait for a lease like acquire() does,
   * bounded by their deadline.
   */
  client<C extends grpc.Client>(Ctor: ClientConstructor<C>, options?: grpc.ClientOptions): C {
    return createPoolClient(this.#provider, Ctor, options);
  }

  /**
   * Registers the pool's Prometheus series (see lib/pool/metrics.ts) in `registry`, or in a
   * registry of its own, and returns it. Calling it again with the same registry (or
   * again without one) returns that registry as it is; with another registry, both carry
   * the series (every acquire wait is observed in each). prom-client is loaded only when
   * this is called.
   */
  metrics(registry?: Registry): Registry {
    if (registry === undefined && this.#ownRegistry !== undefined) return this.#ownRegistry;
    if (registry !== undefined && this.#metricsRegistries.has(registry)) return registry;
    const registered = registerPoolMetrics({ stats: () => this.stats(), observeWaits: (observer) => this.#broker.observeWaits(observer) }, registry);
    this.#metricsRegistries.add(registered);
    if (registry === undefined) this.#ownRegistry = registered;
    return registered;
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────

  /**
   * Resolves once the first snapshot is applied and at least one anchor is READY and healthy (SERVING, or not checked).
   * Rejects with the source's error (EtcdUnavailableError, EtcdAuthError) when no
   * snapshot arrives in time, ReadyTimeoutError when no anchor becomes READY in time,
   * PoolClosedError at once when the pool is closed, AcquireAbortedError at once when
   * `signal` aborts. It leaves no timer behind, however it ends.
   */
  ready(options: ReadyWaitOptions = {}): Promise<void> {
    if (this.#lifecycle.closing) return Promise.reject(new PoolClosedError('ready() on a closed pool'));
    const timeoutMillis = options.timeoutMillis ?? this.#options.readyTimeoutMillis;
    if (!isTimeoutMillis(timeoutMillis)) {
      return Promise.reject(new ConfigError(`ready(): timeoutMillis must be an integer from 0 to ${MAX_TIMER_MILLIS}, got ${String(timeoutMillis)}`));
    }
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(new AcquireAbortedError('ready() was aborted', { cause: signal.reason }));
    if (this.#source.status().ready && this.#anchors.hasReady()) return Promise.resolve();
    let sourceReady = false;
    return deadlineWait<void>(
      this.#lifecycle,
      {
        timeoutMillis,
        signal,
        // Until the source is ready, its own timeout (same length, armed first) ends the wait: it names what etcd said.
        timedOut: () => (sourceReady ? new ReadyTimeoutError(`no anchor became READY within ${timeoutMillis} ms (${this.#describe()})`) : undefined),
        aborted: (reason) => new AcquireAbortedError('ready() was aborted while waiting', { cause: reason }),
        closed: () => new PoolClosedError('the pool was closed while ready() waited'),
      },
      (wait) => {
        const stopSource = new AbortController();
        const check = (): void => {
          if (sourceReady && this.#anchors.hasReady()) wait.resolve();
        };
        this.#source.ready({ timeoutMillis, signal: stopSource.signal }).then(
          () => {
            sourceReady = true;
            check();
          },
          (error: Error) => wait.reject(error),
        );
        this.#readyChecks.add(check);
        return () => {
          stopSource.abort();
          this.#readyChecks.delete(check);
        };
      },
    );
  }

  /**
   * Rejects waiters (acquire and ready) and new acquires at once, stops discovery, drains
   * leases (drainTimeoutMillis), closes every channel. Every call returns the same promise.
   */
  close(): Promise<void> {
    return this.#lifecycle.close(() => this.#shutdown());
  }

  /** close() was called: the pool takes no new work (its shutdown may still be running). */
  get closed(): boolean {
    return this.#lifecycle.closing;
  }

  stats(): PoolStats {
    const snapshot = this.#source.snapshot();
    const broker = this.#broker;
    return {
      endpoints: snapshot.endpoints.size,
      invalid: [...snapshot.invalid.values()].map(({ key, reason }) => ({ key, reason })),
      anchors: {
        wanted: this.#anchors.wanted,
        active: this.#anchors.activeCount,
        draining: this.#anchors.drainingCount,
        byState: this.#anchors.byState(),
        byHealth: this.#anchors.byHealth(),
        eligible: this.#anchors.eligibleAnchorCount(),
      },
      leased: broker.leased,
      waiting: broker.waiting,
      acquired: broker.acquired,
      timeouts: broker.timeouts,
      ejected: [...snapshot.endpoints.keys()].filter((key) => this.#outliers?.isEjected(key) === true),
      ejections: this.#outliers?.ejections ?? 0,
      refreshes: this.#anchors.refreshCounts(),
      extraAnchors: this.#anchors.extraCounts(),
      liveness: this.#anchors.livenessCounts(),
      zones: this.#anchors.zoneReport(),
      subset: this.#anchors.subsetReport(),
      slowStart: this.#anchors.slowStartRamps(),
      source: this.#source.status(),
    };
  }

  /** What discovery sees: the endpoints, the invalid keys and the etcd revision. */
  snapshot(): EndpointSnapshot {
    return this.#source.snapshot();
  }

  /** Every anchor, active ones in (key, index) order, then the draining ones. */
  anchors(): AnchorInfo[] {
    const info = (a: LeaseAnchor): AnchorInfo => ({
      key: a.key,
      anchor: a.index,
      address: a.address,
      state: a.state,
      health: a.health,
      ejected: a.ejected,
      eligible: a.eligible,
      extra: this.#anchors.isExtra(a),
      leased: a.streams,
      acquired: a.acquired,
      draining: a.draining,
      zone: this.#anchors.zoneOf(a.key),
      latencyMillis: this.#options.anchors.pick === 'peak-ewma' && a.latency.measured ? a.latency.estimate(performance.now()) : undefined,
    });
    const active = [...this.#anchors.active()].sort((a, b) => (a.key === b.key ? a.index - b.index : a.key < b.key ? -1 : 1));
    return [...active.map(info), ...[...this.#anchors.draining()].map(info)];
  }

  // ── internals ─────────────────────────────────────────────────────────────

  #anchorState(anchor: LeaseAnchor, state: AnchorState, previous: AnchorState): void {
    this.#emit('anchor-state', { key: anchor.key, anchor: anchor.index, address: anchor.address, state, previous, health: anchor.health, draining: anchor.draining });
    this.#eligibilityMayHaveChanged();
  }

  #anchorHealth(anchor: LeaseAnchor, health: AnchorHealth, previous: AnchorHealth): void {
    this.#emit('anchor-health', { key: anchor.key, anchor: anchor.index, address: anchor.address, health, previous, state: anchor.state, detail: anchor.healthDetail, draining: anchor.draining });
    this.#eligibilityMayHaveChanged();
  }

  /** ready() and pool.client()'s routing channel look at whether an anchor can serve. */
  #eligibilityMayHaveChanged(): void {
    for (const watcher of [...this.#stateWatchers]) watcher();
    for (const check of [...this.#readyChecks]) check();
  }

  #onChange(change: EndpointChange): void {
    for (const endpoint of change.added) this.#emit('endpoint-added', endpoint);
    for (const update of change.updated) this.#emit('endpoint-updated', update);
    for (const endpoint of change.removed) this.#emit('endpoint-removed', endpoint);
    if (this.#lifecycle.closing) return;
    const desired = new Map<string, DesiredEntry>();
    const maxAge = this.#options.anchors.anchorMaxAgeMillis;
    for (const [key, endpoint] of this.#source.snapshot().endpoints) {
      // A key's own maxAgeSeconds wins over the pool's anchorMaxAgeMillis (0 turns it off for the key).
      const maxAgeMillis = endpoint.maxAgeSeconds !== undefined ? endpoint.maxAgeSeconds * 1000 : maxAge;
      desired.set(key, {
        addr: endpoint.addr,
        anchors: endpoint.anchors,
        ...(maxAgeMillis > 0 && { maxAgeMillis }),
        ...(endpoint.maxAnchors !== undefined && { maxAnchors: endpoint.maxAnchors }),
        ...(endpoint.zone !== undefined && { zone: endpoint.zone }),
      });
    }
    const { created, drained } = this.#anchors.apply(desired);
    if (created > 0 || drained > 0) this.#logger.debug({ created, drained, anchors: this.#anchors.activeCount }, 'reconciled anchors');
  }

  #addressOf(key: string): string {
    return this.#source.snapshot().endpoints.get(key)?.addr ?? '';
  }

  #ejected(ejection: Ejection): void {
    const address = this.#addressOf(ejection.key);
    const until = new Date(ejection.until);
    this.#logger.warn(
      { key: ejection.key, address, reason: ejection.reason, times: ejection.times, until: until.toISOString() },
      `ejecting ${ejection.key} (${address}) until ${until.toISOString()}: ${ejection.reason}`,
    );
    this.#emit('endpoint-ejected', { key: ejection.key, address, until, times: ejection.times, reason: ejection.reason });
  }

  #returned(key: string): void {
    this.#logger.info({ key }, `${key} is back in rotation after its ejection`);
    this.#emit('endpoint-returned', { key, address: this.#addressOf(key) });
  }

  #describe(): string {
    const s = this.stats();
    const states = Object.entries(s.anchors.byState)
      .filter(([, n]) => n > 0)
      .map(([state, n]) => `${n} ${state}`)
      .join(', ');
    const health = Object.entries(s.anchors.byHealth)
      .filter(([h, n]) => n > 0 && h !== 'UNCHECKED')
      .map(([h, n]) => `${n} ${h}`)
      .join(', ');
    return `${s.endpoints} endpoint(s), ${s.anchors.active} anchor(s)${states ? `: ${states}` : ''}${health ? ` (health: ${health})` : ''}, ${s.leased} leased, ${s.waiting} waiting`;
  }

  async #shutdown(): Promise<void> {
    this.#outliers?.close();
    this.#anchors.freezeSubset();
    // Waiters (acquire and ready) were rejected by the lifecycle before this runs;
    // pool.client() routing channels watching for a state change now see SHUTDOWN.
    for (const watcher of [...this.#stateWatchers]) watcher();
    await Promise.all([this.#source.close(), this.#membership?.close()]);
    // Ref'd while close() is awaited: leases still held get drainTimeoutMillis.
    const keepAlive = setTimeout(() => undefined, timerDelay(this.#options.drainTimeoutMillis + 1000));
    await this.#anchors.drainAll();
    clearTimeout(keepAlive);
  }

  /** Every listener gets the event; one that throws is rethrown on a later tick. An 'error' nobody listens to is logged. */
  #emit<E extends keyof PoolEvents>(event: E, ...args: PoolEvents[E]): void {
    if (event === 'error' && this.listenerCount('error') === 0) {
      const error = args[0] as AnchorPoolError;
      this.#logger.error({ code: error.code, error: error.message }, error.message);
      return;
    }
    emitSafely(this, event, ...args);
  }
}

export function createPool(options: PoolOptions): AnchorPool {
  return new AnchorPool(options);
}

/**
 * Internal seam for specs (not exported from the package): a pool whose anchors come
 * from `factory` instead of real grpc-js channels.
 */
export function createPoolWithAnchors(options: PoolOptions, factory: AnchorFactory<LeaseAnchor>): AnchorPool {
  return new AnchorPool(options, factory);
}
