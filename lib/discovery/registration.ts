/**
 * Self-registration: a backend puts its own entry under an etcd prefix, bound to a
 * lease, so that discovery sees it while the process lives and loses it within the
 * TTL when the process dies.
 *
 *   grant lease(ttl) ──► put prefix+key on it ──► etcd3 keeps the lease alive
 *          ▲                                              │ 'lost': revoked, expired,
 *          └──────── retry with backoff and jitter ◄──────┘  etcd gone past the TTL
 *
 * A lost lease is replaced and the key put again, until that works or close() is
 * called. close() deletes the key while it is still ours, waits drainMillis (clients
 * watching etcd stop sending new calls, calls in flight finish), then revokes the lease
 * and closes the etcd client. The value is one parseEndpointValue accepts: native JSON, or byte
 * for byte what etcd's Go endpoints.Manager writes, so Go resolvers read it too.
 *
 * Coordinated subset clients use the same loop in its 'claim' mode, with their key on
 * the process's shared lease (shared-lease.ts) instead of a lease of their own.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Etcd3 } from 'etcd3';
import { ExponentialBackoff, isBrokenCircuitError } from 'cockatiel';
import { z } from 'zod';
import { parseAddress } from './address.js';
import { etcdOptionsSchema, sourceOptionsSchema, type EtcdOptions } from './source-options.js';
import { formatZodError, type OptionsAgree } from '../core/option-schema.js';
import { emitSafely } from '../core/emit-safely.js';
import { DEFAULT_LIMITS, parseEndpointValue, zoneSchema } from './endpoint-entry.js';
import { AnchorPoolError, ClientIdTakenError, ConfigError, EtcdAuthError, EtcdUnavailableError } from '../core/errors.js';
import { createEtcdClient, isAuthRefusal, plaintextHint, type EtcdConnection } from '../etcd/etcd-client.js';
import { Lifecycle } from '../core/lifecycle.js';
import { silentLogger, type Logger } from '../core/logger.js';
import { normalizePrefix } from './target.js';
import { MAX_TIMER_MILLIS, MAX_TIMER_SECONDS } from '../core/timer-limit.js';
import type { SharedLease } from './shared-lease.js';

/** etcd3 arms a ttl×1000 ms timer per lease; longer TTLs would overflow Node's 32-bit timers. */
export const MAX_TTL_SECONDS = MAX_TIMER_SECONDS;

export const registrationOptionsSchema = z
  .object({
    /** Connection to etcd (hosts, TLS, auth, dialTimeoutMillis, retry backoff); the prefix is given below. */
    etcd: etcdOptionsSchema.optional(),
    /** Used exactly as typed; a missing trailing '/' is added, as discovery does. */
    prefix: z.string().min(1, { error: 'must not be empty' }),
    /** The entry's name under the prefix; the etcd key is prefix + key. */
    key: z
      .string()
      .min(1, { error: 'must not be empty' })
      .refine((key) => !key.startsWith('/'), { error: 'must not start with "/" (the prefix already ends with one)' }),
    addr: z.string().superRefine((addr, ctx) => {
      const parsed = parseAddress(addr);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.reason });
    }),
    anchors: z.number().int().min(1).max(DEFAULT_LIMITS.maxAnchorsPerKey).default(1),
    // etcd itself grants no lease shorter than about 2 s (1.5 election timeouts by default).
    ttlSeconds: z.number().int().min(2).max(MAX_TTL_SECONDS).default(10),
    format: z.enum(['json', 'go']).default('json'),
    /** The backend's zone, for zone-aware routing: the same rule as in values. */
    zone: zoneSchema.optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    /** How long register() tries before it rejects with EtcdUnavailableError. */
    timeoutMillis: z.number().int().min(1).max(MAX_TIMER_MILLIS).default(10_000),
    /** How long close() waits between deleting the key and revoking the lease. */
    drainMillis: z.number().int().min(0).max(MAX_TIMER_MILLIS).default(0),
    logger: sourceOptionsSchema.shape.logger,
  })
  .strict()
  .superRefine((options, ctx) => {
    if (options.etcd?.prefix !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['etcd', 'prefix'], message: 'is not used by register(); give the top-level prefix option' });
    }
    if (options.metadata !== undefined && Object.hasOwn(options.metadata, 'anchors')) {
      // Go readers take the anchor count from Metadata.anchors: two sources would disagree.
      ctx.addIssue({ code: 'custom', path: ['metadata', 'anchors'], message: 'set the anchors option instead' });
    }
    if (options.zone !== undefined && options.metadata !== undefined && Object.hasOwn(options.metadata, 'zone')) {
      // The zone option is written where Go readers look for it, Metadata.zone: two values would disagree.
      ctx.addIssue({ code: 'custom', path: ['metadata', 'zone'], message: 'is set by the zone option; give only one of them' });
    }
  });

