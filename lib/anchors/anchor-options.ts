/**
 * The options that shape how anchors behave (their stream cap, the pick, refresh, growth,
 * health checks, outlier ejection, liveness, slow start, zones), defined once for both paths: `createPool()`,
 * `registerAnchorpool()` and the `anchored_round_robin` policy's JSON config accept these
 * names with the same shapes, ranges and defaults, because all three are derived from the
 * one schema below. Adding an option here adds it everywhere; the parity spec
 * (spec/anchor-options-parity.spec.ts) walks this schema to prove it.
 *
 * In the policy's JSON config the names are the same and durations are the same
 * `…Millis` integers (not protobuf duration strings): the config is anchorpool's own,
 * written in anchorpool's vocabulary.
 */
import { z } from 'zod';
import { DEFAULT_FAILURE_CODES } from '../core/call-outcome.js';
import { millis, type OptionsAgree } from '../core/option-schema.js';
import { MAX_TIMER_SECONDS } from '../core/timer-limit.js';
import { isZoneName, ZONE_ENVIRONMENT_VARIABLE, ZONE_RULE, zoneNameSchema } from '../core/zone-name.js';
import { DEFAULT_GROWTH_SETTINGS } from './anchor-growth.js';
import { DEFAULT_CONNECT_TIMEOUT_MILLIS, DEFAULT_LIVENESS, type LivenessWatchSettings } from './liveness-watch.js';
import { DEFAULT_OUTLIER_DETECTION } from './outlier-detector.js';
import { DEFAULT_SLOW_START } from './slow-start.js';
import { DEFAULT_ZONE_THRESHOLDS, type ZoneSettings } from './zone-shares.js';
import type { SubsetSettings } from './subset-filter.js';
import { randomUUID } from 'node:crypto';

/** The default subset size, and the largest one allowed. */
export const DEFAULT_SUBSET_SIZE = 10;
export const MAX_SUBSET_SIZE = 10_000;

/** How an anchor is chosen for a lease or a call. */
export type PickMode = 'round-robin' | 'least-loaded' | 'peak-ewma';

/**
 * Anchor behaviour, the same on every path. Times are in milliseconds, integers up to
 * 2^31 - 1 (Node's timer limit).
 */
