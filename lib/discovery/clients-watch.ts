/**
 * ClientsWatch: the ids registered under a clients prefix, listed and watched once per
 * process (per etcd connection and prefix) for all its coordinated clients.
 *
 *   list prefix at R (keys only) ──► watch from R+1 ──► (any break, client replaced) ──► list again
 *                         └──► ids, sorted ──► every subscriber, the same list at the same moment
 *
 * The first listing goes out at once; later changes once per burst, 500 ms after the
 * burst's first change (a zone failing: one move per burst, not one per client). While
 * changes keep coming (within 2 s of the last list published) the wait doubles, up to
 * 4 s: a fleet of 1,000 starting together moved every client every half second for half
 * a minute, each move opening connections before closing others (make before break). Every client of the process hears the same list at the same moment, so
 * they compute the fleet's assignment once (coordinated-assignment.ts remembers it), and
 * etcd serves one watch per process, not one per client. While etcd cannot be reached the
 * last list stays.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Range, type Etcd3, type IKeyValue } from 'etcd3';
import { ExponentialBackoff } from 'cockatiel';
import { acquireEtcdClient, type SharedEtcdClient } from '../etcd/etcd-client-share.js';
import type { EtcdConnection } from '../etcd/etcd-client.js';
import { emitSafely } from '../core/emit-safely.js';
import type { Logger } from '../core/logger.js';
import { optionsKey } from '../core/options-key.js';

export interface ClientsWatch {
  /** The ids published last, sorted; undefined before the first listing. */
  ids(): readonly string[] | undefined;
  /** `listener` hears every list published. Returns the unsubscribe. */
  onIds(listener: (ids: readonly string[]) => void): () => void;
  /** `listener` hears every listing etcd answered (etcd is back: a claim waiting to retry can go now). Returns the unsubscribe. */
  onListed(listener: () => void): () => void;
  /** This user is done; the last one stops watching. */
  release(): void;
}

/** Changes after the first listing are published this long after the first change of a burst… */
const BURST_MILLIS = 500;
/** …doubling while changes keep coming within this long of the last list published, up to MAX_BURST_MILLIS. */
const BUSY_MILLIS = 2000;
const MAX_BURST_MILLIS = 4000;

interface WatchEvents {
  ids: [readonly string[]];
  listed: [];
}

class PrefixWatch extends EventEmitter<WatchEvents> {
  refs = 0;
  published: readonly string[] | undefined;
  readonly #etcd: SharedEtcdClient;
  readonly #prefix: string;
  readonly #dialTimeoutMillis: number;
  readonly #backoff: { initialDelay: number; maxDelay: number };
  readonly #logger: Logger;
  readonly #abort = new AbortController();
  readonly #ids = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #burstMillis = BURST_MILLIS;
  #publishedAt = -Infinity;

  constructor(etcd: EtcdConnection, prefix: string, maxRetryMillis: number, logger: Logger) {
    super();
    this.setMaxListeners(0);
    this.#etcd = acquireEtcdClient(etcd, logger);
    this.#prefix = prefix;
    this.#dialTimeoutMillis = etcd.dialTimeoutMillis;
    const maxDelay = Math.min(etcd.retryMaxMillis, maxRetryMillis);
    this.#backoff = { initialDelay: Math.min(etcd.retryInitialMillis, maxDelay), maxDelay };
    this.#logger = logger;
    void this.#run();
  }