export type RegistrationFormat = 'json' | 'go';

/** What register() writes, where, and how long it lives without this process. */
export interface RegistrationOptions {
  /**
   * How to reach etcd (hosts, TLS, auth, dialTimeoutMillis, retry backoff, keepalive).
   * Default: plaintext etcd at `127.0.0.1:2379`. Its `prefix` must not be set: give the
   * top-level `prefix` instead.
   */
  etcd?: EtcdOptions;
  /** The key prefix discovery watches, used exactly as typed; a missing trailing `/` is added. Not empty. */
  prefix: string;
  /** This entry's name under the prefix (the etcd key is prefix + key). Not empty; must not start with `/`. */
  key: string;
  /** The address clients dial: `host:port` or `[v6]:port`. */
  addr: string;
  /**
   * How many anchors (connections) each client keeps to this address. 1 to 64 (what
   * readers accept by default, `maxAnchorsPerKey`); default 1.
   */
  anchors?: number;
  /**
   * The lease's TTL in seconds: how long the entry outlives this process (or its
   * connection to etcd). 2 to 2,147,483; default 10. etcd grants no lease under about 2 s.
   */
  ttlSeconds?: number;
  /**
   * `json` (default) writes `{"addr":…,"anchors":N[,"zone":…][,"metadata":…]}`; `go` writes exactly
   * what etcd's Go `endpoints.Manager` writes, so Go resolvers read it too.
   */
  format?: RegistrationFormat;
  /**
   * The zone this backend runs in, for zone-aware routing (`eu-west-1a`): 1 to 128
   * characters of `A-Z a-z 0-9 . _ : / -`. Written as the value's `zone` field (json) or
   * `Metadata.zone` (go). Default: none (clients count the key as in every zone).
   */
  zone?: string;
  /**
   * Extra JSON fields stored with the entry (under `metadata`, or Go's `Metadata`). Must not
   * contain `anchors`, nor `zone` when the `zone` option is given.
   */
  metadata?: Record<string, unknown>;
  /** How long register() keeps trying before it rejects with EtcdUnavailableError, in ms. Default 10,000. */
  timeoutMillis?: number;
  /**
   * The drain period of close(), in ms: after the key is deleted, close() waits this long
   * before it revokes the lease and resolves, so that clients stop sending new calls to
   * this address and the calls in flight finish while the server still runs. Stop the
   * server only after close() resolves. Default 0 (no wait, as before); the CLI's
   * `--drain` defaults to 5 s. 0 to 2,147,483,647.
   */
  drainMillis?: number;
  /** Where the registration logs (registered, lost, retrying, removed, draining). Default: silent. */
  logger?: Logger;
}

// The interface is what users read; this fails to compile when it drifts from the schema.
true satisfies OptionsAgree<RegistrationOptions, z.input<typeof registrationOptionsSchema>>;

export interface RegistrationEvents {
  /** The key was put on a fresh lease: once in register(), then after every loss. */
  registered: [{ key: string; leaseId: string }];
  /** The lease is gone (revoked, expired, or etcd unreachable past the TTL); registering again. */
  lost: [{ key: string; error: Error }];
  /** An attempt to register again failed; it is retried. Emitted only when someone listens. */
  error: [AnchorPoolError];
}