export interface AnchorOptions {
  /**
   * Streams one anchor (one HTTP/2 connection) carries at once: leases on the pool, calls
   * on a grpc-js channel, the health Watch stream included when health checks are on.
   * Set it to the servers' MAX_CONCURRENT_STREAMS: beyond it leases wait in `acquire()`
   * and calls go to other anchors or wait in the channel, instead of queueing unseen on a
   * full connection; a key with `maxAnchors` opens more anchors when all of its are full.
   * 1 gives exclusive leases. Default 100 (HTTP/2's recommended minimum), from 1 to 1,000,000.
   */
  maxStreamsPerAnchor?: number;
  /**
   * How an anchor is chosen among those that can take a stream. 'round-robin' (the
   * default): the schedule, each key in proportion to its N. 'least-loaded': of two
   * anchors drawn at random (each key still in proportion to its N), the one with fewer
   * streams in flight (Finagle's p2c, Envoy's least_request): a slow backend holds its
   * streams longer and is drawn less. 'peak-ewma': of three drawn, the one of lowest
   * latency × (streams + 1), the latency a peak-sensitive moving average of its calls
   * (Finagle's and go-zero's p2c): it tells a 5 ms backend from a 50 ms one even when
   * a few callers keep in-flight counts at 0 or 1 (see lib/anchors/peak-ewma.ts for the
   * decay and how a recovered backend wins its share back). Round robin keeps the shares
   * exact.
   */
  pick?: PickMode;
  /**
   * Refresh every anchor after this age, make before break: a new connection for the same
   * (key, index) connects (and passes its health check, when those are on) before the old
   * one drains, one anchor of a key at a time, the age jittered ±15%. For addresses that
   * are L4 load balancers (a Kubernetes Service, HAProxy in TCP mode): each connection
   * stays on the server it landed on, so servers added later get nothing until
   * connections are made again. A key's value field `maxAgeSeconds` wins for its key.
   * Default 0 = off.
   */
  anchorMaxAgeMillis?: number;
  /**
   * A key whose value allows more anchors than its N (`"maxAnchors"`, or `addr#N-M`) opens
   * one more (one at a time) when streams wait and all of its anchors are full; extra
   * anchors drain back, newest first, once the key's streams have stayed at or under half
   * of what one anchor fewer could carry for this long. Default 30_000; 0 drains back at
   * the first quiet sample.
   */
  extraAnchorIdleMillis?: number;
  /**
   * Client-side health checks (gRFC A17): each anchor runs a grpc.health.v1 `Watch`
   * stream on its own connection and takes streams only while its last status is SERVING
   * (after a reconnect it waits for the first SERVING). A backend without a health service
   * (UNIMPLEMENTED) counts as healthy, with one warning per address and pool or channel.
   * The Watch is one of the connection's streams, so `maxStreamsPerAnchor` must be at
   * least 2. Default: off; `{}` turns it on for the whole server ('').
   */
  healthCheck?: HealthCheckOptions;
  /**
   * Passive outlier ejection (modelled on gRFC A50 and Envoy): an endpoint entry whose
   * calls fail is taken out of rotation for a while, longer each time. Outcomes come from
   * `lease.release(outcome)`, `pool.client()` calls and the calls of a grpc-js channel.
   * Default: off; `{}` turns it on with the defaults below.
   */
  outlierDetection?: OutlierDetectionOptions;
  /**
   * Finds a connection that stopped answering without closing (a frozen host, a path that
   * black-holes packets: no RST comes and grpc-js keeps it READY). When streams wait on a
   * connection and nothing at all has been read from it for `quietMillis`, the anchor
   * sends one HTTP/2 PING; no answer within `pingTimeoutMillis` drops the connection: its
   * calls fail with UNAVAILABLE and the anchor reconnects at once. Pings follow the rule
   * grpc-go servers enforce (see docs/failure-behaviour.md), so they never cost a GOAWAY.
   * Default on, with the defaults below; `false` turns it off.
   */
  liveness?: LivenessOptions | false;
  /**
   * How long a connection attempt may take before it is given up and tried again at once
   * (grpc-js itself waits as long as TCP does: about 2 minutes for a host that drops SYNs,
   * for ever for one that accepts and says nothing). Set it above the worst connect and
   * TLS handshake time of your network. Default 3000; 0 leaves attempts to grpc-js.
   */
  connectTimeoutMillis?: number;
  /**
   * A key that comes (back) into rotation — a new key or address, a restarted backend,
   * back from NOT_SERVING or an ejection — gets its share ramped up over a window instead
   * of all at once (Envoy's slow start): share × max(minWeightPercent / 100,
   * (t / windowMillis) ^ (1 / aggression)). The share, not the connections: its anchors
   * connect at once. Works with every pick. Keys of the first resolution do not ramp.
   * Default: off; `{}` turns it on with the defaults below.
   */
  slowStart?: SlowStartOptions;
  /**
   * The caller's own zone, for zone-aware routing: calls stay on keys of this zone (and
   * keys without a zone, which count as in every zone) while enough of them are in
   * rotation; see zoneRouting. Default: the ANCHORPOOL_ZONE environment variable, else
   * none (zones are not used). 1 to 128 characters of A-Z a-z 0-9 . _ : / -.
   */
  zone?: string;
  /** When calls leave the caller's zone (used only with a zone). */
  zoneRouting?: ZoneRoutingOptions;
  /**
   * Keep anchors to a subset of the prefix's keys only, so a backend's connections do not
   * grow with the number of clients (gRFC A68's random subsetting): the `size` keys of
   * highest rendezvous rank for this client (all of them when there are fewer), each
   * key's share inside the subset still by its N. A key that failed (its connections in
   * TRANSIENT_FAILURE, NOT_SERVING, ejected) does not count: the subset widens by one key
   * and narrows back when it serves again; a key leaving the subset stays until its
   * replacement serves. A client is one pool or one channel's policy. Default: off; `{}`
   * turns it on with the defaults below.
   */
  subset?: SubsetOptions;
}

