/**
 * Options for endpoint discovery, validated with zod. Invalid options throw a
 * ConfigError that lists every problem with its path; defaults live here only.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';
import type { Logger } from './logger.js';
import { silentLogger } from './logger.js';
import { type ParseLimits } from './endpoint.js';
import { normalizePrefix, parseTarget, validateEtcdHost, type Target } from './target.js';

const millis = (min = 1) => z.number().int().min(min).max(2_147_483_647);
const buffer = z.custom<Buffer>((value) => value instanceof Uint8Array, { error: 'must be a Buffer' });
const loggerSchema = z.custom<Logger>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    ['debug', 'info', 'warn', 'error'].every((m) => typeof (value as Record<string, unknown>)[m] === 'function'),
  { error: 'must have debug, info, warn and error methods' },
);

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
    credentials: z
      .object({ rootCertificate: buffer, privateKey: buffer.optional(), certChain: buffer.optional() })
      .strict()
      .optional(),
    auth: z.object({ username: z.string().min(1), password: z.string() }).strict().optional(),
    /** Deadline of each etcd call (list, probe); also bounds the first connection. */
    dialTimeoutMillis: millis().default(5000),
    keepaliveTimeMillis: millis().default(5000),
    keepaliveTimeoutMillis: millis().default(3000),
    /** Quiet period after which the watch stream is probed; a failed probe forces a resync. */
    watchdogMillis: millis(100).default(30_000),
    /** Retry backoff while etcd is unreachable (decorrelated jitter between the two). */
    retryInitialMillis: millis().default(100),
    retryMaxMillis: millis().default(5000),
    grpcOptions: z.record(z.string(), z.union([z.string(), z.number()])).optional(),
  })
  .strict();

export const sourceOptionsSchema = z
  .object({
    target: z.string().min(1).optional(),
    etcd: etcdOptionsSchema.optional(),
    defaultAnchors: z.number().int().min(1).optional(),
    maxAnchorsPerKey: z.number().int().min(1).max(4096).default(64),
    maxValueBytes: z.number().int().min(64).max(16 * 1024 * 1024).default(64 * 1024),
    /** Extra time to gather a burst of watch events into one diff; 0 = same event-loop turn. */
    coalesceMillis: millis(0).default(0),
    logger: loggerSchema.optional(),
  })
  .strict();

export type SourceOptions = z.input<typeof sourceOptionsSchema>;
export type EtcdOptions = z.input<typeof etcdOptionsSchema>;
export type ResolvedEtcdOptions = z.output<typeof etcdOptionsSchema> & { hosts: string[]; prefix: string };

export interface ResolvedSourceOptions {
  readonly target: Target;
  readonly etcd: ResolvedEtcdOptions | undefined;
  readonly limits: ParseLimits;
  readonly coalesceMillis: number;
  readonly logger: Logger;
}

export function formatZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length === 0 ? '(options)' : issue.path.join('.')}: ${issue.message}`)
    .join('; ');
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
