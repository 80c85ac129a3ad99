/**
 * What a pool shows of itself: its events, its stats and its anchors, as plain data. The
 * types of the pool's public surface that are not the pool (lib/pool/pool.ts) itself.
 */
import type { AnchorHealth, AnchorState } from '../anchors/anchor.js';
import type { ZoneReport } from '../anchors/anchor-set.js';
import type { SubsetReport } from '../anchors/subset-filter.js';
import type { InvalidEndpoint } from '../discovery/desired-state.js';
import type { EndpointEntry } from '../discovery/endpoint-entry.js';
import type { AnchorPoolError } from '../core/errors.js';
import type { LeaseLeakEvent } from './lease-broker.js';
import type { ResyncInfo, SourceStatus } from '../discovery/source.js';

export interface AnchorStateEvent {
  readonly key: string;
  readonly anchor: number;
  readonly address: string;
  readonly state: AnchorState;
  readonly previous: AnchorState;
  /** Its health at the time (see AnchorHealth); UNCHECKED without health checks. */
  readonly health: AnchorHealth;
  readonly draining: boolean;
}

export interface AnchorHealthEvent {
  readonly key: string;
  readonly anchor: number;
  readonly address: string;
  readonly health: AnchorHealth;
  readonly previous: AnchorHealth;
  readonly state: AnchorState;
  /** Why, when the health check could not give a status (a failed stream, no health service). */
  readonly detail: string | null;
  readonly draining: boolean;
}

export interface PoolEvents {
  'endpoint-added': [endpoint: EndpointEntry];
  'endpoint-updated': [change: { before: EndpointEntry; after: EndpointEntry }];
  'endpoint-removed': [endpoint: EndpointEntry];
  'endpoint-invalid': [record: InvalidEndpoint];
  'anchor-state': [event: AnchorStateEvent];
  'anchor-health': [event: AnchorHealthEvent];
  resync: [info: ResyncInfo];
  'etcd-connected': [info: { revision: number }];
  'etcd-disconnected': [info: { since: Date; error: AnchorPoolError }];
  'lease-leak': [event: LeaseLeakEvent];
  /** Outlier ejection took an endpoint entry out of rotation until `until`. */
  'endpoint-ejected': [event: { key: string; address: string; until: Date; times: number; reason: 'consecutive-failures' | 'failure-percentage' }];
  /** An ejected endpoint entry is back in rotation. */
  'endpoint-returned': [event: { key: string; address: string }];
  /** A key that may grow (`maxAnchors`) opened an extra anchor for capacity, drained one back, or gave up on one that did not connect. */
  'anchor-extra': [event: { key: string; anchor: number; address: string; change: 'opened' | 'drained' | 'failed' }];
  /** An anchor reached its maximum age and a new connection took its place (the old one drains). */
  'anchor-refreshed': [event: { key: string; anchor: number; address: string; ageMillis: number }];
  /**
   * The liveness check dropped a connection that stopped answering ('frozen': its calls
   * fail with UNAVAILABLE and the anchor reconnects), or gave up a connection attempt at
   * connectTimeoutMillis ('connect-timeout': it tries again).
   */
  'anchor-connection-lost': [event: { key: string; anchor: number; address: string; reason: 'frozen' | 'connect-timeout'; detail: string }];
  error: [error: AnchorPoolError];
}

export interface AnchorInfo {
  readonly key: string;
  readonly anchor: number;
  readonly address: string;
  readonly state: AnchorState;
  readonly health: AnchorHealth;
  /** Its endpoint is ejected by outlier detection. */
  readonly ejected: boolean;
  /** May take a lease now: READY, healthy, not ejected, not draining, below its capacity. */
  readonly eligible: boolean;
  /** Opened above its key's N for capacity (`maxAnchors`); drained back when the load falls. */
  readonly extra: boolean;
  readonly leased: number;
  /** Leases handed out on this anchor since it was created. */
  readonly acquired: number;
  readonly draining: boolean;
  /** The zone its key's value names; undefined: none (it counts as in every zone). */
  readonly zone: string | undefined;
  /** Its latency estimate in milliseconds (pick: 'peak-ewma'); undefined before its first measured call or with another pick. */
  readonly latencyMillis: number | undefined;
}

export interface PoolStats {
  readonly endpoints: number;
  readonly invalid: readonly { key: string; reason: string }[];
  readonly anchors: {
    /** Sum of N over the endpoints it keeps anchors to (all of them, or its subset with `subset` on). */
    readonly wanted: number;
    readonly active: number;
    readonly draining: number;
    readonly byState: Record<Exclude<AnchorState, 'SHUTDOWN'>, number>;
    readonly byHealth: Record<AnchorHealth, number>;
    /** Active anchors that may take a lease now. */
    readonly eligible: number;
  };
  readonly leased: number;
  readonly waiting: number;
  /** Leases handed out since the pool started. */
  readonly acquired: number;
  readonly timeouts: number;
  /** Keys ejected by outlier detection now, and ejections since the pool started. */
  readonly ejected: readonly string[];
  readonly ejections: number;
  /** Anchors replaced at their maximum age, replacements that did not connect in time, and keys with one connecting now. */
  readonly refreshes: { readonly done: number; readonly failed: number; readonly connecting: number };
  /** Extra anchors open now (above their keys' N), opened and drained back so far, and attempts that failed. */
  readonly extraAnchors: { readonly open: number; readonly opened: number; readonly drained: number; readonly failed: number };
  /** The liveness check so far: pings sent, silent connections dropped, connection attempts given up at connectTimeoutMillis. */
  readonly liveness: { readonly pings: number; readonly frozen: number; readonly connectTimeouts: number };
  /**
   * Zone-aware routing, when the pool names its zone: the regime (local, spill, panic,
   * no-local, none) and per zone group its anchor slots, those in rotation, its share of
   * the picks now, and the leases granted in it since the pool started. Undefined without a zone.
   */
  readonly zones: ZoneReport | undefined;
  /** The pool's subset of the keys, when `subset` is on: its size, client id, the keys offered, and the keys it keeps anchors to with why. */
  readonly subset: SubsetReport | undefined;
  /** Keys whose share is ramping up now (slowStart), with the factor of their full share they get. */
  readonly slowStart: readonly { readonly key: string; readonly factor: number }[];
  readonly source: SourceStatus;
}

export interface ReadyWaitOptions {
  /** How long to wait (default: the pool's readyTimeoutMillis). */
  readonly timeoutMillis?: number;
  /** Rejects the wait at once with AcquireAbortedError when aborted, at any stage. */
  readonly signal?: AbortSignal;
}