export interface Registration extends EventEmitter<RegistrationEvents> {
  /** The full etcd key: prefix + key. */
  readonly key: string;
  /** The value written, exactly as stored in etcd. */
  readonly value: string;
  readonly ttlSeconds: number;
  /**
   * The current lease id in decimal, as etcd3 gives it (etcdctl lease list/revoke take it in
   * hex: BigInt(id).toString(16).padStart(16, '0')); undefined while registering again and after close().
   */
  leaseId(): string | undefined;
  /**
   * Stops retrying, deletes the key (if it is still on our lease), waits `drainMillis`,
   * then revokes the lease and closes the etcd client. Resolves only after the drain.
   * Idempotent: every call returns the same promise. Never rejects.
   */
  close(): Promise<void>;
}

type ResolvedEtcd = EtcdConnection;

/** The etcd client a registration uses: its own (register()), or the process's shared one. */
export interface RegistrationEtcd {
  current(): Etcd3;
  /** The registration is done with it. */
  release(): void;
  /** The lease to put the key on, shared with the process's other registrations; absent: a lease of its own per attempt. */
  readonly lease?: SharedLease;
}

/** The lease a registration's key is on: an etcd3 lease of its own, or its share of the process's lease. */
interface HeldLease {
  readonly id: string;
  /** It was lost before the key was on it. */
  lost(): boolean;
  /** Stops keeping it alive for this registration; the key expires with it (unless others keep a shared one). */
  release(): void;
  /** Gives it back: an own lease is revoked, a share let go of. */
  revoke(): Promise<void>;
}

interface ResolvedRegistration {
  readonly etcd: ResolvedEtcd;
  readonly key: string;
  readonly value: string;
  /**
   * 'put' writes the key whatever holds it (a backend's own name). 'claim' writes it only
   * while no one else holds it: a key held on another lease is taken (ClientIdTakenError,
   * retried until that lease ends); a key this registration wrote on an earlier lease is
   * its own (`value` is unique to it).
   */
  readonly write: 'put' | 'claim';
  /**
   * Claim mode: a value another registration wrote that may be taken over all the same
   * (one of this process's own that has closed without deleting its key: on the process's
   * shared lease it would otherwise stay as long as the process).
   */
  readonly abandoned?: (value: string) => boolean;
  readonly ttlSeconds: number;
  readonly timeoutMillis: number;
  readonly drainMillis: number;
  readonly logger: Logger;
}

