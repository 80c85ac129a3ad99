/**
 * registerAnchorpool(): makes `etcd:///…` and `pass:///…` usable as grpc-js channel
 * targets, with anchored_round_robin as their default policy. Idempotent; later calls
 * update the etcd settings used by channels created afterwards.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { etcdOptionsSchema, formatZodError, sourceOptionsSchema } from '../config.js';
import { AnchoredRoundRobin, AnchoredRoundRobinConfig } from './load-balancer.js';
import { isLoadBalancerNameRegistered, registerLoadBalancerType, registerResolver } from './experimental.js';
import { AnchorResolver, POLICY_NAME, configureResolvers } from './resolver.js';

const registerSchema = z
  .object({
    etcd: etcdOptionsSchema.omit({ prefix: true }).optional(),
    defaultAnchors: z.number().int().min(1).optional(),
    maxAnchorsPerKey: sourceOptionsSchema.shape.maxAnchorsPerKey.optional(),
    logger: sourceOptionsSchema.shape.logger,
    readyTimeoutMillis: z.number().int().min(1).max(2_147_483_647).default(10_000),
  })
  .strict();

export type RegisterOptions = z.input<typeof registerSchema>;

export function registerAnchorpool(options: RegisterOptions = {}): void {
  const parsed = registerSchema.safeParse(options);
  if (!parsed.success) throw new ConfigError(`invalid registerAnchorpool options: ${formatZodError(parsed.error)}`);
  // Pass the caller's raw etcd options on: createSource validates them again and fills defaults.
  const settings: Parameters<typeof configureResolvers>[0] = { readyTimeoutMillis: parsed.data.readyTimeoutMillis };
  configureResolvers({
    ...settings,
    ...(options.etcd !== undefined && { etcd: options.etcd }),
    ...(options.defaultAnchors !== undefined && { defaultAnchors: options.defaultAnchors }),
    ...(options.maxAnchorsPerKey !== undefined && { maxAnchorsPerKey: options.maxAnchorsPerKey }),
    ...(options.logger !== undefined && { logger: options.logger }),
  });
  registerResolver('etcd', AnchorResolver);
  registerResolver('pass', AnchorResolver);
  if (!isLoadBalancerNameRegistered(POLICY_NAME)) {
    registerLoadBalancerType(POLICY_NAME, AnchoredRoundRobin, AnchoredRoundRobinConfig);
  }
}