  close(): void {
    this.#abort.abort();
    clearTimeout(this.#timer);
    this.#etcd.release();
  }

  #changed(): void {
    if (this.published === undefined) return this.#publish();
    if (this.#timer !== undefined) return;
    // Busy: the last list published was a change too (not the first listing), and recent.
    const busy = performance.now() - this.#publishedAt < BUSY_MILLIS;
    this.#burstMillis = busy ? Math.min(this.#burstMillis * 2, MAX_BURST_MILLIS) : BURST_MILLIS;
    this.#timer = setTimeout(() => this.#publish(), this.#burstMillis).unref();
  }

  #publish(): void {
    this.#timer = undefined;
    const ids = [...this.#ids].sort();
    const last = this.published;
    if (last !== undefined && sameIds(last, ids)) return;
    if (last !== undefined) this.#publishedAt = performance.now();
    this.published = ids;
    emitSafely(this, 'ids', ids);
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let backoff = new ExponentialBackoff(this.#backoff).next();
    while (!signal.aborted) {
      const client = this.#etcd.current();
      const startedAt = Date.now();
      try {
        const revision = await this.#list(client);
        await this.#watch(client, revision);
      } catch (err) {
        if (signal.aborted) return;
        // A replaced client is not an outage: list again at once on the new one.
        if (this.#etcd.retired(client) !== undefined) continue;
        this.#logger.debug({ error: String(err), prefix: this.#prefix }, 'listing the subset clients failed; keeping the last list');
      }
      if (signal.aborted) return;
      if (Date.now() - startedAt < 1000) {
        await sleep(backoff.duration, undefined, { signal, ref: false }).catch(() => undefined);
        backoff = backoff.next(undefined);
      }
    }
  }

  async #list(client: Etcd3): Promise<number> {
    // Keys only: with thousands of clients each listing is read by each process, and the ids are in the keys.
    const range = Range.prefix(this.#prefix);
    const response = await client.kv.range({ key: range.start, range_end: range.end, keys_only: true }, { deadline: Date.now() + this.#dialTimeoutMillis });
    this.#etcd.heard(client);
    this.#ids.clear();
    for (const kv of response.kvs) this.#ids.add(this.#idOf(kv));
    emitSafely(this, 'listed');
    this.#changed();
    return Number(response.header.revision);
  }

  /** Watches from revision+1 until the stream breaks or the shared client is replaced. */
  #watch(client: Etcd3, revision: number): Promise<void> {
    const signal = this.#abort.signal;
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const watcher = client.watch().inRange(Range.prefix(this.#prefix)).startRevision(String(revision + 1)).watcher();
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', finish);
        stopHearing();
        watcher.cancel().catch(() => undefined);
        resolve();
      };
      const stopHearing = this.#etcd.onRenewed((old) => {
        if (old === client) finish();
      });
      watcher.on('put', (kv: IKeyValue) => {
        const id = this.#idOf(kv);
        if (this.#ids.has(id)) return;
        this.#ids.add(id);
        this.#changed();
      });
      watcher.on('delete', (kv: IKeyValue) => {
        if (this.#ids.delete(this.#idOf(kv))) this.#changed();
      });
      watcher.on('disconnected', finish);
      watcher.on('error', finish);
      watcher.on('end', finish);
      signal.addEventListener('abort', finish, { once: true });
    });
  }

  #idOf(kv: IKeyValue): string {
    return kv.key.toString('utf8').slice(this.#prefix.length);
  }
}

const watches = new Map<string, PrefixWatch>();

/** Two sorted lists of ids are the same. */
export function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/**
 * The ids under `clientsPrefix`, watched once per process for this etcd connection.
 * `maxRetryMillis`: how long a failed listing waits at most before the next (the first
 * user's; a third of its lease TTL, so a claim lost in an outage hears etcd is back in time).
 */
export function acquireClientsWatch(etcd: EtcdConnection, clientsPrefix: string, maxRetryMillis: number, logger: Logger): ClientsWatch {
  const { watchdogMillis: _watchdog, ...connection } = etcd;
  const key = optionsKey({ clientsPrefix, connection });
  let watch = watches.get(key);
  if (watch === undefined) {
    watch = new PrefixWatch(etcd, clientsPrefix, maxRetryMillis, logger);
    watches.set(key, watch);
  }
  const shared = watch;
  shared.refs += 1;
  let released = false;
  const unsubscribes = new Set<() => void>();
  const subscribe = <E extends keyof WatchEvents>(event: E, listener: (...args: WatchEvents[E]) => void): (() => void) => {
    shared.on(event, listener as never);
    const off = (): void => {
      shared.off(event, listener as never);
      unsubscribes.delete(off);
    };
    unsubscribes.add(off);
    return off;
  };
  return {
    ids: () => shared.published,
    onIds: (listener) => subscribe('ids', listener),
    onListed: (listener) => subscribe('listed', listener),
    release: () => {
      if (released) return;
      released = true;
      for (const off of [...unsubscribes]) off();
      shared.refs -= 1;
      if (shared.refs > 0) return;
      watches.delete(key);
      shared.close();
    },
  };
}
