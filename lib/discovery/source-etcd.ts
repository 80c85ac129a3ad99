/**
 * The etcd source: keeps DesiredState equal to the values under one key prefix.
 *
 *   list(prefix) at revision R ──► watch from R+1 ──► (any break) ──► list again ──► …
 *
 * Every break of the watch (disconnect, error, cancel, compaction, watchdog) leads to
 * a fresh paginated listing at a new revision, diffed against the current state; the
 * resume revision etcd3 keeps internally is never trusted (it may be compacted away). While etcd is
 * unreachable the last known state stays and retries back off with jitter.
 *
 * The watchdog: after `watchdogMillis` without any watch traffic it probes etcd for
 * keys under the prefix changed after the last revision the stream delivered. A probe
 * that times out means a half-open connection; a change the stream still has not
 * delivered 2 s later (STUCK_GRACE_MILLIS) means a stuck stream. Either forces a resync
 * on a new connection. (etcd's own progress notifications come only every 10 minutes.)
 */
import { isUtf8 } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { GRPCUnavailableError, Range, type Etcd3, type IKeyValue, type IWatchResponse } from 'etcd3';
import { ExponentialBackoff, isBrokenCircuitError, type IBackoff } from 'cockatiel';
import { isAuthRefusal, plaintextHint } from '../etcd/etcd-client.js';
import { acquireEtcdClient, type RenewReason, type SharedEtcdClient } from '../etcd/etcd-client-share.js';
import type { ResolvedEtcdOptions } from './source-options.js';
import type { KeyValue } from './desired-state.js';
import type { ParseLimits } from './endpoint-entry.js';
import { type AnchorPoolError, EtcdAuthError, EtcdUnavailableError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { SourceBase } from './source-base.js';
import type { ResyncReason, SourceStatus } from './source.js';

const PAGE_SIZE = 5000;
/** A watch that breaks sooner than this counts as a failed attempt and backs off. */
const STABLE_WATCH_MILLIS = 1000;
/**
 * A change the watchdog's probe found, not delivered by the stream this much later (or
 * watchdogMillis, if shorter), means a stuck stream. A healthy stream delivers within
 * milliseconds; waiting a whole watchdog period more doubled the time a silent proxy
 * (a member cut off behind etcd grpc-proxy) kept the pool stale.
 */
const STUCK_GRACE_MILLIS = 2000;

function decodeKey(key: Buffer): string {
  return isUtf8(key) ? key.toString('utf8') : `0x${key.toString('hex')}`;
}

function toKeyValue(kv: IKeyValue): KeyValue {
  return { key: decodeKey(kv.key), value: kv.value, modRevision: Number(kv.mod_revision) };
}

/** etcd could not be reached at all: nothing is wrong with the client's connection itself. */
function isConnectFailure(err: unknown): boolean {
  return err instanceof GRPCUnavailableError || isBrokenCircuitError(err);
}

function isCompaction(err: unknown): boolean {
  return err instanceof Error && /compacted/.test(err.message);
}

type WatchOutcome = { reason: ResyncReason; cause?: unknown; freshConnection?: boolean };

/** The resync a replaced shared client causes: a suspect connection is a reconnect; leader loss and member changes keep their names. */
function resyncReasonOf(renewed: RenewReason): ResyncReason {
  return renewed === 'suspect' ? 'reconnect' : renewed;
}

export class EtcdEndpointSource extends SourceBase {
  readonly kind = 'etcd' as const;
  readonly #options: ResolvedEtcdOptions;
  readonly #abort = new AbortController();
  /** The process's client for these etcd options, shared with other prefixes (etcd-client-share.ts); taken at start. */
  #shared: SharedEtcdClient | undefined;
  #loop: Promise<void> | undefined;
  #connected = false;
  #disconnectedSince: Date | null = null;
  #lastError: AnchorPoolError | null = null;
  #resyncs = 0;
  #lastResync: { reason: ResyncReason; at: Date } | null = null;

  constructor(options: ResolvedEtcdOptions, limits: ParseLimits, logger: Logger, coalesceMillis: number) {
    super(limits, logger, coalesceMillis);
    this.#options = options;
  }

  get prefix(): string {
    return this.#options.prefix;
  }

  protected begin(): void {
    const { prefix: _prefix, ...connection } = this.#options;
    this.#shared = acquireEtcdClient(connection, this.logger);
    this.#loop = this.#run().catch((err: unknown) => {
      // The loop handles its own failures; reaching here is a bug, reported not thrown.
      this.reportError(new EtcdUnavailableError(`etcd source stopped unexpectedly: ${String(err)}`, { cause: err }));
    });
  }

  protected async end(): Promise<void> {
    this.#abort.abort();
    // Released first: as the client's last user this closes it, which cancels a listing
    // stuck on a frozen connection; otherwise that call ends by its deadline, unused.
    this.#shared?.release();
    await this.#loop;
  }

  protected readyTimeoutError(timeoutMillis: number): AnchorPoolError {
    const last = this.#lastError;
    if (last instanceof EtcdAuthError) return last;
    const detail = last ? `: ${last.message}` : '';
    return new EtcdUnavailableError(
      `no snapshot of prefix ${JSON.stringify(this.prefix)} from etcd at ${this.#options.hosts.join(',')} within ${timeoutMillis} ms${detail}`,
      { cause: last ?? undefined },
    );
  }

  status(): SourceStatus {
    return {
      kind: 'etcd',
      target: `etcd://${this.#options.hosts.join(',')}/${this.prefix}`,
      ready: this.isReady,
      connected: this.#connected,
      disconnectedSince: this.#disconnectedSince,
      lastError: this.#lastError?.message ?? null,
      revision: this.revision,
      resyncs: this.#resyncs,
      lastResync: this.#lastResync,
      etcdHosts: this.#shared?.hosts() ?? this.#options.hosts,
      endpoints: this.state.endpoints.size,
      invalid: this.state.invalid.size,
    };
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    const backoffs = new ExponentialBackoff({
      initialDelay: this.#options.retryInitialMillis,
      maxDelay: this.#options.retryMaxMillis,
    });
    let backoff: IBackoff<unknown> = backoffs.next();
    let reason: ResyncReason = 'initial';
    const shared = this.#shared!;
    while (!signal.aborted) {
      let failed = false;
      const startedAt = Date.now();
      const listingFrom = performance.now();
      const client = shared.current();
      try {
        const revision = await this.#resync(client, reason);
        const outcome = await this.#watch(client, revision);
        reason = outcome.reason;
        if (outcome.freshConnection) shared.renew(client);
        if (reason === 'disconnected') this.#markDisconnected(this.#classify(outcome.cause));
      } catch (err) {
        if (signal.aborted) return;
        if (isCompaction(err)) {
          reason = 'compacted';
          continue;
        }
        // Another prefix renewed the shared client under this listing: not an outage, list again on the new one.
        const renewed = shared.retired(client);
        if (renewed !== undefined) {
          reason = resyncReasonOf(renewed);
          continue;
        }
        const error = this.#classify(err);
        this.#markDisconnected(error, isConnectFailure(err));
        if (error instanceof EtcdAuthError) this.failReady(error);
        // A refused connection (or the breaker it opened) is retried on the same client: its
        // channel reconnects by itself. A client replaced during an outage would have to be
        // released while its channel is in TRANSIENT_FAILURE, and grpc-js still makes one
        // attempt after such a close, whose connection nobody owns if etcd is back by then
        // (etcd-client.ts). Anything else, a timeout above all, may be a half-open
        // connection: start over on a new one, unless other calls on it answered meanwhile.
        if (!isConnectFailure(err) && !shared.renewUnlessHeard(client, listingFrom)) {
          this.logger.debug({ error: error.message }, 'etcd listing failed while other calls on the client answered; retrying on it');
        }
        // A listing that fails keeps the reason the resync began with (no-leader, watchdog…).
        if (reason === 'initial') reason = 'reconnect';
        failed = true;
      }
      if (signal.aborted) return;
      if (failed || (Date.now() - startedAt < STABLE_WATCH_MILLIS && reason !== 'compacted')) {
        await sleep(backoff.duration, undefined, { signal, ref: false }).catch(() => undefined);
        backoff = backoff.next(undefined);
      } else {
        backoff = backoffs.next();
      }
    }
  }

  /** Lists the prefix (paginated, at one revision), applies it as the new state, returns the revision. */
  async #resync(client: Etcd3, reason: ResyncReason): Promise<number> {
    const startedAt = performance.now();
    const { revision, kvs } = await this.#list(client);
    this.#shared!.heard(client);
    if (this.#abort.signal.aborted) return revision;
    for (const record of this.state.replace(kvs)) this.reportInvalid(record);
    this.revision = revision;
    this.changed(reason === 'initial' ? 'snapshot' : 'resync');
    this.#markConnected();
    if (reason !== 'initial') {
      this.#resyncs += 1;
      this.#lastResync = { reason, at: new Date() };
    }
    this.markReady();
    const info = { reason, revision, keys: kvs.length, durationMillis: performance.now() - startedAt };
    this.logger.debug({ ...info }, `listed ${kvs.length} keys under ${JSON.stringify(this.prefix)} (${reason})`);
    this.emitSafely('resync', info);
    return revision;
  }

  async #list(client: Etcd3): Promise<{ revision: number; kvs: KeyValue[] }> {
    const whole = Range.prefix(this.prefix);
    const kvs: KeyValue[] = [];
    let start = whole.start;
    let revision: string | undefined;
    for (;;) {
      let request = client
        .getAll()
        .inRange(new Range(start, whole.end))
        .limit(PAGE_SIZE)
        .options({ deadline: Date.now() + this.#options.dialTimeoutMillis });
      // Later pages read at the first page's revision, so the listing is one consistent snapshot.
      if (revision !== undefined) request = request.revision(revision);
      const page = await request.exec();
      revision ??= page.header.revision;
      for (const kv of page.kvs) kvs.push(toKeyValue(kv));
      const last = page.kvs.at(-1);
      if (!page.more || last === undefined) break;
      start = Buffer.concat([last.key, Buffer.from([0])]);
    }
    return { revision: Number(revision), kvs };
  }

  /** Watches from revision+1 until the stream breaks; resolves with the reason to resync. */
  #watch(client: Etcd3, revision: number): Promise<WatchOutcome> {
    const signal = this.#abort.signal;
    const watchdogMillis = this.#options.watchdogMillis;
    return new Promise<WatchOutcome>((resolve) => {
      // Closed during the listing: no watcher on a client other prefixes still use.
      if (signal.aborted) return resolve({ reason: 'watch-ended' });
      // Highest revision the stream is known to have delivered everything up to.
      let delivered = revision;
      // A change newer than `delivered` that a probe saw; still missing after the grace = stuck.
      let suspect = 0;
      let watchdog: NodeJS.Timeout | undefined;
      let done = false;
      const watcher = client.watch().inRange(Range.prefix(this.prefix)).startRevision(String(revision + 1)).watcher();

      const finish = (outcome: WatchOutcome): void => {
        if (done) return;
        done = true;
        clearTimeout(watchdog);
        signal.removeEventListener('abort', onAbort);
        stopHearing();
        // Not awaited: on a frozen connection the cancel never completes; dropping the client ends it.
        watcher.cancel().catch(() => undefined);
        resolve(outcome);
      };
      const onAbort = (): void => finish({ reason: 'watch-ended' });
      // Another prefix found the shared connection suspect and renewed the client: resync on the new one.
      const stopHearing = this.#shared!.onRenewed((old, why) => {
        if (old === client) finish({ reason: resyncReasonOf(why) });
      });
      const arm = (): void => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => void probe(), watchdogMillis);
        watchdog.unref();
      };
      const probe = async (): Promise<void> => {
        try {
          const newest = await client
            .getAll()
            .prefix(this.prefix)
            .minModRevision(delivered + 1)
            .sort('Mod', 'Descend')
            .limit(1)
            .options({ deadline: Date.now() + this.#options.dialTimeoutMillis })
            .exec();
          this.#shared!.heard(client);
          if (done) return;
          const seen = newest.kvs[0] === undefined ? 0 : Number(newest.kvs[0].mod_revision);
          if (seen <= delivered) return arm();
          // The stream owes a change: any data re-arms the watchdog (arm() clears this
          // timer); none within the grace, or none up to this change, is a stuck stream.
          suspect = seen;
          watchdog = setTimeout(() => {
            if (done) return;
            if (delivered >= suspect) return arm();
            this.logger.warn({ delivered, missing: suspect }, 'etcd watch stream stopped delivering events; resyncing');
            finish({ reason: 'watchdog', freshConnection: true });
          }, Math.min(watchdogMillis, STUCK_GRACE_MILLIS));
          watchdog.unref();
        } catch (err) {
          if (done) return;
          this.logger.warn({ error: String(err) }, 'etcd watch probe failed: connection is half-open or down; resyncing');
          finish({ reason: 'watchdog', cause: err, freshConnection: true });
        }
      };
      const onData = (response: IWatchResponse): void => {
        if (done) return;
        this.#shared!.heard(client);
        arm();
        try {
          if (response.events.length === 0) {
            // A progress notification: everything up to header.revision has been sent.
            delivered = Math.max(delivered, Number(response.header.revision));
            return;
          }
          for (const event of response.events) {
            const kv = toKeyValue(event.kv);
            if (event.type === 'Put') {
              const invalid = this.state.put(kv);
              if (invalid) this.reportInvalid(invalid);
            } else {
              this.state.delete(kv.key);
            }
            delivered = Math.max(delivered, kv.modRevision);
          }
          this.revision = Math.max(this.revision, delivered);
          this.changed('watch');
        } catch (err) {
          this.logger.error({ error: String(err) }, 'failed to apply etcd watch events; resyncing');
          finish({ reason: 'watch-error', cause: err });
        }
      };

      watcher.on('data', onData);
      watcher.on('connected', () => {
        if (!done) arm();
      });
      watcher.on('disconnected', (err: unknown) => finish({ reason: 'disconnected', cause: err }));
      watcher.on('error', (err: unknown) => finish({ reason: isCompaction(err) ? 'compacted' : 'watch-error', cause: err }));
      watcher.on('end', () => finish({ reason: 'watch-ended' }));
      signal.addEventListener('abort', onAbort, { once: true });
      arm();
    });
  }

  #classify(err: unknown): AnchorPoolError {
    const detail = err instanceof Error ? err.message : String(err);
    if (isAuthRefusal(err)) {
      return new EtcdAuthError(`etcd at ${this.#options.hosts.join(',')} refused access to ${JSON.stringify(this.prefix)}: ${detail}`, { cause: err });
    }
    return new EtcdUnavailableError(`etcd at ${this.#options.hosts.join(',')} is unavailable: ${detail}${plaintextHint(this.#options, detail)}`, { cause: err });
  }

  #markConnected(): void {
    if (this.#connected) return;
    this.#connected = true;
    this.#disconnectedSince = null;
    this.#lastError = null;
    this.logger.info({ revision: this.revision }, 'connected to etcd');
    this.emitSafely('connected', { revision: this.revision });
  }

  /**
   * `sameOutage`: the failure is another refused attempt on the client that failed first.
   * That first failure is kept as the reason: it came from a fresh connection attempt and
   * names the cause (a TLS mismatch, a refused port), where the same channel's later
   * attempts report less ("Last error: null", "Failed to connect").
   */
  #markDisconnected(error: AnchorPoolError, sameOutage = false): void {
    if (!(sameOutage && !this.#connected && this.#lastError !== null)) this.#lastError = error;
    if (!this.#connected && this.#disconnectedSince !== null) return;
    this.#connected = false;
    this.#disconnectedSince = new Date();
    this.logger.warn({ code: error.code, error: error.message }, 'lost etcd; serving the last known endpoints');
    this.emitSafely('disconnected', { since: this.#disconnectedSince, error });
    if (error instanceof EtcdAuthError) this.reportError(error);
  }
}