export interface SubsetOptions {
  /** Keys that can serve kept in the subset. Default 10, from 1 to 10,000. */
  size?: number;
  /**
   * How the subset is chosen. Default 'rendezvous'.
   * - 'rendezvous': each client ranks the keys by a hash of its id and the key (gRFC A68);
   *   no coordination, and a backend's share of the clients varies (about ±1/√(C·S/K)).
   * - 'coordinated': each client registers under `clientsPrefix` in etcd (the clients of a
   *   process on one lease) and computes the fleet's assignment from the registered ids and
   *   the keys, the same on every client: every key is in the same number of subsets ±1,
   *   and keys or clients coming or going move about what rendezvous moves. Every client
   *   under one `clientsPrefix` must use the same `size`. Needs an etcd target.
   */
  mode?: 'rendezvous' | 'coordinated';
  /**
   * This client's id in the ranking. Default: a random UUID per pool, or per policy
   * instance on a channel (grpc-js makes a new instance when an idle channel wakes, so
   * set it for a subset that stays); two clients with one id get the same subset (in
   * coordinated mode etcd reports it as a conflict). 1 to 256 characters of
   * A-Z a-z 0-9 . _ : -.
   */
  clientId?: string;
  /**
   * Coordinated mode: the etcd prefix the clients register under. Default
   * `anchorpool.clients/` + the backends' prefix (`anchorpool.clients/services/echo/`),
   * outside the backends' prefix and every prefix above it. Must not overlap the backends'
   * prefix. A missing trailing `/` is added.
   */
  clientsPrefix?: string;
  /**
   * Coordinated mode: the TTL of the client's registration lease, in seconds: how soon the
   * others take over a dead client's keys. Default 10, from 2 to 2,147,483.
   */
  ttlSeconds?: number;
}

export interface SlowStartOptions {
  /** How long the ramp lasts. Default 30_000, at least 1. */
  windowMillis?: number;
  /** The ramp's curve: 1 linear, above 1 fast at first, below 1 slow at first. Default 1, above 0 and at most 100. */
  aggression?: number;
  /** The least share a ramping key gets, in percent of its full share. Default 10, from 0 to 100. */
  minWeightPercent?: number;
}

export interface ZoneRoutingOptions {
  /**
   * While at least this percentage of the local zone's anchors is in rotation, every call
   * stays in the zone; below it the zone keeps (that percentage / this) of the calls and
   * the rest spills to the other zones by their anchors in rotation. Default 100 (the
   * local zone keeps exactly the share of its healthy anchors), from 0 to 100.
   */
  spillBelowPercent?: number;
  /** Below this percentage in rotation, zones are ignored: calls spread over every zone by its anchors in rotation. Default 50, from 0 to 100. */
  panicBelowPercent?: number;
}

export interface LivenessOptions {
  /** Silence on a connection with streams waiting before a ping. Default 1000, at least 1. */
  quietMillis?: number;
  /**
   * How long the PING's answer may take. Default 2000, at least 1. A server that cannot
   * answer a PING for this long (an event loop blocked that long) counts as dead.
   */
  pingTimeoutMillis?: number;
  /**
   * The least time between two pings on one connection when the server wrote nothing in
   * between: the servers' ping policy (grpc-go's MinTime). Default 300_000 (grpc-go's
   * default); lower it only for servers that allow more.
   */
  minPingIntervalMillis?: number;
}

