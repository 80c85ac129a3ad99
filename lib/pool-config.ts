/**
 * Options of the lease pool: the discovery options plus connection and lease settings,
 * validated with zod. Names follow generic-pool where the meaning is the same.
 */
import * as grpc from '@grpc/grpc-js';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { DEFAULT_FAILURE_CODES } from './call-outcome.js';
import { formatZodError, sourceOptionsSchema, type OptionsAgree, type SourceOptions } from './config.js';
import { DEFAULT_OUTLIER_DETECTION } from './outlier-detector.js';

/**
 * Options of `createPool()`: what to discover (every SourceOptions field) plus how to
 * connect to the backends and how leases are handed out. Times are in milliseconds,
 * integers from 0 to 2^31 - 1 (Node's timer limit).
 */
export interface PoolOptions extends SourceOptions {
  /** Credentials for every anchor channel to the backends. Default: insecure (plaintext). */
  credentials?: grpc.ChannelCredentials;
  /** grpc-js channel options passed to every anchor channel (`'grpc.…': value`). Default: none. */
  channelOptions?: grpc.ChannelOptions;
  /**
   * Leases (concurrent streams or calls) one anchor carries at a time; 1 gives exclusive
   * leases. Default 100, from 1 to 1,000,000.
   */
  maxLeasesPerAnchor?: number;
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
  /** Default timeout of `ready()`. Default 10_000. */
  readyTimeoutMillis?: number;
  /**
   * Report a lease held longer than this (the `lease-leak` event, with the stack of its
   * acquire). Default 0 = off.
   */
  leakDetectionMillis?: number;
  /**
   * Refresh every anchor after this age, make before break: a new connection for the same
   * (key, index) connects (and passes its health check, when those are on) before the old
   * one drains, one anchor of a key at a time, the age jittered ±15%. For addresses that are
   * L4 load balancers (a Kubernetes Service, HAProxy in TCP mode): each connection stays on
   * the server it landed on, so servers added later get nothing until connections are
   * made again. A key's value field `maxAgeSeconds` wins for its key. Default 0 = off.
   */
  anchorMaxAgeMillis?: number;
  /**
   * How a lease's anchor is chosen among those that can take one. 'round-robin' (the
   * default): the schedule, each key in proportion to its N. 'least-loaded': of two
   * anchors drawn at random (each key still in proportion to its N), the one with fewer
   * leases out (Finagle's p2c, Envoy's least_request): a slow backend holds its leases
   * longer and is drawn less. For backends of uneven speed; round robin keeps the shares exact.
   */
  pick?: 'round-robin' | 'least-loaded';
  /**
   * A key whose value allows more anchors than its N (`"maxAnchors"`, or `addr#N-M`) opens
   * one more (one at a time) when callers wait and all of its anchors are full; extra
   * anchors drain back, newest first, once the key's leases have stayed at or under half of
   * what one anchor fewer could carry for this long. Default 30_000.
   */
  extraAnchorIdleMillis?: number;
  /**
   * Client-side health checks (gRFC A17): each anchor runs a grpc.health.v1 `Watch` stream
   * on its own connection and takes leases only while its last status is SERVING (after a
   * reconnect it waits for the first SERVING). A backend without a health service
   * (UNIMPLEMENTED) counts as healthy, with one warning per address. The stream is one of
   * the connection's streams, so an anchor then carries `maxLeasesPerAnchor - 1` leases.
   * Default: off.
   */
  healthCheck?: HealthCheckOptions;
  /**
   * Passive outlier ejection (modelled on gRFC A50 and Envoy): an endpoint entry whose
   * calls fail is taken out of rotation for a while, longer each time. Outcomes come from
   * `lease.release(outcome)` and from `pool.client()` calls. Default: off; `{}` turns it on
   * with the defaults below.
   */
  outlierDetection?: OutlierDetectionOptions;
}

export interface OutlierDetectionOptions {
  /** Failed calls in a row that eject an entry at once. Default 5 (Envoy's consecutive_5xx); 0 turns this check off. */
  consecutiveFailures?: number;
  /** How often ejections end and the failure percentage is checked. Default 10_000 (A50's interval). */
  intervalMillis?: number;
  /** Eject an entry whose failed share of the interval's calls is at least this. Default 85 (A50); 0 turns this check off. */
  failurePercentage?: number;
  /** … if it had at least this many calls in the interval. Default 50 (A50's request_volume). */
  requestVolume?: number;
  /** First ejection time; the n-th lasts n times this. Default 30_000 (A50, Envoy). */
  baseEjectionTimeMillis?: number;
  /** The longest an ejection lasts. Default 300_000 (A50, Envoy). */
  maxEjectionTimeMillis?: number;
  /** At most this share of the entries is ejected at once; one always may be. Default 10 (A50, Envoy). */
  maxEjectionPercent?: number;
  /** The status codes that count as failures. Default UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE, DATA_LOSS. */
  failureCodes?: number[];
}

