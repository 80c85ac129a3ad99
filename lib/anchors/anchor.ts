/**
 * Anchor: one anchored connection to one address, the unit the anchor set manages for
 * both paths — a grpc-js Channel for the lease pool (pool/channel-anchor.ts) and a grpc-js
 * subchannel for the anchored_round_robin policy (native/subchannel-anchor.ts). This base
 * owns what the two share: identity by (key, index), the connectivity state, the lease
 * count against its cap, eligibility and drain. A subclass only follows its transport
 * (start, setState) and closes it (shutdown).
 *
 * Contract: the listener hears of every state change and every eligibility flip
 * (eligible = READY, not draining, below the lease cap), synchronously, and of close()
 * once; after close() the anchor never reports again and never touches its transport.
 */

import { connectivityState } from '@grpc/grpc-js';
import type { SubchannelConnection } from '../grpc-js/subchannel-connection.js';
import type { HealthReport } from './health-watch.js';
import { PeakEwma } from './peak-ewma.js';

export type AnchorState = 'IDLE' | 'CONNECTING' | 'READY' | 'TRANSIENT_FAILURE' | 'SHUTDOWN';

const STATE_NAMES: Record<connectivityState, AnchorState> = {
  [connectivityState.IDLE]: 'IDLE',
  [connectivityState.CONNECTING]: 'CONNECTING',
  [connectivityState.READY]: 'READY',
  [connectivityState.TRANSIENT_FAILURE]: 'TRANSIENT_FAILURE',
  [connectivityState.SHUTDOWN]: 'SHUTDOWN',
};

/** The anchor state for a grpc-js channel or subchannel state. */
export function anchorStateOf(state: connectivityState): AnchorState {
  return STATE_NAMES[state];
}

/**
 * What the anchor knows of its backend's health (gRFC A17, grpc.health.v1):
 *   - UNCHECKED: not checked (checks are off, or the backend has no health service); counts as healthy;
 *   - UNKNOWN: checked, but no answer yet on the current connection (it is new);
 *   - SERVING / SERVICE_UNKNOWN: the last status the backend sent;
 *   - NOT_SERVING: the backend said so (or said UNKNOWN), or the Watch stream failed and
 *     is being retried (as gRFC A17, anything but SERVING is unhealthy).
 * Only UNCHECKED and SERVING anchors take leases.
 */
export type AnchorHealth = 'UNCHECKED' | 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** The channel/subchannel arg that makes each anchor's connection distinct. */
export const ANCHOR_ARG = 'anchorpool.anchor';

export interface AnchorSpec {
  readonly key: string;
  readonly index: number;
  readonly address: string;
  /** How many anchors this slot had before (0 for the first; a refresh's replacement counts on). */
  readonly generation?: number;
}

/** The ANCHOR_ARG value of an anchor: `key#index`, and `@generation` for a refresh's replacement. */
export function anchorArg(spec: AnchorSpec): string {
  const generation = spec.generation ?? 0;
  return generation === 0 ? `${spec.key}#${spec.index}` : `${spec.key}#${spec.index}@${generation}`;
}

/** How an anchor reports to the one that created it (the anchor set). */
export interface AnchorListener {
  state(anchor: Anchor, state: AnchorState, previous: AnchorState): void;
  health(anchor: Anchor, health: AnchorHealth, previous: AnchorHealth): void;
  eligibility(anchor: Anchor, eligible: boolean): void;
  /** It came into rotation or left it (see Anchor.inRotation): slow start and zone shares follow. */
  rotation?(anchor: Anchor, inRotation: boolean): void;
  closed(anchor: Anchor): void;
}

