/**
 * EndpointSource: turns a target into a validated, always-current set of endpoint
 * entries. Implementations: source-etcd.ts (an etcd key prefix) and source-static.ts
 * (pass:///). The contract every implementation keeps:
 *   - No I/O and no events before start(); events are never emitted synchronously
 *     from start() or the constructor.
 *   - `change` events are coalesced diffs. Applying them in order to an empty map
 *     yields snapshot().endpoints as of the last change.
 *   - An invalid value never removes a valid entry: the key keeps its last valid
 *     value (or stays absent) and an `invalid` event says why.
 *   - While the backing store is unreachable the last known state is kept.
 */
import type { EndpointEntry } from './endpoint-entry.js';
import type { EndpointDiff, InvalidEndpoint } from './desired-state.js';
import type { AnchorPoolError } from '../core/errors.js';

export type ChangeCause = 'snapshot' | 'watch' | 'resync';

export interface EndpointChange extends EndpointDiff {
  /** etcd revision the state reflects (0 for static targets). */
  readonly revision: number;
  readonly cause: ChangeCause;
}

/**
 * Why the source re-listed the prefix. `reconnect`: the etcd client was replaced because
 * its connection was suspect (this source's or another's on the shared client);
 * `no-leader`: the member carrying the watch had lost its leader (the leader check);
 * `members-changed`: auto-sync moved the client to the cluster's current members.
 */
export type ResyncReason = 'initial' | 'reconnect' | 'no-leader' | 'members-changed' | 'disconnected' | 'compacted' | 'watch-error' | 'watch-ended' | 'watchdog';

export interface ResyncInfo {
  readonly reason: ResyncReason;
  readonly revision: number;
  readonly keys: number;
  readonly durationMillis: number;
}

export interface EndpointSnapshot {
  readonly endpoints: ReadonlyMap<string, EndpointEntry>;
  readonly invalid: ReadonlyMap<string, InvalidEndpoint>;
  readonly revision: number;
}

export interface SourceStatus {
  readonly kind: 'etcd' | 'static';
  /** A description of what is watched, without credentials. */
  readonly target: string;
  readonly ready: boolean;
  readonly connected: boolean;
  /** When the connection to etcd was lost; null while connected or before the first try. */
  readonly disconnectedSince: Date | null;
  readonly lastError: string | null;
  readonly revision: number;
  readonly resyncs: number;
  /** The latest re-listing after the first one, and why; null before any. */
  readonly lastResync: { readonly reason: ResyncReason; readonly at: Date } | null;
  /** The etcd hosts the source's client dials now (after auto-sync followed the member list); absent for static targets. */
  readonly etcdHosts?: readonly string[];
  readonly endpoints: number;
  readonly invalid: number;
}

export interface SourceEvents {
  change: [change: EndpointChange];
  invalid: [record: InvalidEndpoint];
  resync: [info: ResyncInfo];
  connected: [info: { revision: number }];
  disconnected: [info: { since: Date; error: AnchorPoolError }];
  error: [error: AnchorPoolError];
}

export interface ReadyOptions {
  /** How long to wait for the first snapshot. Infinity waits (and retries) for ever. */
  readonly timeoutMillis?: number;
  /** Rejects the wait at once with AcquireAbortedError (the signal's reason as `cause`). */
  readonly signal?: AbortSignal;
}

export interface EndpointSource {
  readonly kind: 'etcd' | 'static';
  start(): void;
  /** Starts the source if needed and resolves once the first snapshot has been applied. */
  ready(options?: ReadyOptions): Promise<EndpointSnapshot>;
  snapshot(): EndpointSnapshot;
  status(): SourceStatus;
  close(): Promise<void>;
  on<E extends keyof SourceEvents>(event: E, listener: (...args: SourceEvents[E]) => void): this;
  off<E extends keyof SourceEvents>(event: E, listener: (...args: SourceEvents[E]) => void): this;
  once<E extends keyof SourceEvents>(event: E, listener: (...args: SourceEvents[E]) => void): this;
}
