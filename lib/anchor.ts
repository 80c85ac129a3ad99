/**
 * One anchored connection: a grpc-js Channel to one address, pinned by a distinct
 * channel arg and its own subchannel pool, so that N anchors are N HTTP/2 connections
 * and two pools never share one. It owns its channel's connectivity loop, its lease
 * count and its drain. It tells its owner when its state or its eligibility (READY, not
 * draining, below the lease cap) changes; the owner ignores events from anchors it has
 * replaced, and an anchor never reports after close().
 */
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { parseAddress } from './address.js';

export type AnchorState = 'IDLE' | 'CONNECTING' | 'READY' | 'TRANSIENT_FAILURE' | 'SHUTDOWN';

const STATE_NAMES: Record<grpc.connectivityState, AnchorState> = {
  [grpc.connectivityState.IDLE]: 'IDLE',
  [grpc.connectivityState.CONNECTING]: 'CONNECTING',
  [grpc.connectivityState.READY]: 'READY',
  [grpc.connectivityState.TRANSIENT_FAILURE]: 'TRANSIENT_FAILURE',
  [grpc.connectivityState.SHUTDOWN]: 'SHUTDOWN',
};

/** Larger values overflow Node's timers; the grpc-js default (30 min) would drop idle anchors. */
export const MAX_IDLE_TIMEOUT_MILLIS = 2_147_483_647;

/** The channel arg that makes each anchor's connection distinct. */
export const ANCHOR_ARG = 'anchorpool.anchor';

export interface AnchorOwner {
  anchorState(anchor: Anchor, state: AnchorState, previous: AnchorState): void;
  anchorEligibility(anchor: Anchor, eligible: boolean): void;
  anchorClosed(anchor: Anchor): void;
}

export interface AnchorSpec {
  readonly key: string;
  readonly index: number;
  readonly address: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions: grpc.ChannelOptions;
  readonly maxLeases: number;
  /** Distinguishes pools (and successive anchors for the same slot) in the anchor arg. */
  readonly tag: string;
}

/**
 * The channel target for an address. IP literals get grpc-js's ipv4:/ipv6: schemes: the
 * default dns: resolver would build a DNS resolver per channel for nothing, which made
 * creating 10,000 anchors about 3x slower.
 */
export function channelTarget(address: string): string {
  const parsed = parseAddress(address);
  if (!parsed.ok || parsed.value.kind !== 'tcp') return address;
  const family = isIP(parsed.value.host);
  return family === 4 ? `ipv4:${address}` : family === 6 ? `ipv6:${address}` : address;
}

type ClientConstructor<C extends grpc.Client> = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C;

export class Anchor {
  readonly key: string;
  readonly index: number;
  readonly address: string;
  readonly channel: grpc.Channel;
  readonly maxLeases: number;
  #state: AnchorState = 'IDLE';
  #leases = 0;
  #acquired = 0;
  #draining = false;
  #closed = false;
  #eligible = false;
  #drainTimer: NodeJS.Timeout | undefined;
  readonly #owner: AnchorOwner;
  readonly #credentials: grpc.ChannelCredentials;
  readonly #clients = new Map<ClientConstructor<grpc.Client>, grpc.Client>();

  constructor(spec: AnchorSpec, owner: AnchorOwner) {
    this.key = spec.key;
    this.index = spec.index;
    this.address = spec.address;
    this.maxLeases = spec.maxLeases;
    this.#owner = owner;
    this.#credentials = spec.credentials;
    this.channel = new grpc.Channel(channelTarget(spec.address), spec.credentials, {
      'grpc.client_idle_timeout_ms': MAX_IDLE_TIMEOUT_MILLIS,
      ...spec.channelOptions,
      [ANCHOR_ARG]: `${spec.tag}/${spec.key}#${spec.index}`,
      'grpc.use_local_subchannel_pool': 1,
    });
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

  /** Starts connecting and following the channel's state. */
  start(): void {
    this.#watch();
  }

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

  /** A client stub on this anchor's channel, one per constructor. */
  client<C extends grpc.Client>(Ctor: ClientConstructor<C>): C {
    let client = this.#clients.get(Ctor as ClientConstructor<grpc.Client>);
    if (client === undefined) {
      client = new Ctor(this.address, this.#credentials, { channelOverride: this.channel });
      this.#clients.set(Ctor as ClientConstructor<grpc.Client>, client);
    }
    return client as C;
  }

  close(): void {
    if (this.#closed) return;
    // Flag first: the connectivity loop must not kick a closed channel back to life.
    this.#closed = true;
    this.#draining = true;
    clearTimeout(this.#drainTimer);
    this.#refresh();
    this.channel.close();
    this.#clients.clear();
    this.#setState('SHUTDOWN');
    this.#owner.anchorClosed(this);
  }

  #watch(): void {
    if (this.#closed) return;
    // `true` makes an IDLE channel connect: after a disconnect grpc-js waits in IDLE.
    const current = this.channel.getConnectivityState(true);
    this.#setState(STATE_NAMES[current]);
    this.channel.watchConnectivityState(current, Infinity, () => this.#watch());
  }

  #setState(state: AnchorState): void {
    const previous = this.#state;
    if (state === previous) return;
    this.#state = state;
    this.#refresh();
    this.#owner.anchorState(this, state, previous);
  }

  #refresh(): void {
    const eligible = this.#state === 'READY' && !this.#draining && this.#leases < this.maxLeases;
    if (eligible === this.#eligible) return;
    this.#eligible = eligible;
    this.#owner.anchorEligibility(this, eligible);
  }
}
