/**
 * grpc-js resolvers for the `etcd` and `pass` schemes, on the same EndpointSource as
 * the lease pool. Each endpoint entry is reported as N endpoints (one per anchor), and
 * the entries themselves travel in an attribute that the anchored_round_robin policy
 * reads; the attribute's key is one grpc-js strips from subchannel args.
 * Each channel keeps the registerAnchorpool() settings in force when it was made;
 * channels with the same target and equal settings share one source (one etcd watch),
 * reference-counted.
 * Contract kept, as grpc-js asks: the listener is never called synchronously from the
 * constructor or updateResolution(); after destroy() nothing is reported until the next
 * updateResolution(), which starts over (grpc-js destroys resolvers of idle channels).
 */
import { status as Status, Metadata } from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { parseAddress } from '../discovery/address.js';
import type { AnchorOptions } from '../anchors/anchor-options.js';
import { resolveSourceOptions, type ResolvedEtcdOptions, type SourceOptions } from '../discovery/source-options.js';
import { createSource } from '../discovery/create-source.js';
import type { Logger } from '../core/logger.js';
import { optionsKey } from '../core/options-key.js';
import type { EndpointSource } from '../discovery/source.js';
import {
  SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX,
  statusOrFromError,
  statusOrFromValue,
  type Endpoint,
  type GrpcUri,
  type Resolver,
  type ResolverListener,
  type ServiceConfig,
  type SubchannelAddress,
} from '../grpc-js/experimental.js';
import { POLICY_NAME, parsePolicyOptions } from './policy-config.js';

/** Attribute carrying the entries to the policy; the prefix keeps it out of subchannel args. */
export const ENTRIES_ATTRIBUTE = `${SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.anchorpool.entries`;
/** Attribute carrying the etcd site of the target (ResolvedEtcdOptions; absent for pass:///) to the policy: coordinated subsets register there. */
export const ETCD_SITE_ATTRIBUTE = `${SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.anchorpool.etcd-site`;
/** Attribute carrying the channel's settings (ChannelContext) to the policy. */
export const CHANNEL_ATTRIBUTE = `${SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.anchorpool.channel`;

export interface ResolvedEntry {
  readonly key: string;
  readonly addr: string;
  readonly anchors: number;
  /** The most anchors the key may open for capacity, when its value allows growth. */
  readonly maxAnchors?: number;
  /** The key's own maximum anchor age, when its value sets one. */
  readonly maxAgeSeconds?: number;
  /** The zone the key's backend runs in, when its value names one; absent: in every zone. */
  readonly zone?: string;
  readonly address: SubchannelAddress;
}

/**
 * What registerAnchorpool() was given, as one immutable value. A channel captures the
 * value in force when its resolver is made and keeps it for its whole life; a later
 * registerAnchorpool() changes only channels made after it.
 */
export interface ChannelSettings {
  /** What to discover with: etcd, defaultAnchors, maxAnchorsPerKey, logger (the target adds its prefix). */
  readonly source: Omit<SourceOptions, 'target'>;
  /** How long the first resolution may wait for etcd before reporting UNAVAILABLE. */
  readonly readyTimeoutMillis: number;
  readonly logger: Logger | undefined;
  /** The anchor options as given, for the policy config of channels without their own service config. */
  readonly anchorOptions: AnchorOptions;
}

/** What the policy learns of its channel through CHANNEL_ATTRIBUTE. */
export interface ChannelContext {
  readonly logger: Logger | undefined;
  /** The health check named by a top-level `healthCheckConfig` in the channel's own service config. */
  readonly serviceConfigHealthCheck: { readonly serviceName: string } | undefined;
}

let registered: ChannelSettings = { source: {}, readyTimeoutMillis: 10_000, logger: undefined, anchorOptions: {} };

export function setChannelSettings(next: ChannelSettings): void {
  registered = next;
}

// ── shared sources ─────────────────────────────────────────────────────────

/** Sources by target and settings: channels share one etcd watch only when both are equal. */
const shared = new Map<string, { source: EndpointSource; site: ResolvedEtcdOptions | undefined; refs: number }>();

/** How many sources the channels of this process share now (for specs). */
export function sharedSourceCount(): number {
  return shared.size;
}

