/**
 * Options of the lease pool: the discovery options plus connection and lease settings,
 * validated with zod. Names follow generic-pool where the meaning is the same.
 */
import * as grpc from '@grpc/grpc-js';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { formatZodError, sourceOptionsSchema, type SourceOptions } from './config.js';

const millis = z.number().int().min(0).max(2_147_483_647);

export const poolOptionsSchema = sourceOptionsSchema.extend({
  /** Credentials for the backends (default: insecure). */
  credentials: z
    .custom<grpc.ChannelCredentials>((value) => value instanceof grpc.ChannelCredentials, { error: 'must be grpc.ChannelCredentials' })
    .optional(),
  /** Passed to every anchor channel. */
  channelOptions: z.record(z.string(), z.unknown()).optional(),
  /** Stream slots per anchor; 1 gives exclusive leases. */
  maxLeasesPerAnchor: z.number().int().min(1).max(1_000_000).default(100),
  acquireTimeoutMillis: millis.default(5000),
  maxWaitingClients: z.number().int().min(0).default(10_000),
  /** Reject at once instead of waiting when no anchor can take a lease. */
  failFast: z.boolean().default(false),
  /** How long a draining anchor waits for its leases before it closes anyway. */
  drainTimeoutMillis: millis.default(30_000),
  /** Default timeout of ready(). */
  readyTimeoutMillis: millis.default(10_000),
  /** Report leases held longer than this, with the stack of their acquire (0 = off). */
  leakDetectionMillis: millis.default(0),
});

export type PoolOptions = z.input<typeof poolOptionsSchema>;

export interface ResolvedPoolOptions {
  readonly source: SourceOptions;
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions: grpc.ChannelOptions;
  readonly maxLeasesPerAnchor: number;
  readonly acquireTimeoutMillis: number;
  readonly maxWaitingClients: number;
  readonly failFast: boolean;
  readonly drainTimeoutMillis: number;
  readonly readyTimeoutMillis: number;
  readonly leakDetectionMillis: number;
}

const POOL_ONLY_KEYS = new Set([
  'credentials',
  'channelOptions',
  'maxLeasesPerAnchor',
  'acquireTimeoutMillis',
  'maxWaitingClients',
  'failFast',
  'drainTimeoutMillis',
  'readyTimeoutMillis',
  'leakDetectionMillis',
]);

export function resolvePoolOptions(input: PoolOptions): ResolvedPoolOptions {
  const parsed = poolOptionsSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`invalid pool options: ${formatZodError(parsed.error)}`);
  const options = parsed.data;
  // The discovery part is validated again (and resolved) by createSource.
  const source = Object.fromEntries(Object.entries(input).filter(([key]) => !POOL_ONLY_KEYS.has(key))) as SourceOptions;
  return {
    source,
    credentials: options.credentials ?? grpc.credentials.createInsecure(),
    channelOptions: (options.channelOptions ?? {}) as grpc.ChannelOptions,
    maxLeasesPerAnchor: options.maxLeasesPerAnchor,
    acquireTimeoutMillis: options.acquireTimeoutMillis,
    maxWaitingClients: options.maxWaitingClients,
    failFast: options.failFast,
    drainTimeoutMillis: options.drainTimeoutMillis,
    readyTimeoutMillis: options.readyTimeoutMillis,
    leakDetectionMillis: options.leakDetectionMillis,
  };
}
