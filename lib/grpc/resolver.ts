/**
 * grpc-js resolvers for the `etcd` and `pass` schemes, on the same EndpointSource as
 * the lease pool. Each endpoint entry is reported as N endpoints (one per anchor), and
 * the entries themselves travel in an attribute that the anchored_round_robin policy
 * reads; the attribute's key is one grpc-js strips from subchannel args.
 * Channels with the same target share one source (one etcd watch), reference-counted.
 * Contract kept, as grpc-js asks: the listener is never called synchronously from the
 * constructor or updateResolution(); after destroy() nothing is reported until the next
 * updateResolution(), which starts over (grpc-js destroys resolvers of idle channels).
 */
import { status as Status, Metadata } from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { parseAddress } from '../address.js';
import type { EtcdOptions, SourceOptions } from '../config.js';
import { createSource } from '../create-source.js';
import type { Logger } from '../logger.js';
import type { EndpointSource } from '../source.js';
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
} from './experimental.js';

export const POLICY_NAME = 'anchored_round_robin';
/** Attribute carrying the entries to the policy; the prefix keeps it out of subchannel args. */
export const ENTRIES_ATTRIBUTE = `${SUBCHANNEL_ARGS_EXCLUDE_KEY_PREFIX}.anchorpool.entries`;

export interface ResolvedEntry {
  readonly key: string;
  readonly addr: string;
  readonly anchors: number;
  /** The most anchors the key may open for capacity, when its value allows growth. */
  readonly maxAnchors?: number;
  /** The key's own maximum anchor age, when its value sets one. */
  readonly maxAgeSeconds?: number;
  readonly address: SubchannelAddress;
}

export interface ResolverSettings {
  readonly etcd?: EtcdOptions;
  readonly defaultAnchors?: number;
  readonly maxAnchorsPerKey?: number;
  readonly logger?: Logger;
  /** How long the first resolution may wait for etcd before reporting UNAVAILABLE. */
  readonly readyTimeoutMillis: number;
  /** The default policy config's health checks (the resolver's service config carries them to the policy). */
  readonly healthCheck?: { readonly serviceName: string };
  /** The default policy config's outlier ejection (validated options with their defaults). */
  readonly outlierDetection?: object;
  readonly anchorMaxAgeMillis?: number;
  readonly pick?: 'round-robin' | 'least-loaded';
  readonly maxCallsPerAnchor?: number;
  readonly extraAnchorIdleMillis?: number;
}

let settings: ResolverSettings = { readyTimeoutMillis: 10_000 };

export function configureResolvers(next: ResolverSettings): void {
  settings = next;
}

/** The logger registerAnchorpool() was given, for the policy's warnings. */
export function resolverLogger(): Logger | undefined {
  return settings.logger;
}

// ── shared sources ─────────────────────────────────────────────────────────

const shared = new Map<string, { source: EndpointSource; refs: number }>();

function targetString(target: GrpcUri): string {
  return `${target.scheme}://${target.authority ?? ''}/${target.path}`;
}

function acquireSource(target: GrpcUri): EndpointSource {
  const id = targetString(target);
  let entry = shared.get(id);
  if (entry === undefined) {
    const options: SourceOptions = { target: id };
    if (target.scheme === 'etcd') {
      // Hosts in the target's authority win over the registered ones.
      const { hosts, ...etcd } = settings.etcd ?? {};
      options.etcd = target.authority || hosts === undefined ? etcd : { ...etcd, hosts };
    }
    if (settings.defaultAnchors !== undefined) options.defaultAnchors = settings.defaultAnchors;
    if (settings.maxAnchorsPerKey !== undefined) options.maxAnchorsPerKey = settings.maxAnchorsPerKey;
    if (settings.logger !== undefined) options.logger = settings.logger;
    entry = { source: createSource(options), refs: 0 };
    shared.set(id, entry);
    entry.source.start();
  }
  entry.refs += 1;
  return entry.source;
}

function releaseSource(target: GrpcUri): void {
  const id = targetString(target);
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

/** The service config the resolver returns: anchored_round_robin, with the registered health checks and outlier ejection. */
function anchoredServiceConfig(): ServiceConfig {
  const policy = {
    ...(settings.healthCheck !== undefined && { healthCheckConfig: { serviceName: settings.healthCheck.serviceName } }),
    ...(settings.outlierDetection !== undefined && { outlierDetection: settings.outlierDetection }),
    ...(settings.anchorMaxAgeMillis !== undefined && { anchorMaxAgeMillis: settings.anchorMaxAgeMillis }),
    ...(settings.pick !== undefined && { pick: settings.pick }),
    ...(settings.maxCallsPerAnchor !== undefined && { maxCallsPerAnchor: settings.maxCallsPerAnchor }),
    ...(settings.extraAnchorIdleMillis !== undefined && { extraAnchorIdleMillis: settings.extraAnchorIdleMillis }),
  };
  return { loadBalancingConfig: [{ [POLICY_NAME]: policy }], methodConfig: [] };
}

export class AnchorResolver implements Resolver {
  readonly #target: GrpcUri;
  readonly #listener: ResolverListener;
  readonly #serviceConfig: ReturnType<typeof statusOrFromValue<ServiceConfig>> | null;
  #source: EndpointSource | undefined;
  #scheduled: NodeJS.Immediate | undefined;
  #waitingForReady = false;
  readonly #onChange = (): void => this.#schedule();

  constructor(target: GrpcUri, listener: ResolverListener, channelOptions: ChannelOptions) {
    this.#target = target;
    this.#listener = listener;
    // anchored_round_robin is the default for these schemes; a service config the user set wins.
    const userChoosesPolicy = channelOptions['grpc.service_config'] !== undefined || channelOptions['grpc.service_config_disable_resolution'] === 1;
    this.#serviceConfig = userChoosesPolicy ? null : statusOrFromValue(anchoredServiceConfig());
  }

  updateResolution(): void {
    if (this.#source === undefined) {
      this.#source = acquireSource(this.#target);
      this.#source.on('change', this.#onChange);
    }
    const source = this.#source;
    if (source.status().ready) {
      this.#schedule();
      return;
    }
    if (this.#waitingForReady) return;
    this.#waitingForReady = true;
    source.ready({ timeoutMillis: settings.readyTimeoutMillis }).then(
      () => {
        this.#waitingForReady = false;
        this.#schedule();
      },
      (error: Error) => {
        this.#waitingForReady = false;
        if (this.#source !== source) return; // destroyed meanwhile
        this.#listener(
          statusOrFromError({ code: Status.UNAVAILABLE, details: `anchorpool: ${error.message}`, metadata: new Metadata() }),
          {},
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
    releaseSource(this.#target);
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
      address: toSubchannelAddress(e.addr),
    }));
    const attributes = { [ENTRIES_ATTRIBUTE]: entries };
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
      const first = target.path.split(',')[0]?.split('#')[0] ?? '';
      return /^[A-Za-z0-9.:[\]_-]+$/.test(first) ? first : 'localhost';
    }
    const segment = target.path.replace(/#\d+$/, '').split('/').filter((s) => s.length > 0).at(-1) ?? '';
    const clean = segment.replace(/[^A-Za-z0-9._-]/g, '');
    return clean.length > 0 ? clean : 'anchorpool';
  }
}