function targetString(target: GrpcUri): string {
  return `${target.scheme}://${target.authority ?? ''}/${target.path}`;
}

function sourceId(target: GrpcUri, settings: ChannelSettings): string {
  return `${targetString(target)} ${optionsKey(settings.source)}`;
}

function acquireSource(target: GrpcUri, settings: ChannelSettings): { source: EndpointSource; site: ResolvedEtcdOptions | undefined } {
  const id = sourceId(target, settings);
  let entry = shared.get(id);
  if (entry === undefined) {
    const { etcd: registeredEtcd, ...rest } = settings.source;
    const options: SourceOptions = { ...rest, target: targetString(target) };
    if (target.scheme === 'etcd') {
      // Hosts in the target's authority win over the registered ones.
      const { hosts, ...etcd } = registeredEtcd ?? {};
      options.etcd = target.authority || hosts === undefined ? etcd : { ...etcd, hosts };
    }
    entry = { source: createSource(options), site: resolveSourceOptions(options).etcd, refs: 0 };
    shared.set(id, entry);
    entry.source.start();
  }
  entry.refs += 1;
  return entry;
}

function releaseSource(target: GrpcUri, settings: ChannelSettings): void {
  const id = sourceId(target, settings);
  const entry = shared.get(id);
  if (entry === undefined) return;
  entry.refs -= 1;
  if (entry.refs === 0) {
    shared.delete(id);
    void entry.source.close();
  }
}

// ── the resolver ───────────────────────────────────────────────────────────

export function toSubchannelAddress(addr: string): SubchannelAddress {
  const parsed = parseAddress(addr);
  if (!parsed.ok) throw new Error(`anchorpool: unexpected invalid address ${addr}: ${parsed.reason}`);
  const value = parsed.value;
  return value.kind === 'unix' ? { path: value.path } : { host: value.host, port: value.port };
}

/** The service config the resolver returns to channels without their own: anchored_round_robin with the registered options. */
function anchoredServiceConfig(settings: ChannelSettings): ServiceConfig {
  return { loadBalancingConfig: [{ [POLICY_NAME]: settings.anchorOptions }], methodConfig: [] };
}

/**
 * What the policy needs from the channel's own service config: the health check of a
 * top-level `healthCheckConfig` (where gRPC's service-config documentation puts it; grpc-js
 * drops the field, so the policy would never see it). A bad anchored_round_robin entry is
 * warned about here, with the channel's logger: grpc-js would silently use pick_first.
 */
function readOwnServiceConfig(text: unknown, logger: Logger | undefined): ChannelContext['serviceConfigHealthCheck'] {
  if (typeof text !== 'string') return undefined;
  let config: { healthCheckConfig?: { serviceName?: unknown }; loadBalancingConfig?: unknown };
  try {
    config = JSON.parse(text) as typeof config;
  } catch {
    return undefined; // grpc-js reports an unparsable service config itself
  }
  const policies = Array.isArray(config.loadBalancingConfig) ? (config.loadBalancingConfig as Record<string, unknown>[]) : [];
  for (const entry of policies) {
    if (entry === null || typeof entry !== 'object' || !(POLICY_NAME in entry)) continue;
    try {
      parsePolicyOptions(entry[POLICY_NAME]);
    } catch (error) {
      logger?.warn({ config: entry[POLICY_NAME] }, `${(error as Error).message}; grpc-js ignores the channel's service config and uses pick_first`);
    }
  }
  const serviceName = config.healthCheckConfig?.serviceName;
  if (config.healthCheckConfig === undefined || config.healthCheckConfig === null) return undefined;
  return { serviceName: typeof serviceName === 'string' ? serviceName : '' };
}

export class AnchorResolver implements Resolver {
  readonly #target: GrpcUri;
  readonly #listener: ResolverListener;
  readonly #serviceConfig: ReturnType<typeof statusOrFromValue<ServiceConfig>> | null;
  readonly #settings = registered;
  readonly #attributes: { [CHANNEL_ATTRIBUTE]: ChannelContext };
  #source: EndpointSource | undefined;
  #site: ResolvedEtcdOptions | undefined;
  #scheduled: NodeJS.Immediate | undefined;
  #waitingForReady = false;
  readonly #onChange = (): void => this.#schedule();

