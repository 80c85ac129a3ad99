/**
 * The lease pool's anchor: a grpc-js Channel to one address, pinned by a distinct
 * channel arg and its own subchannel pool, so that N anchors are N HTTP/2 connections
 * and two pools never share one. It runs the channel's connectivity loop, which kicks
 * an IDLE channel (grpc-js waits in IDLE after a disconnect) and never touches a
 * closed one (a kicked closed channel comes back to life), and caches client stubs.
 */
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { connectivityState } from '@grpc/grpc-js';
import { parseAddress } from '../discovery/address.js';
import { ANCHOR_ARG, Anchor, anchorArg, anchorStateOf, type AnchorListener, type AnchorSpec } from '../anchors/anchor.js';
import { HealthWatch, type HealthWatchSettings } from '../anchors/health-watch.js';
import { pinnedServiceConfig, registerPinnedPolicy, SUBCHANNEL_HOOK_ARG, type SubchannelHook } from '../grpc-js/pinned-policy.js';
import type { SubchannelInterface } from '../grpc-js/experimental.js';
import { abortConnectAttempt, followSubchannelState, subchannelConnection, type SubchannelConnection } from '../grpc-js/subchannel-connection.js';
import { MAX_TIMER_MILLIS } from '../core/timer-limit.js';

export interface ChannelAnchorSettings {
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions: grpc.ChannelOptions;
  /** maxStreamsPerAnchor. */
  readonly maxStreams: number;
  /** Distinguishes pools (and successive anchors for the same slot) in the anchor arg. */
  readonly tag: string;
  /** Run a grpc.health.v1 Watch on each connection (gRFC A17); absent: no health checks. */
  readonly healthCheck?: HealthWatchSettings & {
    /** The backend has no health service: the anchor counts as healthy on this connection. */
    unimplemented(anchor: ChannelAnchor, detail: string): void;
  };
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

export type ClientConstructor<C extends grpc.Client> = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C;

export class ChannelAnchor extends Anchor {
  readonly channel: grpc.Channel;
  readonly #credentials: grpc.ChannelCredentials;
  readonly #clients = new Map<ClientConstructor<grpc.Client>, grpc.Client>();
  readonly #health: HealthWatch | undefined;
  /** The channel's one subchannel (pick_first's), once it made it. */
  #subchannel: SubchannelInterface | undefined;
  #unfollow: (() => void) | undefined;
  /**
   * Since when the subchannel connects. Its own state, not the channel's: pick_first keeps
   * the channel in TRANSIENT_FAILURE while the subchannel tries again.
   */
  #attemptSince: number | undefined;

  constructor(spec: AnchorSpec, settings: ChannelAnchorSettings, listener: AnchorListener) {
    super(spec, settings.maxStreams, listener, settings.healthCheck !== undefined);
    this.#credentials = settings.credentials;
    registerPinnedPolicy();
    this.channel = new grpc.Channel(channelTarget(spec.address), settings.credentials, {
      // The grpc-js default (30 min) would drop idle anchors; larger values overflow Node's timers.
      'grpc.client_idle_timeout_ms': MAX_TIMER_MILLIS,
      ...settings.channelOptions,
      // pick_first that marks the calls failing at their pick as never sent (lib/grpc-js/pinned-policy.ts).
      'grpc.service_config': pinnedServiceConfig(settings.channelOptions['grpc.service_config'] as string | undefined),
      [ANCHOR_ARG]: `${settings.tag}/${anchorArg(spec)}`,
      'grpc.use_local_subchannel_pool': 1,
      [SUBCHANNEL_HOOK_ARG]: ((subchannel) => this.#adopt(subchannel)) satisfies SubchannelHook,
    });
    const check = settings.healthCheck;
    if (check !== undefined) {
      this.#health = new HealthWatch(this.channel, spec.address, check, this.healthReport((detail) => check.unimplemented(this, detail)));
    }
  }

  start(): void {
    this.#watch();
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

  override connection(): SubchannelConnection | undefined {
    return this.#subchannel === undefined ? undefined : subchannelConnection(this.#subchannel);
  }

  protected override abortAttempt(reason: string): boolean {
    return this.#subchannel !== undefined && abortConnectAttempt(this.#subchannel, reason);
  }

  override attemptSince(): number | undefined {
    return this.#attemptSince;
  }

  #adopt(subchannel: SubchannelInterface): void {
    if (subchannel === this.#subchannel || this.closed) return;
    this.#unfollow?.();
    this.#subchannel = subchannel;
    this.#unfollow = followSubchannelState(subchannel, (state) => {
      if (state !== connectivityState.CONNECTING) this.#attemptSince = undefined;
      else this.#attemptSince ??= performance.now();
    });
  }

  protected shutdown(): void {
    this.#unfollow?.();
    this.#health?.stop();
    this.channel.close();
    this.#clients.clear();
  }

  #watch(): void {
    if (this.closed) return;
    // `true` makes an IDLE channel connect: after a disconnect grpc-js waits in IDLE.
    const current = this.channel.getConnectivityState(true);
    const state = anchorStateOf(current);
    // Health is checked per connection: a new one starts over, and waits for its first SERVING.
    if (state !== 'READY') this.#health?.stop();
    this.setState(state);
    if (state === 'READY') this.#health?.start();
    this.channel.watchConnectivityState(current, Infinity, () => this.#watch());
  }
}
