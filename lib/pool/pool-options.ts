/**
 * Options of the lease pool: the discovery options plus connection and lease settings,
 * validated with zod. Names follow generic-pool where the meaning is the same.
 */
import * as grpc from '@grpc/grpc-js';
import { z } from 'zod';
import { anchorOptionRules, anchorOptionsShape, pickAnchorOptions, type AnchorOptions, type ResolvedAnchorOptions } from '../anchors/anchor-options.js';
import { ConfigError } from '../core/errors.js';
import { readyTimeoutMillisSchema, resolveSourceOptions, sourceOptionsSchema, type SourceOptions } from '../discovery/source-options.js';
import { coordinationSettings, type CoordinationSettings } from '../discovery/client-membership.js';
import { formatZodError, millis, type OptionsAgree } from '../core/option-schema.js';

/**
 * Options of `createPool()`: what to discover (every SourceOptions field), how anchors
 * behave (every AnchorOptions field, the same as for grpc-js channels), plus how to
 * connect to the backends and how leases are handed out. Times are in milliseconds,
 * integers from 0 to 2^31 - 1 (Node's timer limit).
 */
export interface PoolOptions extends SourceOptions, AnchorOptions {
  /** Credentials for every anchor channel to the backends. Default: insecure (plaintext). */
  credentials?: grpc.ChannelCredentials;
  /** grpc-js channel options passed to every anchor channel (`'grpc.…': value`). Default: none. */
  channelOptions?: grpc.ChannelOptions;
  /**
   * How long `acquire()` waits for a free slot before it rejects with AcquireTimeoutError,
   * unless the call gives its own `timeoutMillis`. Default 5000; with 0 a caller that
   * has to wait gives up on the next timer tick.
   */
  acquireTimeoutMillis?: number;
  /**
   * The most callers that may wait in `acquire()` at once; one more is rejected with
   * TooManyWaitersError. Default 10,000; 0 means none may wait.
   */
  maxWaitingClients?: number;
  /**
   * Reject `acquire()` at once with NoAnchorAvailableError when no anchor can take a
   * lease, instead of waiting. Default false.
   */
  failFast?: boolean;
  /**
   * How long an anchor whose endpoint was removed (or the whole pool, on `close()`) waits
   * for its leases to be released before it closes anyway. Default 30_000.
   */
  drainTimeoutMillis?: number;
  /** Default timeout of `ready()`. Default 10_000; with 0 a pool not ready yet rejects on the next timer tick. */
  readyTimeoutMillis?: number;
  /**
   * Report a lease held longer than this (the `lease-leak` event, with the stack of its
   * acquire). Default 0 = off.
   */
  leakDetectionMillis?: number;
}

function isJsonObject(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** Validates PoolOptions (documented there); the defaults live here and in anchor-options.ts only. */
const poolOptionsSchema = sourceOptionsSchema
  .extend({
    credentials: z
      .custom<grpc.ChannelCredentials>((value) => value instanceof grpc.ChannelCredentials, { error: 'must be grpc.ChannelCredentials' })
      .optional(),
    channelOptions: z
      .record(z.string(), z.unknown())
      .refine((options) => options['grpc.service_config'] === undefined || isJsonObject(options['grpc.service_config']), {
        error: "'grpc.service_config' must be a JSON object in a string",
      })
      .optional(),
    acquireTimeoutMillis: millis(0).default(5000),
    maxWaitingClients: z.number().int().min(0).default(10_000),
    failFast: z.boolean().default(false),
    drainTimeoutMillis: millis(0).default(30_000),
    readyTimeoutMillis: readyTimeoutMillisSchema,
    leakDetectionMillis: millis(0).default(0),
    ...anchorOptionsShape,
  })
  .superRefine(anchorOptionRules);

// PoolOptions is what users read; this fails to compile when it drifts from the schema.
true satisfies OptionsAgree<PoolOptions, z.input<typeof poolOptionsSchema>>;

export interface ResolvedPoolOptions {
  readonly source: SourceOptions;
  /** Coordinated subsets: where this pool registers among the clients. */
  readonly coordination: CoordinationSettings | undefined;
  readonly anchors: ResolvedAnchorOptions;
  readonly credentials: grpc.ChannelCredentials;
  readonly channelOptions: grpc.ChannelOptions;
  readonly acquireTimeoutMillis: number;
  readonly maxWaitingClients: number;
  readonly failFast: boolean;
  readonly drainTimeoutMillis: number;
  readonly readyTimeoutMillis: number;
  readonly leakDetectionMillis: number;
}

export function resolvePoolOptions(input: PoolOptions): ResolvedPoolOptions {
  const parsed = poolOptionsSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`invalid pool options: ${formatZodError(parsed.error)}`);
  const options = parsed.data;
  // The discovery part is validated again (and resolved) by createSource.
  const sourceKeys = new Set(Object.keys(sourceOptionsSchema.shape));
  const source = Object.fromEntries(Object.entries(input).filter(([key]) => sourceKeys.has(key))) as SourceOptions;
  const anchors = pickAnchorOptions(options);
  let coordination: CoordinationSettings | undefined;
  if (anchors.subset?.mode === 'coordinated') {
    const settings = coordinationSettings(resolveSourceOptions(source).etcd, anchors.subset);
    if ('error' in settings) throw new ConfigError(`invalid pool options: ${settings.error}`);
    coordination = settings;
  }
  return {
    source,
    coordination,
    anchors,
    credentials: options.credentials ?? grpc.credentials.createInsecure(),
    channelOptions: (options.channelOptions ?? {}) as grpc.ChannelOptions,
    acquireTimeoutMillis: options.acquireTimeoutMillis,
    maxWaitingClients: options.maxWaitingClients,
    failFast: options.failFast,
    drainTimeoutMillis: options.drainTimeoutMillis,
    readyTimeoutMillis: options.readyTimeoutMillis,
    leakDetectionMillis: options.leakDetectionMillis,
  };
}