export interface HealthCheckOptions {
  /** The service name asked for, as registered in the backend's health service. Default '' (the whole server). */
  serviceName?: string;
  /** Backoff before a failed Watch stream is opened again: first delay. Default 100, at least 1. */
  retryInitialMillis?: number;
  /** … and the longest delay (decorrelated jitter between the two). Default 5000, at least 1. */
  retryMaxMillis?: number;
}

export interface OutlierDetectionOptions {
  /** Failed calls in a row that eject an entry at once. Default 5 (Envoy's consecutive_5xx); 0 turns this check off. */
  consecutiveFailures?: number;
  /** How often ejections end and the failure percentage is checked. Default 10_000 (A50's interval), at least 1. */
  intervalMillis?: number;
  /** Eject an entry whose failed share of the interval's calls is at least this. Default 85 (A50); 0 turns this check off. */
  failurePercentage?: number;
  /** … if it had at least this many calls in the interval. Default 50 (A50's request_volume). */
  requestVolume?: number;
  /** First ejection time; the n-th lasts n times this. Default 30_000 (A50, Envoy), at least 1. */
  baseEjectionTimeMillis?: number;
  /** The longest an ejection lasts. Default 300_000 (A50, Envoy), at least 1. */
  maxEjectionTimeMillis?: number;
  /** At most this share of the entries is ejected at once; one always may be. Default 10 (A50, Envoy). */
  maxEjectionPercent?: number;
  /** The status codes that count as failures. Default UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE, DATA_LOSS. */
  failureCodes?: number[];
}

const healthCheckSchema = z
  .object({
    serviceName: z.string().default(''),
    retryInitialMillis: millis(1).default(100),
    retryMaxMillis: millis(1).default(5000),
  })
  .strict();

const outlierDetectionSchema = z
  .object({
    consecutiveFailures: z.number().int().min(0).max(1_000_000).default(DEFAULT_OUTLIER_DETECTION.consecutiveFailures),
    intervalMillis: millis(1).default(DEFAULT_OUTLIER_DETECTION.intervalMillis),
    failurePercentage: z.number().min(0).max(100).default(DEFAULT_OUTLIER_DETECTION.failurePercentage),
    requestVolume: z.number().int().min(1).max(1_000_000_000).default(DEFAULT_OUTLIER_DETECTION.requestVolume),
    baseEjectionTimeMillis: millis(1).default(DEFAULT_OUTLIER_DETECTION.baseEjectionTimeMillis),
    maxEjectionTimeMillis: millis(1).default(DEFAULT_OUTLIER_DETECTION.maxEjectionTimeMillis),
    maxEjectionPercent: z.number().min(0).max(100).default(DEFAULT_OUTLIER_DETECTION.maxEjectionPercent),
    failureCodes: z.array(z.number().int().min(1).max(16)).default([...DEFAULT_FAILURE_CODES]),
  })
  .strict();

const livenessSchema = z
  .object({
    quietMillis: millis(1).default(DEFAULT_LIVENESS.quietMillis),
    pingTimeoutMillis: millis(1).default(DEFAULT_LIVENESS.pingTimeoutMillis),
    minPingIntervalMillis: millis(0).default(DEFAULT_LIVENESS.minPingIntervalMillis),
  })
  .strict();

const slowStartSchema = z
  .object({
    windowMillis: millis(1).default(DEFAULT_SLOW_START.windowMillis),
    aggression: z.number().gt(0).max(100).default(DEFAULT_SLOW_START.aggression),
    minWeightPercent: z.number().min(0).max(100).default(DEFAULT_SLOW_START.minWeightPercent),
  })
  .strict();

const zoneRoutingSchema = z
  .object({
    spillBelowPercent: z.number().min(0).max(100).default(DEFAULT_ZONE_THRESHOLDS.spillBelowPercent),
    panicBelowPercent: z.number().min(0).max(100).default(DEFAULT_ZONE_THRESHOLDS.panicBelowPercent),
  })
  .strict();