export interface HealthCheckOptions {
  /** The service name asked for, as registered in the backend's health service. Default '' (the whole server). */
  serviceName?: string;
  /** Backoff before a failed Watch stream is opened again: first delay. Default 100. */
  retryInitialMillis?: number;
  /** … and the longest delay (decorrelated jitter between the two). Default 5000. */
  retryMaxMillis?: number;
}

const millis = z.number().int().min(0).max(2_147_483_647);

/** Validates OutlierDetectionOptions (documented there); shared by the pool and the anchored_round_robin policy. */
export const outlierDetectionSchema = z
  .object({
      consecutiveFailures: z.number().int().min(0).max(1_000_000).default(DEFAULT_OUTLIER_DETECTION.consecutiveFailures),
      intervalMillis: z.number().int().min(1).max(2_147_483_647).default(DEFAULT_OUTLIER_DETECTION.intervalMillis),
      failurePercentage: z.number().min(0).max(100).default(DEFAULT_OUTLIER_DETECTION.failurePercentage),
      requestVolume: z.number().int().min(1).max(1_000_000_000).default(DEFAULT_OUTLIER_DETECTION.requestVolume),
      baseEjectionTimeMillis: z.number().int().min(1).max(2_147_483_647).default(DEFAULT_OUTLIER_DETECTION.baseEjectionTimeMillis),
      maxEjectionTimeMillis: z.number().int().min(1).max(2_147_483_647).default(DEFAULT_OUTLIER_DETECTION.maxEjectionTimeMillis),
      maxEjectionPercent: z.number().min(0).max(100).default(DEFAULT_OUTLIER_DETECTION.maxEjectionPercent),
      failureCodes: z.array(z.number().int().min(1).max(16)).default([...DEFAULT_FAILURE_CODES]),
  })
  .strict();

function isJsonObject(text: unknown): boolean {
  if (typeof text !== 'string') return false;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** Validates PoolOptions (documented there); the defaults live here only. */
const poolOptionsSchema = sourceOptionsSchema.extend({
  credentials: z
    .custom<grpc.ChannelCredentials>((value) => value instanceof grpc.ChannelCredentials, { error: 'must be grpc.ChannelCredentials' })
    .optional(),
  channelOptions: z
    .record(z.string(), z.unknown())
    .refine((options) => options['grpc.service_config'] === undefined || isJsonObject(options['grpc.service_config']), {
      error: "'grpc.service_config' must be a JSON object in a string",
    })
    .optional(),
  maxLeasesPerAnchor: z.number().int().min(1).max(1_000_000).default(100),
  acquireTimeoutMillis: millis.default(5000),
  maxWaitingClients: z.number().int().min(0).default(10_000),
  failFast: z.boolean().default(false),
  drainTimeoutMillis: millis.default(30_000),
  readyTimeoutMillis: millis.default(10_000),
  leakDetectionMillis: millis.default(0),
  anchorMaxAgeMillis: millis.default(0),
  pick: z.enum(['round-robin', 'least-loaded']).default('round-robin'),
  extraAnchorIdleMillis: z.number().int().min(1).max(2_147_483_647).default(30_000),
  outlierDetection: z
    .lazy(() => outlierDetectionSchema)
    .optional(),
  healthCheck: z
    .object({
      serviceName: z.string().default(''),
      retryInitialMillis: z.number().int().min(1).max(2_147_483_647).default(100),
      retryMaxMillis: z.number().int().min(1).max(2_147_483_647).default(5000),
    })
    .strict()
    .optional(),
});

// PoolOptions is what users read; this fails to compile when it drifts from the schema.
true satisfies OptionsAgree<PoolOptions, z.input<typeof poolOptionsSchema>>;

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
  readonly anchorMaxAgeMillis: number;
  readonly pick: 'round-robin' | 'least-loaded';
  readonly extraAnchorIdleMillis: number;
  readonly healthCheck: Required<HealthCheckOptions> | undefined;
  readonly outlierDetection: Required<OutlierDetectionOptions> | undefined;
}

const POOL_ONLY_KEYS = new Set([
  'healthCheck',
  'outlierDetection',
  'credentials',
  'channelOptions',
  'maxLeasesPerAnchor',
  'acquireTimeoutMillis',
  'maxWaitingClients',
  'failFast',
  'drainTimeoutMillis',
  'readyTimeoutMillis',
  'leakDetectionMillis',
  'anchorMaxAgeMillis',
  'pick',
  'extraAnchorIdleMillis',
]);

export function resolvePoolOptions(input: PoolOptions): ResolvedPoolOptions {
  const parsed = poolOptionsSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`invalid pool options: ${formatZodError(parsed.error)}`);
  const options = parsed.data;
  if (options.healthCheck !== undefined && options.maxLeasesPerAnchor < 2) {
    throw new ConfigError('invalid pool options: healthCheck needs maxLeasesPerAnchor of at least 2 (the health stream takes one of the connection\'s streams)');
  }
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
    anchorMaxAgeMillis: options.anchorMaxAgeMillis,
    pick: options.pick,
    extraAnchorIdleMillis: options.extraAnchorIdleMillis,
    healthCheck: options.healthCheck,
    outlierDetection: options.outlierDetection,
  };
}
