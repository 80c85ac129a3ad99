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
import { ANCHOR_HOOK_ARG, pinnedServiceConfig, registerPinnedPolicy, type AnchorHook } from '../grpc-js/pinned-policy.js';
import type { SubchannelInterface } from '../grpc-js/experimental.js';
import { abortConnectAttempt, subchannelConnection, trackConnectAttempts, type SubchannelConnection } from '../grpc-js/subchannel-connection.js';
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
  /**
   * The subchannels pick_first made (one per address the channel's target resolves to; a
   * hostname may give several), by grpc-js's own subchannel, with since when each
   * connects: their own states, not the channel's, since pick_first keeps the channel in
   * TRANSIENT_FAILURE while a subchannel tries again.
   */
  readonly #subchannels = new Map<object, { readonly subchannel: SubchannelInterface; readonly unfollow: () => void; attemptSince: number | undefined }>();

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
      [ANCHOR_HOOK_ARG]: { subchannel: (subchannel) => this.#adopt(subchannel), closed: () => this.closed } satisfies AnchorHook,
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
    for (const { subchannel } of this.#subchannels.values()) {
      const connection = subchannelConnection(subchannel);
      if (connection !== undefined) return connection;
    }
    return undefined;
  }

  /** The oldest attempt under way, while no subchannel has a connection. */
  override attemptSince(): number | undefined {
    let since: number | undefined;
    for (const followed of this.#subchannels.values()) {
      if (followed.subchannel.getConnectivityState() === connectivityState.READY) return undefined;
      if (followed.attemptSince !== undefined) since = Math.min(since ?? Infinity, followed.attemptSince);
    }
    return since;
  }

  protected override abortAttempt(reason: string): boolean {
    let aborted = false;
    for (const { subchannel } of this.#subchannels.values()) aborted = abortConnectAttempt(subchannel, reason) || aborted;
    return aborted;
  }

  #adopt(subchannel: SubchannelInterface): void {
    // Keyed by grpc-js's own subchannel: pick_first wraps it anew on each resolution.
    const real = subchannel.getRealSubchannel();
    if (this.closed || this.#subchannels.has(real)) return;
    trackConnectAttempts(subchannel);
    const onChange = (_s: unknown, _previous: connectivityState, next: connectivityState): void => {
      if (next !== connectivityState.CONNECTING) followed.attemptSince = undefined;
      else followed.attemptSince ??= performance.now();
    };
    const followed = {
      subchannel,
      unfollow: () => subchannel.removeConnectivityStateListener(onChange),
      attemptSince: subchannel.getConnectivityState() === connectivityState.CONNECTING ? performance.now() : undefined,
    };
    subchannel.addConnectivityStateListener(onChange);
    this.#subchannels.set(real, followed);
  }

  protected shutdown(): void {
    for (const { unfollow } of this.#subchannels.values()) unfollow();
    this.#subchannels.clear();
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
