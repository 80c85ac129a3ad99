/**
 * Options for endpoint discovery, validated with zod. Invalid options throw a
 * ConfigError that lists every problem with its path; defaults live here only.
 */
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import { type ParseLimits } from './endpoint-entry.js';
import { normalizePrefix, parseTarget, validateEtcdHost, type Target } from './target.js';
import { formatZodError, millis, type OptionsAgree } from '../core/option-schema.js';

const buffer = z.custom<Buffer>((value) => value instanceof Uint8Array, { error: 'must be a Buffer' });
const loggerSchema = z.custom<Logger>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    ['debug', 'info', 'warn', 'error'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function'),
  { error: 'must have debug, info, warn and error methods' },
);

/** TLS to etcd. Give the same files as to etcdctl's `--cacert`, `--key` and `--cert`. */
export interface EtcdCredentials {
  /** The CA certificate(s) that signed etcd's server certificate, PEM (`--cacert`). Required for TLS. */
  rootCertificate: Buffer;
  /** The client's private key, PEM (`--key`); only for client-certificate authentication, with `certChain`. */
  privateKey?: Buffer;
  /** The client's certificate chain, PEM (`--cert`); only for client-certificate authentication, with `privateKey`. */
  certChain?: Buffer;
}

/** etcd user authentication (`etcdctl --user`). The password never appears in errors or logs. */
export interface EtcdAuth {
  /** The etcd user name; not empty. */
  username: string;
  /** The user's password. */
  password: string;
}

/**
 * How to reach etcd. Every option is optional; the defaults suit a local etcd. Times are
 * in milliseconds, integers up to 2^31 - 1 (Node's timer limit).
 */
export interface EtcdOptions {
  /**
   * etcd client URLs: `host:port`, `[v6]:port`, `http://host:port` or `https://host:port`
   * (a port is required; unix sockets are not supported). At least one. Default: the hosts
   * in the target's authority (`etcd://h1:2379,h2:2379/prefix/`), else `['127.0.0.1:2379']`.
   * Give them in one place: both here and in the target is an error unless they are equal.
   */
  hosts?: string[];
  /**
   * The key prefix to watch, used exactly as typed (a missing trailing `/` is added).
   * Replaces the `target`; with a target too, the two must name the same prefix.
   */
  prefix?: string;
  /** TLS to etcd. Default: plaintext, unless a host is given as `https://…`. */
  credentials?: EtcdCredentials;
  /** User name and password, when etcd has auth enabled. Default: none. */
  auth?: EtcdAuth;
  /**
   * Deadline of each etcd call (list, watchdog probe, lease grant) and of the first
   * connection. Default 5000, at least 1.
   */
  dialTimeoutMillis?: number;
  /**
   * Interval of gRPC keepalive pings on the connection to etcd. Default 300_000 (5 min),
   * at least 1. Servers refuse pings that come too often and close the connection
   * (GOAWAY `ENHANCE_YOUR_CALM`, "too many pings"): an etcd member accepts one per
   * `--grpc-keepalive-min-time` (default 5 s), `etcd grpc-proxy` and other grpc-go servers
   * with their default policy one per 5 minutes, so lower it only for servers you
   * configured to allow it. Keepalive is not what finds a half-open watch: the watchdog
   * (`watchdogMillis`) does, much sooner; keepalive is the transport's backstop.
   */
  keepaliveTimeMillis?: number;
  /**
   * How long a keepalive ping may go unanswered before the connection is closed and
   * reconnected. Default 20_000 (grpc-js's own default), at least 1.
   */
  keepaliveTimeoutMillis?: number;
  /**
   * Quiet period of the watch after which the source probes etcd for changes the stream
   * has not delivered; a probe that times out (after `dialTimeoutMillis`) or a change
   * still missing 2 s later forces a resync over a fresh connection. So a
   * half-open watch is found within `watchdogMillis + dialTimeoutMillis`, a stuck one
   * within `watchdogMillis` + the probe + 2 s.
   * Default 30_000, at least 100.
   */
  watchdogMillis?: number;
  /**
   * How often the member carrying the watch stream is asked whether it has a leader (a
   * tiny Status call with `hasleader`, once per process and etcd client, skipped while
   * the stream delivers events). A member cut off from its cluster refuses it about one
   * election timeout after the cut, and the watch moves to another member at once; etcd
   * itself cancels such a watch only after three election timeouts without a leader.
   * Each check costs etcd about 0.3 ms of CPU: behind `etcd grpc-proxy`, which watches
   * with require-leader itself, large fleets can turn it off. 0 turns it off. Default 1000.
   */
  leaderCheckMillis?: number;
  /**
   * How often the client reads the cluster's member list and, when it changed, moves to
   * the members' client URLs (etcd's Go client: AutoSyncInterval), so a pool started with
   * members that are later replaced one by one keeps working. A list that shares no
   * address with the current hosts is ignored: that is what clients of `etcd grpc-proxy`
   * get (the proxy passes the members through), and they must stay on the proxy. 0 turns
   * it off. Default 60_000.
   */
  autoSyncIntervalMillis?: number;
  /** First retry delay while etcd is unreachable; later delays grow with decorrelated jitter. Default 100, at least 1. */
  retryInitialMillis?: number;
  /** Longest retry delay while etcd is unreachable. Default 5000, at least 1. */
  retryMaxMillis?: number;
  /**
   * Extra gRPC channel options for the etcd client (`'grpc.…': value`); they override
   * anchorpool's own, keepalive included. Default: none.
   */
  grpcOptions?: Record<string, string | number>;
}

