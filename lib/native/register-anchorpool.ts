/**
 * registerAnchorpool(): makes `etcd:///…` and `pass:///…` usable as grpc-js channel
 * targets, with anchored_round_robin as their default policy. Idempotent; a later call
 * changes the settings of channels created after it, never of those already there.
 */
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { anchorOptionRules, anchorOptionsShape, pickAnchorOptions, type AnchorOptions, type ResolvedAnchorOptions } from '../anchors/anchor-options.js';
import { etcdOptionsSchema, readyTimeoutMillisSchema, sourceOptionsSchema, type EtcdOptions } from '../discovery/source-options.js';
import { formatZodError, type OptionsAgree } from '../core/option-schema.js';
import { AnchoredRoundRobin } from './anchored-round-robin.js';
import { AnchoredRoundRobinConfig, POLICY_NAME } from './policy-config.js';
import { isLoadBalancerNameRegistered, registerLoadBalancerType, registerResolver } from '../grpc-js/experimental.js';
import { AnchorResolver, setChannelSettings, type ChannelSettings } from './resolver.js';

/**
 * Settings of `registerAnchorpool()`. Every option is optional. A channel keeps the
 * settings of the last call made before it was created, for its whole life; channels on
 * the same target share one etcd watch only when their settings are equal.
 */
export interface RegisterOptions extends AnchorOptions {
  /**
   * How to reach etcd, as in `createSource()`, without `prefix`: each channel's target
   * names its prefix. Hosts in a target's authority win over `etcd.hosts`.
   */
  etcd?: Omit<EtcdOptions, 'prefix'>;
  /**
   * Anchors (subchannels) for an endpoint whose value does not say. Default 1, or the
   * target's `#N`; at least 1, at most `maxAnchorsPerKey`.
   */
  defaultAnchors?: number;
  /** The most anchors one key may ask for; a larger count makes the value invalid. Default 64, from 1 to 4096. */
  maxAnchorsPerKey?: number;
  /** Where log lines go: an object with debug, info, warn and error methods (pino-compatible). Default: silent. */
  logger?: Logger;
  /**
   * How long a channel's first resolution may wait for etcd before the channel reports
   * UNAVAILABLE (it keeps trying), in milliseconds. Default 10_000, up to 2^31 - 1.
   */
  readyTimeoutMillis?: number;
}

/**
 * Validates RegisterOptions: the discovery fields and readyTimeoutMillis as the pool
 * takes them, plus every anchor option. The anchor options are the defaults of channels
 * without a service config of their own; a channel's own
 * `{"loadBalancingConfig":[{"anchored_round_robin":{…}}]}` replaces them.
 */
const registerSchema = z
  .object({
    etcd: etcdOptionsSchema.omit({ prefix: true }).optional(),
    defaultAnchors: sourceOptionsSchema.shape.defaultAnchors,
    maxAnchorsPerKey: sourceOptionsSchema.shape.maxAnchorsPerKey,
    logger: sourceOptionsSchema.shape.logger,
    readyTimeoutMillis: readyTimeoutMillisSchema,
    ...anchorOptionsShape,
  })
  .strict()
  .superRefine(anchorOptionRules);

// RegisterOptions is what users read; this fails to compile when it drifts from the schema.
true satisfies OptionsAgree<RegisterOptions, z.input<typeof registerSchema>>;

/** The settings registerAnchorpool() gives new channels, and its anchor options with their defaults (for the parity spec). */
export function resolveRegisterOptions(options: RegisterOptions): { readonly settings: ChannelSettings; readonly anchors: ResolvedAnchorOptions } {
  const parsed = registerSchema.safeParse(options);
  if (!parsed.success) throw new ConfigError(`invalid registerAnchorpool options: ${formatZodError(parsed.error)}`);
  const anchorNames = new Set(Object.keys(anchorOptionsShape));
  const given = Object.fromEntries(Object.entries(options).filter(([name]) => anchorNames.has(name))) as AnchorOptions;
  // Pass the caller's raw discovery options on: createSource validates them again and fills defaults.
  const { etcd, defaultAnchors, maxAnchorsPerKey, logger } = options;
  const settings: ChannelSettings = {
    source: {
      ...(etcd !== undefined && { etcd }),
      ...(defaultAnchors !== undefined && { defaultAnchors }),
      ...(maxAnchorsPerKey !== undefined && { maxAnchorsPerKey }),
      ...(logger !== undefined && { logger }),
    },
    readyTimeoutMillis: parsed.data.readyTimeoutMillis,
    logger,
    anchorOptions: given,
  };
  return { settings, anchors: pickAnchorOptions(parsed.data) };
}

export function registerAnchorpool(options: RegisterOptions = {}): void {
  setChannelSettings(resolveRegisterOptions(options).settings);
  registerResolver('etcd', AnchorResolver);
  registerResolver('pass', AnchorResolver);
  if (!isLoadBalancerNameRegistered(POLICY_NAME)) {
    registerLoadBalancerType(POLICY_NAME, AnchoredRoundRobin, AnchoredRoundRobinConfig);
  }
}