const subsetSchema = z
  .object({
    size: z.number().int().min(1).max(MAX_SUBSET_SIZE).default(DEFAULT_SUBSET_SIZE),
    mode: z.enum(['rendezvous', 'coordinated']).default('rendezvous'),
    // The id is an etcd key's last segment in coordinated mode: no '/', nothing a shell or a log would mangle.
    clientId: z.string().regex(/^[A-Za-z0-9._:-]{1,256}$/, { error: 'must be 1 to 256 characters of A-Z a-z 0-9 . _ : -' }).optional(),
    clientsPrefix: z
      .string()
      .min(1, { error: 'must not be empty' })
      .transform((prefix) => (prefix.endsWith('/') ? prefix : `${prefix}/`))
      .optional(),
    ttlSeconds: z.number().int().min(2).max(MAX_TIMER_SECONDS).optional(),
  })
  .strict()
  .superRefine((subset, ctx) => {
    if (subset.mode === 'coordinated') return;
    for (const field of ['clientsPrefix', 'ttlSeconds'] as const) {
      if (subset[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: "is used only with mode 'coordinated'" });
    }
  });

/** The caller's zone: the option, else ANCHORPOOL_ZONE (checked by the same rule), else none. */
const zoneSchema = zoneNameSchema.optional().transform((zone, ctx) => {
  if (zone !== undefined) return zone;
  const fromEnvironment = process.env[ZONE_ENVIRONMENT_VARIABLE];
  if (fromEnvironment === undefined || fromEnvironment === '') return undefined;
  if (!isZoneName(fromEnvironment)) {
    ctx.issues.push({ code: 'custom', input: fromEnvironment, message: `${ZONE_RULE} (it came from the ${ZONE_ENVIRONMENT_VARIABLE} environment variable: ${JSON.stringify(fromEnvironment)})` });
    return z.NEVER;
  }
  return fromEnvironment;
});

/** The fields of AnchorOptions with their ranges and defaults: spread into each path's own schema. */
export const anchorOptionsShape = {
  maxStreamsPerAnchor: z.number().int().min(1).max(1_000_000).default(100),
  pick: z.enum(['round-robin', 'least-loaded', 'peak-ewma']).default('round-robin'),
  anchorMaxAgeMillis: millis(0).default(0),
  extraAnchorIdleMillis: millis(0).default(DEFAULT_GROWTH_SETTINGS.idleMillis),
  healthCheck: healthCheckSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  // prefault: the {} given by default is parsed, so its fields get their defaults.
  liveness: z.union([z.literal(false), livenessSchema], { error: 'must be false (off) or an object of liveness settings' }).prefault({}),
  connectTimeoutMillis: millis(0).default(DEFAULT_CONNECT_TIMEOUT_MILLIS),
  slowStart: slowStartSchema.optional(),
  zone: zoneSchema,
  zoneRouting: zoneRoutingSchema.default(DEFAULT_ZONE_THRESHOLDS),
  subset: subsetSchema.optional(),
};

/** The parsed form: every default filled in; health checks and outlier ejection undefined when off, liveness false. */
export interface ResolvedAnchorOptions {
  readonly maxStreamsPerAnchor: number;
  readonly pick: PickMode;
  readonly anchorMaxAgeMillis: number;
  readonly extraAnchorIdleMillis: number;
  readonly healthCheck?: Required<HealthCheckOptions> | undefined;
  readonly outlierDetection?: Required<OutlierDetectionOptions> | undefined;
  readonly liveness: Required<LivenessOptions> | false;
  readonly connectTimeoutMillis: number;
  readonly slowStart?: Required<SlowStartOptions> | undefined;
  readonly zone?: string | undefined;
  readonly zoneRouting: Required<ZoneRoutingOptions>;
  readonly subset?: (Required<Pick<SubsetOptions, 'size' | 'mode'>> & Pick<SubsetOptions, 'clientId' | 'clientsPrefix' | 'ttlSeconds'>) | undefined;
}