/**
 * What to discover: a target (or `etcd.prefix`) and limits on what etcd may say. Used by
 * `createSource()` and, with the pool's own options, by `createPool()`.
 */
export interface SourceOptions {
  /**
   * `etcd://[host:port,…]/<prefix>[#N]` to watch an etcd prefix, or
   * `pass:///host:port[#N],…` for a fixed list. `#N` sets the default anchor count.
   * Required unless `etcd.prefix` is given.
   */
  target?: string;
  /** How to reach etcd (etcd targets only; an error with a `pass:///` target). */
  etcd?: EtcdOptions;
  /**
   * Anchors (distinct connections) for an endpoint whose value does not say. Default 1,
   * or the target's `#N`; at least 1, at most `maxAnchorsPerKey`.
   */
  defaultAnchors?: number;
  /** The most anchors one key may ask for; a larger count makes the value invalid. Default 64, from 1 to 4096. */
  maxAnchorsPerKey?: number;
  /**
   * The largest etcd value accepted, in bytes; a larger value is reported invalid before
   * it is decoded. Default 65_536 (64 KiB), from 64 to 16 MiB.
   */
  maxValueBytes?: number;
  /**
   * Extra time to gather a burst of watch events into one change, in milliseconds.
   * Default 0: the events of one event-loop turn are gathered. At least 0.
   */
  coalesceMillis?: number;
  /** Where log lines go: an object with debug, info, warn and error methods (pino-compatible). Default: silent. */
  logger?: Logger;
}

const etcdCredentialsSchema = z
  .object({ rootCertificate: buffer, privateKey: buffer.optional(), certChain: buffer.optional() })
  .strict();

const etcdAuthSchema = z.object({ username: z.string().min(1), password: z.string() }).strict();