export abstract class Anchor {
  readonly key: string;
  readonly index: number;
  readonly address: string;
  /** Streams it lends out: maxStreams less the streams it keeps for itself (the health stream). */
  readonly capacity: number;
  readonly #healthChecked: boolean;
  #state: AnchorState = 'IDLE';
  #stateSince = performance.now();
  #health: AnchorHealth;
  #streams = 0;
  #acquired = 0;
  #draining = false;
  #ejected = false;
  /** A parent grpc-js policy (outlier_detection) marked the subchannel unhealthy: it ejected it. */
  #heldOut = false;
  #closed = false;
  #eligible = false;
  #inRotation = false;
  #drainTimer: NodeJS.Timeout | undefined;
  readonly #listener: AnchorListener;
  /** Its calls' latency, for `pick: 'peak-ewma'` (fed where outcomes are reported: lease release, call end). */
  readonly latency = new PeakEwma();
  /** Why the health check could not give a status (a failed stream, no health service), for status output and traces. */
  healthDetail: string | null = null;

  /**
   * `healthChecked`: the subclass runs a health check on each connection; one of the
   * connection's `maxStreams` streams is then the health stream's, so that leases plus the
   * health stream never exceed a server's stream cap given as maxStreamsPerAnchor.
   */
  constructor(spec: AnchorSpec, maxStreams: number, listener: AnchorListener, healthChecked = false) {
    this.key = spec.key;
    this.index = spec.index;
    this.address = spec.address;
    this.capacity = healthChecked ? maxStreams - 1 : maxStreams;
    this.#healthChecked = healthChecked;
    this.#health = healthChecked ? 'UNKNOWN' : 'UNCHECKED';
    this.#listener = listener;
  }