/**
 * The rules between anchor options, written once; every path's schema runs them through
 * `.superRefine(anchorOptionRules)`.
 */
export function anchorOptionRules(
  options: { maxStreamsPerAnchor: number; healthCheck?: unknown; zoneRouting: Required<ZoneRoutingOptions> },
  ctx: z.RefinementCtx,
): void {
  if (options.zoneRouting.panicBelowPercent > options.zoneRouting.spillBelowPercent) {
    ctx.addIssue({
      code: 'custom',
      path: ['zoneRouting', 'panicBelowPercent'],
      message: `must not be above spillBelowPercent (${options.zoneRouting.spillBelowPercent}); its default is ${DEFAULT_ZONE_THRESHOLDS.panicBelowPercent}, so give it with a spillBelowPercent below that`,
    });
  }
  if (options.healthCheck !== undefined && options.maxStreamsPerAnchor < 2) {
    ctx.addIssue({
      code: 'custom',
      path: ['maxStreamsPerAnchor'],
      message: 'must be at least 2 with healthCheck (the health Watch stream is one of the connection\'s streams)',
    });
  }
}

/** AnchorOptions alone, as the policy's JSON config carries them. */
export const anchorOptionsSchema = z.object(anchorOptionsShape).strict().superRefine(anchorOptionRules);

// The interfaces above are what users read; these lines fail to compile when they drift from the schemas.
true satisfies OptionsAgree<AnchorOptions, z.input<typeof anchorOptionsSchema>>;
true satisfies OptionsAgree<HealthCheckOptions, z.input<typeof healthCheckSchema>>;
true satisfies OptionsAgree<OutlierDetectionOptions, z.input<typeof outlierDetectionSchema>>;
true satisfies OptionsAgree<LivenessOptions, z.input<typeof livenessSchema>>;
true satisfies OptionsAgree<SlowStartOptions, z.input<typeof slowStartSchema>>;
true satisfies OptionsAgree<ZoneRoutingOptions, z.input<typeof zoneRoutingSchema>>;
true satisfies OptionsAgree<SubsetOptions, z.input<typeof subsetSchema>>;
true satisfies OptionsAgree<ResolvedAnchorOptions, z.output<typeof anchorOptionsSchema>>;

/** The anchor options out of a parsed options object of either path (the names come from the shape). */
export function pickAnchorOptions(parsed: ResolvedAnchorOptions): ResolvedAnchorOptions {
  return Object.fromEntries(Object.keys(anchorOptionsShape).map((name) => [name, parsed[name as keyof ResolvedAnchorOptions]])) as unknown as ResolvedAnchorOptions;
}

/** The liveness watch's settings from the parsed options. */
export function livenessSettingsOf(options: Pick<ResolvedAnchorOptions, 'liveness' | 'connectTimeoutMillis'>): LivenessWatchSettings {
  return { liveness: options.liveness === false ? undefined : options.liveness, connectTimeoutMillis: options.connectTimeoutMillis };
}

/** The zone settings of the anchor set from the parsed options: undefined without a zone. */
export function zoneSettingsOf(options: Pick<ResolvedAnchorOptions, 'zone' | 'zoneRouting'>): ZoneSettings | undefined {
  return options.zone === undefined ? undefined : { local: options.zone, ...options.zoneRouting };
}

/**
 * The anchor set's subset settings from the parsed options; undefined when off. Without a
 * client id in the options, `current` (the id in use: a config change keeps it) or a new
 * random one.
 */
export function subsetSettingsOf(options: Pick<ResolvedAnchorOptions, 'subset'>, current?: string): SubsetSettings | undefined {
  const subset = options.subset;
  return subset === undefined ? undefined : { size: subset.size, mode: subset.mode, clientId: subset.clientId ?? current ?? randomUUID() };
}
