/**
 * Anchor: one anchored connection to one address, the unit the anchor set manages for
 * both paths — a grpc-js Channel for the lease pool (anchor-channel.ts) and a grpc-js
 * subchannel for the anchored_round_robin policy (grpc/anchor-subchannel.ts). This base
 * owns what the two share: identity by (key, index), the connectivity state, the lease
 * count against its cap, eligibility and drain. A subclass only follows its transport
 * (start, setState) and closes it (shutdown).
 *
 * Contract: the listener hears of every state change and every eligibility flip
 * (eligible = READY, not draining, below the lease cap), synchronously, and of close()
 * once; after close() the anchor never reports again and never touches its transport.
 */

import { connectivityState } from '@grpc/grpc-js';

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

/** The channel/subchannel arg that makes each anchor's connection distinct. */
export const ANCHOR_ARG = 'anchorpool.anchor';

export interface AnchorSpec {
  readonly key: string;
  readonly index: number;
  readonly address: string;
}

/** How an anchor reports to the one that created it (the anchor set). */
export interface AnchorListener {
  state(anchor: Anchor, state: AnchorState, previous: AnchorState): void;
  eligibility(anchor: Anchor, eligible: boolean): void;
  closed(anchor: Anchor): void;
}

export abstract class Anchor {
  readonly key: string;
  readonly index: number;
  readonly address: string;
  readonly maxLeases: number;
  #state: AnchorState = 'IDLE';
  #leases = 0;
  #acquired = 0;
  #draining = false;
  #closed = false;
  #eligible = false;
  #drainTimer: NodeJS.Timeout | undefined;
  readonly #listener: AnchorListener;

  constructor(spec: AnchorSpec, maxLeases: number, listener: AnchorListener) {
    this.key = spec.key;
    this.index = spec.index;
    this.address = spec.address;
    this.maxLeases = maxLeases;
    this.#listener = listener;
  }

  get state(): AnchorState {
    return this.#state;
  }
  get leases(): number {
    return this.#leases;
  }
  /** Leases handed out on this anchor since it was created. */
  get acquired(): number {
    return this.#acquired;
  }
  get draining(): boolean {
    return this.#draining;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** READY, not draining, and below the lease cap: may be handed a new lease. */
  get eligible(): boolean {
    return this.#eligible;
  }

  /** Starts connecting and following the transport's state. Called once, after the anchor is scheduled. */
  abstract start(): void;

  /** Stops following the transport and closes it; called once, from close(). */
  protected abstract shutdown(): void;

  /** Counts a lease on this anchor. The caller checked `eligible`. */
  take(): void {
    this.#leases += 1;
    this.#acquired += 1;
    if (this.#leases >= this.maxLeases) this.#refresh();
  }

  /** Returns a lease slot; a draining anchor closes with its last lease. */
  give(): void {
    this.#leases -= 1;
    if (this.#draining) {
      if (this.#leases === 0) this.close();
    } else if (this.#leases === this.maxLeases - 1) {
      this.#refresh();
    }
  }

  /** Takes no new leases from now on; closes when the last lease is returned or after timeoutMillis. */
  drain(timeoutMillis: number): void {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    this.#refresh();
    if (this.#leases === 0) return this.close();
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

  #setState(state: AnchorState): void {
    const previous = this.#state;
    if (state === previous) return;
    this.#state = state;
    this.#refresh();
    this.#listener.state(this, state, previous);
  }

  #refresh(): void {
    const eligible = this.#state === 'READY' && !this.#draining && this.#leases < this.maxLeases;
    if (eligible === this.#eligible) return;
    this.#eligible = eligible;
    this.#listener.eligibility(this, eligible);
  }
}