/** Go's json.Marshal: map keys sorted by their UTF-8 bytes, struct fields in declaration order. */
function goJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(goJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    return `{${keys.map((k) => `${JSON.stringify(k)}:${goJson(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Go escapes <, >, & and the JavaScript line separators inside strings; they occur nowhere else in JSON. */
function goEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The value a registration writes. json: `{"addr":…,"anchors":N[,"zone":…][,"metadata":…]}`.
 * go: what endpoints.Manager.AddEndpoint writes, `{"Op":0,"Addr":…,"Metadata":{"anchors":N,…}}`
 * (Op 0 is Add; the Metadata map is marshalled with sorted keys, as Go does), with the
 * zone as `Metadata.zone`.
 */
export function registrationValue(format: RegistrationFormat, addr: string, anchors: number, metadata?: Record<string, unknown>, zone?: string): string {
  if (format === 'json') {
    return JSON.stringify({ addr, anchors, ...(zone !== undefined && { zone }), ...(metadata !== undefined && { metadata }) });
  }
  // A round trip through JSON drops what JSON.stringify drops (undefined, functions), as the json format does.
  const plain = metadata === undefined ? {} : (JSON.parse(JSON.stringify(metadata)) as Record<string, unknown>);
  return `{"Op":0,"Addr":${goEscape(JSON.stringify(addr))},"Metadata":${goEscape(goJson({ ...plain, anchors, ...(zone !== undefined && { zone }) }))}}`;
}

export function resolveRegistrationOptions(input: RegistrationOptions): ResolvedRegistration {
  const parsed = registrationOptionsSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`invalid register options: ${formatZodError(parsed.error)}`);
  const o = parsed.data;
  const key = normalizePrefix(o.prefix) + o.key;
  let value: string;
  try {
    value = registrationValue(o.format, o.addr, o.anchors, o.metadata, o.zone);
  } catch (err) {
    throw new ConfigError(`invalid register options: metadata: cannot be written as JSON (${(err as Error).message})`);
  }
  // Whatever we write, discovery must accept: check with the same parser and limits.
  const check = parseEndpointValue(key, Buffer.from(value));
  if (!check.ok) throw new ConfigError(`invalid register options: discovery would reject the value: ${check.reason}`);
  const etcd = o.etcd ?? etcdOptionsSchema.parse({});
  return {
    etcd: { ...etcd, hosts: [...(etcd.hosts ?? ['127.0.0.1:2379'])] },
    key,
    value,
    write: 'put',
    ttlSeconds: o.ttlSeconds,
    timeoutMillis: o.timeoutMillis,
    drainMillis: o.drainMillis,
    logger: o.logger ?? silentLogger,
  };
}

/** Lease ids in logs are hex, as etcdctl lists and revokes them: 16 zero-padded digits (etcd3 gives them in decimal). */
export function hexLease(leaseId: string | undefined): string | undefined {
  return leaseId === undefined ? undefined : BigInt(leaseId).toString(16).padStart(16, '0');
}

type Outcome<T> = { state: 'resolved'; value: T } | { state: 'rejected'; error: unknown } | { state: 'late' };

/** Waits for `promise` until `deadline` (epoch ms) at the latest; never rejects. */
async function settleBy<T>(promise: Promise<T>, deadline: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ state: 'late' }), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([
      promise.then(
        (value): Outcome<T> => ({ state: 'resolved', value }),
        (error: unknown): Outcome<T> => ({ state: 'rejected', error }),
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export class LeaseRegistration extends EventEmitter<RegistrationEvents> implements Registration {
  readonly key: string;
  readonly value: string;
  readonly ttlSeconds: number;
  readonly #options: ResolvedRegistration;
  readonly #logger: Logger;
  readonly #etcd: RegistrationEtcd;
  readonly #abort = new AbortController();
  /** Cuts a retry's wait short (retryNow). */
  #wake = new AbortController();
  readonly #backoffs: ExponentialBackoff<unknown>;
  /** The lease the key is on, set only once the put succeeded. */
  #lease: HeldLease | undefined;
  #leaseId: string | undefined;
  /** The registering loop now running (first registration or a re-registration). */
  #work: Promise<void> = Promise.resolve();
  #lastError: AnchorPoolError | undefined;
  /** No etcd call may run past this: register()'s timeout, then close()'s deadline. */
  #callsEndBy = Infinity;
  /** register() resolved: only then does close() drain (a failed register() never had a key to drain). */
  #started = false;
  readonly #lifecycle = new Lifecycle();

  /** `etcd`: the client to use (default: one of its own, closed with the registration). */
  constructor(options: ResolvedRegistration, etcd?: RegistrationEtcd) {
    super();
    this.#options = options;
    this.key = options.key;
    this.value = options.value;
    this.ttlSeconds = options.ttlSeconds;
    this.#logger = options.logger;
    if (etcd !== undefined) this.#etcd = etcd;
    else {
      const own = createEtcdClient(options.etcd, { latestDeadline: () => this.#callsEndBy });
      this.#etcd = { current: () => own, release: () => own.close() };
    }
    // A claimed key must be back on a lease before its old lease ends, about a TTL after etcd returns: retry at least every TTL/3.
    const maxDelay = options.write === 'claim' ? Math.min(options.etcd.retryMaxMillis, (options.ttlSeconds * 1000) / 3) : options.etcd.retryMaxMillis;
    this.#backoffs = new ExponentialBackoff({ initialDelay: Math.min(options.etcd.retryInitialMillis, maxDelay), maxDelay });
  }

  leaseId(): string | undefined {
    return this.#leaseId;
  }

  /** Registers for the first time, within timeoutMillis; on failure everything is closed. */
  async start(): Promise<void> {
    const { timeoutMillis } = this.#options;
    this.#work = this.#registerFirst(Date.now() + timeoutMillis);
    let timer: NodeJS.Timeout | undefined;
    // A backstop: each call has its own deadline, but an authenticate call may end later than ours.
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.#timeoutError()), timeoutMillis);
    });
    try {
      await Promise.race([this.#work, late]);
      this.#started = true;
    } catch (err) {
      await this.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Registers in the background, retrying until it works or close() is called; failures are 'error' events. */
  keep(): void {
    this.#started = true;
    this.#work = this.#registerAgain('registered in etcd');
  }

  /** etcd answers again (the owner saw it): a registration waiting to retry tries now. */
  retryNow(): void {
    this.#wake.abort();
    this.#wake = new AbortController();
  }

  /** Every call returns the same promise, settled once the key is removed (or given up on), the drain is over and the client closed. */
  close(): Promise<void> {
    return this.#lifecycle.close(() => this.#shutdown());
  }

  get #closing(): boolean {
    return this.#lifecycle.closing;
  }

  async #registerFirst(deadline: number): Promise<void> {
    const dial = this.#options.etcd.dialTimeoutMillis;
    this.#callsEndBy = deadline;
    let backoff = this.#backoffs.next();
    for (;;) {
      try {
        await this.#attempt(Math.min(deadline, Date.now() + dial));
        if (this.#closing) throw this.#timeoutError();
        this.#callsEndBy = Infinity;
        this.#registered('registered in etcd', {});
        return;
      } catch (err) {
        const error = this.#noteFailure(err);
        if (error instanceof EtcdAuthError) throw error;
        if (this.#closing) throw this.#timeoutError();
        this.#logger.debug({ key: this.key, code: error.code, error: error.message }, 'registration attempt failed; retrying');
        const remaining = deadline - Date.now();
        if (remaining > 0) await sleep(Math.min(backoff.duration, remaining), undefined, { signal: this.#abort.signal }).catch(() => undefined);
        if (this.#closing || Date.now() >= deadline) throw this.#timeoutError();
        backoff = backoff.next(undefined);
      }
    }
  }

  async #registerAgain(message = 'registered in etcd again'): Promise<void> {
    const startedAt = performance.now();
    let backoff = this.#backoffs.next();
    for (let attempt = 1; !this.#closing; attempt++) {
      try {
        await this.#attempt(Date.now() + this.#options.etcd.dialTimeoutMillis);
        if (this.#closing) return;
        this.#registered(message, { attempts: attempt, millis: Math.round(performance.now() - startedAt) });
        return;
      } catch (err) {
        if (this.#closing) return;
        const error = this.#noteFailure(err);
        this.#logger.warn(
          { key: this.key, attempt, code: error.code, error: error.message, retryInMillis: Math.round(backoff.duration) },
          'registering again failed; retrying',
        );
        this.#emitSafely('error', error);
        await sleep(backoff.duration, undefined, { signal: AbortSignal.any([this.#abort.signal, this.#wake.signal]) }).catch(() => undefined);
        backoff = backoff.next(undefined);
      }
    }
  }

  /** One try: a lease (a new one of its own, or the shared one), the key put on it. On success the lease becomes the current one. */
  async #attempt(deadline: number): Promise<void> {
    const client = this.#etcd.current();
    const shared = this.#etcd.lease;
    const lease = shared === undefined ? await this.#ownLease(client, deadline) : await this.#sharedLease(shared, deadline);
    try {
      if (this.#options.write === 'put') await client.put(this.key).value(this.value).lease(lease.id).options({ deadline }).exec();
      else await this.#claim(client, lease.id, deadline);
      if (lease.lost()) throw new EtcdUnavailableError('the lease was lost while the key was being put');
    } catch (err) {
      // Abandon this lease: stop its keepalives and give it back, best effort. Revoking it
      // cannot delete a key that a later attempt has put on another lease.
      lease.revoke().catch(() => undefined);
      throw err;
    }
    this.#lease = lease;
    this.#leaseId = lease.id;
  }

  /** A lease of its own, kept alive by etcd3 on `client`. */
  async #ownLease(client: Etcd3, deadline: number): Promise<HeldLease> {
    const lease = client.lease(this.ttlSeconds, { deadline });
    let id: string;
    try {
      id = await lease.grant();
    } catch (err) {
      lease.revoke().catch(() => undefined);
      throw err;
    }
    const held: HeldLease = { id, lost: () => lease.revoked(), release: () => lease.release(), revoke: () => lease.revoke() };
    lease.on('lost', (err: Error) => this.#leaseLost(held, err));
    return held;
  }

  /** Its share of the process's lease: kept alive by the share, lost when etcd ends it. */
  async #sharedLease(shared: SharedLease, deadline: number): Promise<HeldLease> {
    const id = await shared.id(deadline);
    let lost = false;
    const held: HeldLease = {
      id,
      lost: () => lost,
      release: () => stop(),
      revoke: async () => stop(),
    };
    const stop = shared.onLost((lostId, err) => {
      if (lostId !== id) return;
      lost = true;
      this.#leaseLost(held, err);
    });
    return held;
  }

  /** Puts the key on lease `id` if no one holds it, or if what holds it is this registration's own earlier write. */
  async #claim(client: Etcd3, id: string, deadline: number): Promise<void> {
    const put = () => client.put(this.key).value(this.value).lease(id);
    const created = await client.if(this.key, 'Create', '==', 0).then(put()).options({ deadline }).commit();
    if (created.succeeded) return;
    const held = await client.get(this.key).options({ deadline }).exec();
    const kv = held.kvs[0];
    if (kv === undefined) throw new EtcdUnavailableError('the key was deleted while being claimed; trying again');
    const heldValue = kv.value.toString('utf8');
    if (heldValue !== this.value && !this.#options.abandoned?.(heldValue)) {
      throw new ClientIdTakenError(`${JSON.stringify(this.key)} is held by another live client (lease ${hexLease(kv.lease)}, value ${kv.value.toString('utf8').slice(0, 200)})`);
    }
    const moved = await client.if(this.key, 'Mod', '==', kv.mod_revision).then(put()).options({ deadline }).commit();
    if (!moved.succeeded) throw new EtcdUnavailableError('the key changed while being claimed; trying again');
  }

  #registered(message: string, fields: Record<string, unknown>): void {
    const leaseId = this.#leaseId!;
    this.#lastError = undefined;
    this.#logger.info({ key: this.key, lease: hexLease(leaseId), ttlSeconds: this.ttlSeconds, ...fields }, message);
    this.#emitSafely('registered', { key: this.key, leaseId });
  }

  #leaseLost(lease: HeldLease, err: Error): void {
    // Leases of failed attempts and of a closed registration report losses too; only the current one counts.
    if (this.#closing || lease !== this.#lease) return;
    const leaseId = this.#leaseId;
    this.#lease = undefined;
    this.#leaseId = undefined;
    lease.release();
    this.#logger.warn({ key: this.key, lease: hexLease(leaseId), error: err.message }, 'registration lease lost; registering again');
    this.#emitSafely('lost', { key: this.key, error: err });
    this.#work = this.#registerAgain();
  }

  #noteFailure(err: unknown): AnchorPoolError {
    const error = this.#classify(err);
    // "Breaker is open" says less than the failure that opened it: keep that one.
    if (!isBrokenCircuitError(err) || this.#lastError === undefined) this.#lastError = error;
    return error;
  }

  #classify(err: unknown): AnchorPoolError {
    if (err instanceof AnchorPoolError) return err;
    const hosts = this.#options.etcd.hosts.join(',');
    const detail = err instanceof Error ? err.message : String(err);
    if (isAuthRefusal(err)) {
      return new EtcdAuthError(`etcd at ${hosts} refused to register ${JSON.stringify(this.key)}: ${detail}`, { cause: err });
    }
    return new EtcdUnavailableError(`etcd at ${hosts} is unavailable: ${detail}${plaintextHint(this.#options.etcd, detail)}`, { cause: err });
  }

  #timeoutError(): EtcdUnavailableError {
    const last = this.#lastError;
    return new EtcdUnavailableError(
      `could not register ${JSON.stringify(this.key)} in etcd at ${this.#options.etcd.hosts.join(',')} within ${this.#options.timeoutMillis} ms${last ? `: ${last.message}` : ''}`,
      { cause: last },
    );
  }

  async #shutdown(): Promise<void> {
    this.#abort.abort();
    const dial = this.#options.etcd.dialTimeoutMillis;
    // One deadline for the whole close (an attempt in flight, the delete, the revoke), but
    // for the drain: after one, the revoke gets a deadline of its own.
    const deadline = Math.min(this.#callsEndBy, Date.now() + dial);
    this.#callsEndBy = deadline;
    await settleBy(this.#work, deadline);
    const lease = this.#lease;
    const leaseId = this.#leaseId;
    this.#lease = undefined;
    this.#leaseId = undefined;
    let revoke = false;
    const fields = { key: this.key, lease: hexLease(leaseId) };
    // A claim identifies its own write by its value (unique to it), and deletes it even when
    // no attempt reported success: one that timed out may still have been applied, and on a
    // shared lease the key would stay as long as the process. A put identifies its own by
    // its lease.
    const claimed = this.#options.write === 'claim';
    if (claimed || (lease !== undefined && leaseId !== undefined)) {
      // Only while the key is still ours: another process may have taken the name over.
      const etcd = this.#etcd.current();
      const ours = claimed ? etcd.if(this.key, 'Value', '==', this.value) : etcd.if(this.key, 'Lease', '==', leaseId!);
      const removal = ours.then(etcd.delete().key(this.key)).commit();
      const outcome = await settleBy(removal, deadline);
      if (outcome.state === 'resolved') {
        revoke = true;
        if (outcome.value.succeeded) this.#logger.info(fields, 'registration removed');
        else this.#logger.info(fields, 'the key was no longer ours (another lease or value); left as it is');
      } else {
        // etcd did not answer: stop the keepalives, the key expires with the lease (a shared
        // one lives on for the process's other clients; their next claim of this id takes it over).
        lease?.release();
        const error = outcome.state === 'rejected' ? (outcome.error instanceof Error ? outcome.error.message : String(outcome.error)) : 'no answer in time';
        const expires = this.#etcd.lease === undefined ? `it expires with its lease within ${this.ttlSeconds} s` : 'it stays until the process lease ends or a client of this process claims the id again';
        this.#logger.warn({ ...fields, error }, `could not remove the registration; ${expires}`);
      }
    }
    const drainMillis = this.#started ? this.#options.drainMillis : 0;
    if (drainMillis > 0) {
      // The lease is kept alive meanwhile (its keepalive is a stream, without a deadline).
      this.#logger.info({ key: this.key, drainMillis }, `draining for ${drainMillis / 1000} s before revoking the lease`);
      await sleep(drainMillis);
    }
    if (lease !== undefined && revoke) {
      if (drainMillis > 0) this.#callsEndBy = Date.now() + dial;
      const outcome = await settleBy(lease.revoke(), this.#callsEndBy);
      if (outcome.state !== 'resolved') {
        lease.release();
        const error = outcome.state === 'rejected' ? (outcome.error instanceof Error ? outcome.error.message : String(outcome.error)) : 'no answer in time';
        this.#logger.warn({ ...fields, error }, `could not revoke the lease; it expires within ${this.ttlSeconds} s`);
      }
    }
    this.#etcd.release();
  }

  /**
   * Every listener gets the event and the registration loop carries on; a listener that
   * throws has its exception rethrown on a later tick, so it never disappears.
   */
  #emitSafely<E extends keyof RegistrationEvents>(event: E, ...args: RegistrationEvents[E]): void {
    emitSafely(this, event, ...args);
  }
}

/**
 * Registers `prefix + key` in etcd with the given address, bound to a lease of
 * `ttlSeconds`, and keeps it registered until close(). Resolves after the first put;
 * rejects with ConfigError for bad options, EtcdAuthError when etcd refuses the
 * credentials, EtcdUnavailableError when etcd cannot be reached within timeoutMillis.
 */
export async function register(options: RegistrationOptions): Promise<Registration> {
  const registration = new LeaseRegistration(resolveRegistrationOptions(options));
  await registration.start();
  return registration;
}