/** Validates EtcdOptions; the defaults live here only (documented on EtcdOptions). */
export const etcdOptionsSchema = z
  .object({
    hosts: z
      .array(
        z.string().superRefine((host, ctx) => {
          const problem = validateEtcdHost(host);
          if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .min(1, { error: 'needs at least one host' })
      .optional(),
    prefix: z.string().min(1).optional(),
    credentials: etcdCredentialsSchema.optional(),
    auth: etcdAuthSchema.optional(),
    dialTimeoutMillis: millis().default(5000),
    // 5 min: see EtcdOptions.keepaliveTimeMillis and docs/decisions.md. The minimum stays
    // 1 so that tests (and servers configured for it) can still ask for frequent pings.
    keepaliveTimeMillis: millis().default(300_000),
    keepaliveTimeoutMillis: millis().default(20_000),
    watchdogMillis: millis(100).default(30_000),
    leaderCheckMillis: millis(0).default(1000),
    autoSyncIntervalMillis: millis(0).default(60_000),
    retryInitialMillis: millis().default(100),
    retryMaxMillis: millis().default(5000),
    grpcOptions: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  })
  .strict();

/** `readyTimeoutMillis`, for the pool and for grpc-js channels alike. */
export const readyTimeoutMillisSchema = millis(0).default(10_000);

/** Validates SourceOptions (documented there). */
export const sourceOptionsSchema = z
  .object({
    target: z.string().min(1).optional(),
    etcd: etcdOptionsSchema.optional(),
    defaultAnchors: z.number().int().min(1).optional(),
    maxAnchorsPerKey: z.number().int().min(1).max(4096).default(64),
    maxValueBytes: z.number().int().min(64).max(16 * 1024 * 1024).default(64 * 1024),
    coalesceMillis: millis(0).default(0),
    logger: loggerSchema.optional(),
  })
  .strict();

// The interfaces above are what users read; these lines fail to compile when they drift from the schemas.
true satisfies OptionsAgree<EtcdCredentials, z.input<typeof etcdCredentialsSchema>>;
true satisfies OptionsAgree<EtcdAuth, z.input<typeof etcdAuthSchema>>;
true satisfies OptionsAgree<EtcdOptions, z.input<typeof etcdOptionsSchema>>;
true satisfies OptionsAgree<SourceOptions, z.input<typeof sourceOptionsSchema>>;

export type ResolvedEtcdOptions = z.output<typeof etcdOptionsSchema> & { hosts: string[]; prefix: string };

export interface ResolvedSourceOptions {
  readonly target: Target;
  readonly etcd: ResolvedEtcdOptions | undefined;
  readonly limits: ParseLimits;
  readonly coalesceMillis: number;
  readonly logger: Logger;
}


/** Parses the target and options into one resolved description of the source. */
export function resolveSourceOptions(input: SourceOptions): ResolvedSourceOptions {
  const parsed = sourceOptionsSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`invalid options: ${formatZodError(parsed.error)}`);
  const options = parsed.data;
  if (options.defaultAnchors !== undefined && options.defaultAnchors > options.maxAnchorsPerKey) {
    throw new ConfigError(`invalid options: defaultAnchors ${options.defaultAnchors} exceeds maxAnchorsPerKey ${options.maxAnchorsPerKey}`);
  }
  const baseLimits = {
    defaultAnchors: options.defaultAnchors ?? 1,
    maxAnchorsPerKey: options.maxAnchorsPerKey,
    maxValueBytes: options.maxValueBytes,
  };
  const logger = options.logger ?? silentLogger;
  const etcd = options.etcd ?? etcdOptionsSchema.parse({});

  let target: Target;
  if (options.target !== undefined) {
    target = parseTarget(options.target, baseLimits);
  } else if (etcd.prefix !== undefined) {
    target = { scheme: 'etcd', prefix: normalizePrefix(etcd.prefix) };
  } else {
    throw new ConfigError('invalid options: give a target (etcd:///<prefix> or pass:///host:port,…) or etcd.prefix');
  }

  if (target.scheme === 'pass') {
    if (options.etcd !== undefined) throw new ConfigError('invalid options: etcd options were given but the target is pass:///');
    return { target, etcd: undefined, limits: baseLimits, coalesceMillis: options.coalesceMillis, logger };
  }

  if (etcd.prefix !== undefined && normalizePrefix(etcd.prefix) !== target.prefix) {
    throw new ConfigError(`invalid options: etcd.prefix ${JSON.stringify(etcd.prefix)} differs from the target's prefix ${JSON.stringify(target.prefix)}`);
  }
  if (etcd.hosts !== undefined && target.hosts !== undefined && etcd.hosts.join(',') !== target.hosts.join(',')) {
    throw new ConfigError('invalid options: etcd.hosts differs from the hosts in the target URI; give them in one place');
  }
  const hosts = [...(etcd.hosts ?? target.hosts ?? ['127.0.0.1:2379'])];
  const limits = { ...baseLimits, defaultAnchors: target.defaultAnchors ?? baseLimits.defaultAnchors };
  if (limits.defaultAnchors > limits.maxAnchorsPerKey) {
    throw new ConfigError(`invalid options: default anchors ${limits.defaultAnchors} exceeds maxAnchorsPerKey ${limits.maxAnchorsPerKey}`);
  }
  return {
    target,
    etcd: { ...etcd, hosts, prefix: target.prefix },
    limits,
    coalesceMillis: options.coalesceMillis,
    logger,
  };
}
