/**
 * registerAnchorpool(): makes `etcd:///…` and `pass:///…` usable as grpc-js channel
 * targets, with anchored_round_robin as their default policy. Idempotent; later calls
 * update the etcd settings used by channels created afterwards.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import { etcdOptionsSchema, formatZodError, sourceOptionsSchema, type EtcdOptions, type OptionsAgree } from '../config.js';
import { outlierDetectionSchema, type OutlierDetectionOptions } from '../pool-config.js';
import { AnchoredRoundRobin } from './load-balancer.js';
import { AnchoredRoundRobinConfig } from './policy-config.js';
import { isLoadBalancerNameRegistered, registerLoadBalancerType, registerResolver } from './experimental.js';
import { AnchorResolver, POLICY_NAME, configureResolvers } from './resolver.js';

/**
 * Settings of `registerAnchorpool()`, used by every `etcd:///…` and `pass:///…` channel
 * created afterwards. Every option is optional.
 */
export interface RegisterOptions {
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
   * UNAVAILABLE (it keeps trying), in milliseconds. Default 10_000, from 1 to 2^31 - 1.
   */
  readyTimeoutMillis?: number;
  /**
   * Client-side health checks (gRFC A17) for the channels it serves: each anchor
   * (subchannel) runs a grpc.health.v1 Watch on its own connection and gets calls only
   * while SERVING, as for `createPool({ healthCheck })`. A channel's own service config
   * wins: `{"loadBalancingConfig":[{"anchored_round_robin":{"healthCheckConfig":{"serviceName":""}}}]}`.
   * Default: off.
   */
  healthCheck?: { serviceName?: string };
  /**
   * Passive outlier ejection for the channels it serves, as `createPool({ outlierDetection })`
   * (calls report their status through the policy's picker). The policy's own config
   * `{"anchored_round_robin":{"outlierDetection":{…}}}` wins. Default: off.
   */
  outlierDetection?: OutlierDetectionOptions;
  /**
   * Refresh each anchor (subchannel) after this age, make before break, as
   * `createPool({ anchorMaxAgeMillis })`; a key's `maxAgeSeconds` wins. The policy's own
   * config `{"anchored_round_robin":{"anchorMaxAgeMillis":…}}` wins. Default 0 = off.
   */
  anchorMaxAgeMillis?: number;
  /**
   * How a call's anchor is chosen, as `createPool({ pick })`: 'round-robin' (default) or
   * 'least-loaded' (the less busy of two drawn, by calls in flight). The policy's own
   * config `{"anchored_round_robin":{"pick":"least-loaded"}}` wins.
   */
  pick?: 'round-robin' | 'least-loaded';
  /**
   * Calls one anchor (connection) carries at once, as `createPool({ maxLeasesPerAnchor })`:
   * set it to the servers' MAX_CONCURRENT_STREAMS, and calls beyond it go to other
   * anchors or wait in the channel instead of queueing unseen on a full connection; a key
   * with `maxAnchors` opens more anchors when all of its are full. With health checks the
   * Watch stream is one of them (so at least 2). The policy's own config
   * `{"anchored_round_robin":{"maxCallsPerAnchor":…}}` wins. Default: no cap.
   */
  maxCallsPerAnchor?: number;
  /**
   * How long a key's extra anchors must stay at or under half of what one anchor fewer
   * could carry before one drains back, as `createPool({ extraAnchorIdleMillis })`.
   * Default 30_000.
   */
  extraAnchorIdleMillis?: number;
}

const registerSchema = z
  .object({
    etcd: etcdOptionsSchema.omit({ prefix: true }).optional(),
    defaultAnchors: z.number().int().min(1).optional(),
    maxAnchorsPerKey: sourceOptionsSchema.shape.maxAnchorsPerKey.optional(),
    logger: sourceOptionsSchema.shape.logger,
    readyTimeoutMillis: z.number().int().min(1).max(2_147_483_647).default(10_000),
    healthCheck: z.object({ serviceName: z.string().optional() }).strict().optional(),
    outlierDetection: outlierDetectionSchema.optional(),
    anchorMaxAgeMillis: z.number().int().min(0).max(2_147_483_647).optional(),
    pick: z.enum(['round-robin', 'least-loaded']).optional(),
    maxCallsPerAnchor: z.number().int().min(1).max(2_147_483_647).optional(),
    extraAnchorIdleMillis: z.number().int().min(0).max(2_147_483_647).optional(),
  })
  .strict();

// RegisterOptions is what users read; this fails to compile when it drifts from the schema.
true satisfies OptionsAgree<RegisterOptions, z.input<typeof registerSchema>>;

export function registerAnchorpool(options: RegisterOptions = {}): void {
  const parsed = registerSchema.safeParse(options);
  if (!parsed.success) throw new ConfigError(`invalid registerAnchorpool options: ${formatZodError(parsed.error)}`);
  if (options.healthCheck !== undefined && options.maxCallsPerAnchor === 1) {
    throw new ConfigError('invalid registerAnchorpool options: maxCallsPerAnchor must be at least 2 with healthCheck (the Watch stream is one of the connection\'s calls)');
  }
  // Pass the caller's raw etcd options on: createSource validates them again and fills defaults.
  const settings: Parameters<typeof configureResolvers>[0] = { readyTimeoutMillis: parsed.data.readyTimeoutMillis };
  configureResolvers({
    ...settings,
    ...(options.etcd !== undefined && { etcd: options.etcd }),
    ...(options.defaultAnchors !== undefined && { defaultAnchors: options.defaultAnchors }),
    ...(options.maxAnchorsPerKey !== undefined && { maxAnchorsPerKey: options.maxAnchorsPerKey }),
    ...(options.logger !== undefined && { logger: options.logger }),
    ...(options.healthCheck !== undefined && { healthCheck: { serviceName: options.healthCheck.serviceName ?? '' } }),
    ...(parsed.data.outlierDetection !== undefined && { outlierDetection: parsed.data.outlierDetection }),
    ...(options.anchorMaxAgeMillis !== undefined && { anchorMaxAgeMillis: options.anchorMaxAgeMillis }),
    ...(options.pick !== undefined && { pick: options.pick }),
    ...(options.maxCallsPerAnchor !== undefined && { maxCallsPerAnchor: options.maxCallsPerAnchor }),
    ...(options.extraAnchorIdleMillis !== undefined && { extraAnchorIdleMillis: options.extraAnchorIdleMillis }),
  });
  registerResolver('etcd', AnchorResolver);
  registerResolver('pass', AnchorResolver);
  if (!isLoadBalancerNameRegistered(POLICY_NAME)) {
    registerLoadBalancerType(POLICY_NAME, AnchoredRoundRobin, AnchoredRoundRobinConfig);
  }
}