  get state(): AnchorState {
    return this.#state;
  }
  get health(): AnchorHealth {
    return this.#health;
  }
  /** Streams in use on it now: the pool's leases, or a channel's calls in flight. */
  get streams(): number {
    return this.#streams;
  }
  /** Streams handed out on this anchor since it was created. */
  get acquired(): number {
    return this.#acquired;
  }
  get draining(): boolean {
    return this.#draining;
  }
  /** Taken out of rotation by outlier ejection (its endpoint failed its calls). */
  get ejected(): boolean {
    return this.#ejected;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** READY, healthy (SERVING or UNCHECKED), not ejected, not draining, and below its capacity: may be handed a new stream. */
  get eligible(): boolean {
    return this.#eligible;
  }
  /** Eligible but for its stream cap: READY, healthy, not ejected, not draining. What slow start and zone shares count. */
  get inRotation(): boolean {
    return this.#inRotation;
  }

  /** Starts connecting and following the transport's state. Called once, after the anchor is scheduled. */
  abstract start(): void;

  /** Stops following the transport and closes it; called once, from close(). */
  protected abstract shutdown(): void;

  /** The HTTP/2 connection under it while READY, for the liveness watch; undefined if unknown. */
  connection(): SubchannelConnection | undefined {
    return undefined;
  }

  /** Since when (performance.now()) its transport's connection attempt runs; undefined when none does. */
  attemptSince(): number | undefined {
    return this.#state === 'CONNECTING' ? this.#stateSince : undefined;
  }

  /**
   * Gives up a connection attempt that has taken too long; the attempt after it starts at
   * once, not after grpc-js's backoff (the deadline already was the wait). Returns
   * whether an attempt was under way.
   */
  abortConnect(reason: string): boolean {
    if (this.#closed || this.attemptSince() === undefined) return false;
    return this.abortAttempt(reason);
  }

  /** For subclasses: give up the transport's attempt (see abortConnect()). */
  protected abortAttempt(_reason: string): boolean {
    return false;
  }

  /** Counts a stream (a lease, a call) on this anchor. The caller checked `eligible`. */
  take(): void {
    this.#streams += 1;
    this.#acquired += 1;
    if (this.#streams >= this.capacity) this.#refresh();
  }

  /** Gives a stream back; a draining anchor closes with its last one. */
  give(): void {
    this.#streams -= 1;
    if (this.#draining) {
      if (this.#streams === 0) this.close();
    } else if (this.#streams === this.capacity - 1) {
      this.#refresh();
    }
  }

  /** Outlier ejection: no new leases while ejected; leases already out run on. */
  setEjected(ejected: boolean): void {
    if (this.#closed || ejected === this.#ejected) return;
    this.#ejected = ejected;
    this.#refresh();
  }

  /** For subclasses: whether something above the anchor (a parent policy) holds it out of rotation. */
  protected setHeldOut(heldOut: boolean): void {
    if (this.#closed || heldOut === this.#heldOut) return;
    this.#heldOut = heldOut;
    this.#refresh();
  }

  /** Takes no new leases from now on; closes when the last lease is returned or after timeoutMillis (0: at once). */
  drain(timeoutMillis: number): void {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    this.#refresh();
    if (this.#streams === 0 || timeoutMillis === 0) return this.close();
    this.#drainTimer = setTimeout(() => this.close(), timeoutMillis);
    this.#drainTimer.unref();
  }

  close(): void {
    if (this.#closed) return;
    // Flag first: a subclass's state loop must not touch a closed transport.
    this.#closed = true;
    this.#draining = true;
    clearTimeout(this.#drainTimer);
    this.#refresh();
    this.shutdown();
    this.#setState('SHUTDOWN');
    this.#listener.closed(this);
  }

  /** For subclasses: the transport's state changed. Ignored after close(). */
  protected setState(state: AnchorState): void {
    if (this.#closed && state !== 'SHUTDOWN') return;
    this.#setState(state);
  }

  /**
   * For subclasses: what the health check on the current connection said. UNCHECKED
   * means the backend has no health service (checking is off for this connection).
   * Ignored after close(), and while the anchor is not READY (a new connection starts
   * UNKNOWN again).
   */
  protected setHealth(health: AnchorHealth): void {
    if (this.#closed || !this.#healthChecked || this.#state !== 'READY') return;
    this.#setHealth(health);
  }

  /**
   * For subclasses: what their HealthWatch reports goes here. `unimplemented` hears that the
   * backend has no health service (the anchor then counts as healthy on this connection).
   */
  protected healthReport(unimplemented: (detail: string) => void): HealthReport {
    return {
      status: (status, detail) => {
        this.healthDetail = detail;
        this.setHealth(status);
      },
      unimplemented: (detail) => {
        this.healthDetail = `no health service: ${detail}`;
        this.setHealth('UNCHECKED');
        unimplemented(detail);
      },
    };
  }

  #setState(state: AnchorState): void {
    const previous = this.#state;
    if (state === previous) return;
    this.#state = state;
    this.#stateSince = performance.now();
    // What a health check said is about the connection that just went away. Both changes
    // are made before anyone hears of either, so no listener sees a stale eligibility.
    const previousHealth = this.#health;
    if (previous === 'READY' && this.#healthChecked) this.#health = 'UNKNOWN';
    this.#refresh();
    if (this.#health !== previousHealth) this.#listener.health(this, this.#health, previousHealth);
    this.#listener.state(this, state, previous);
  }

  #setHealth(health: AnchorHealth): void {
    const previous = this.#health;
    if (health === previous) return;
    this.#health = health;
    this.#refresh();
    this.#listener.health(this, health, previous);
  }

  #refresh(): void {
    const healthy = this.#health === 'SERVING' || this.#health === 'UNCHECKED';
    const inRotation = this.#state === 'READY' && healthy && !this.#ejected && !this.#heldOut && !this.#draining;
    const eligible = inRotation && this.#streams < this.capacity;
    // Rotation first: a key's slow-start ramp is set before the pick it makes possible.
    if (inRotation !== this.#inRotation) {
      this.#inRotation = inRotation;
      this.#listener.rotation?.(this, inRotation);
    }
    if (eligible !== this.#eligible) {
      this.#eligible = eligible;
      this.#listener.eligibility(this, eligible);
    }
  }
}