  constructor(target: GrpcUri, listener: ResolverListener, channelOptions: ChannelOptions) {
    this.#target = target;
    this.#listener = listener;
    // anchored_round_robin is the default for these schemes; a service config the user set wins.
    const userChoosesPolicy = channelOptions['grpc.service_config'] !== undefined || channelOptions['grpc.service_config_disable_resolution'] === 1;
    this.#serviceConfig = userChoosesPolicy ? null : statusOrFromValue(anchoredServiceConfig(this.#settings));
    const context: ChannelContext = {
      logger: this.#settings.logger,
      serviceConfigHealthCheck: readOwnServiceConfig(channelOptions['grpc.service_config'], this.#settings.logger),
    };
    this.#attributes = { [CHANNEL_ATTRIBUTE]: context };
  }

  updateResolution(): void {
    if (this.#source === undefined) {
      const acquired = acquireSource(this.#target, this.#settings);
      this.#source = acquired.source;
      this.#site = acquired.site;
      this.#source.on('change', this.#onChange);
    }
    const source = this.#source;
    if (source.status().ready) {
      this.#schedule();
      return;
    }
    if (this.#waitingForReady) return;
    this.#waitingForReady = true;
    source.ready({ timeoutMillis: this.#settings.readyTimeoutMillis }).then(
      () => {
        this.#waitingForReady = false;
        this.#schedule();
      },
      (error: Error) => {
        this.#waitingForReady = false;
        if (this.#source !== source) return; // destroyed meanwhile
        this.#listener(
          statusOrFromError({ code: Status.UNAVAILABLE, details: `anchorpool: ${error.message}`, metadata: new Metadata() }),
          this.#attributes,
          null,
          error.message,
        );
      },
    );
  }

  destroy(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    if (this.#source === undefined) return;
    this.#source.off('change', this.#onChange);
    this.#source = undefined;
    releaseSource(this.#target, this.#settings);
  }

  #schedule(): void {
    if (this.#scheduled !== undefined || this.#source === undefined) return;
    this.#scheduled = setImmediate(() => {
      this.#scheduled = undefined;
      this.#report();
    });
  }

  #report(): void {
    if (this.#source === undefined) return;
    const { endpoints, invalid } = this.#source.snapshot();
    const entries: ResolvedEntry[] = [...endpoints.values()].map((e) => ({
      key: e.key,
      addr: e.addr,
      anchors: e.anchors,
      ...(e.maxAnchors !== undefined && { maxAnchors: e.maxAnchors }),
      ...(e.maxAgeSeconds !== undefined && { maxAgeSeconds: e.maxAgeSeconds }),
      ...(e.zone !== undefined && { zone: e.zone }),
      address: toSubchannelAddress(e.addr),
    }));
    const attributes = { ...this.#attributes, [ENTRIES_ATTRIBUTE]: entries, [ETCD_SITE_ATTRIBUTE]: this.#site };
    if (entries.length === 0) {
      const details = `anchorpool: no valid endpoints under ${targetString(this.#target)}${invalid.size > 0 ? ` (${invalid.size} invalid)` : ''}`;
      this.#listener(statusOrFromError({ code: Status.UNAVAILABLE, details, metadata: new Metadata() }), attributes, this.#serviceConfig, details);
      return;
    }
    const list: Endpoint[] = entries.flatMap((entry) => Array.from({ length: entry.anchors }, () => ({ addresses: [entry.address] })));
    this.#listener(statusOrFromValue(list), attributes, this.#serviceConfig, '');
  }

  /** `:authority` for calls: the last segment of the prefix, or the first static address. */
  static getDefaultAuthority(target: GrpcUri): string {
    if (target.scheme === 'pass') {
      // The first entry's address, without its `#N` and `@zone`.
      const first = target.path.split(',')[0]?.split(/[#@]/)[0] ?? '';
      return /^[A-Za-z0-9.:[\]_-]+$/.test(first) ? first : 'localhost';
    }
    const segment = target.path.replace(/#\d+$/, '').split('/').filter((s) => s.length > 0).at(-1) ?? '';
    const clean = segment.replace(/[^A-Za-z0-9._-]/g, '');
    return clean.length > 0 ? clean : 'anchorpool';
  }
}
