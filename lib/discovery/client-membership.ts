/**
 * ClientMembership: one subsetting client's place among its peers, for coordinated
 * subsets. The client claims `clientsPrefix + clientId` on an etcd lease (the
 * registration loop of registration.ts, in its 'claim' mode) and watches the prefix; the
 * ids there are what every client computes the fleet's subsets from
 * (anchors/coordinated-assignment.ts).
 *
 *   claim prefix+id on a lease ──► keepalive ──► (lost, client replaced) ──► claim again
 *   list prefix at R ──► watch from R+1 ──► (any break, client replaced) ──► list again
 *
 * While etcd cannot be reached the last view stays, so subsets stay as they were. A
 * client that died leaves the view when its lease ends (one TTL), and the others' ranks
 * close up. An id held by another live client is a conflict: reported (the 'conflict'
 * event, the view's `conflict`), and claimed again until the other's lease ends.
 *
 * It uses the process's shared etcd client (etcd-client-share.ts): the endpoint source
 * on the same connection watches it for half-open connections and renews it; the
 * membership then lists again on the new client. Its key is on the process's shared lease
 * (shared-lease.ts): one lease and one keepalive for every client in the process, which a
 * renewed client or an outage shorter than the TTL leaves as it was.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Range, type Etcd3, type IKeyValue } from 'etcd3';
import { ExponentialBackoff } from 'cockatiel';
import { acquireEtcdClient, type SharedEtcdClient } from '../etcd/etcd-client-share.js';
import type { EtcdConnection } from '../etcd/etcd-client.js';
import { type AnchorPoolError, ClientIdTakenError } from '../core/errors.js';
import { emitSafely } from '../core/emit-safely.js';
import type { Logger } from '../core/logger.js';
import { LeaseRegistration } from './registration.js';
import { acquireSharedLease, type SharedLease } from './shared-lease.js';
import type { ResolvedEtcdOptions } from './source-options.js';

/** Where a client stands among the clients registered under the prefix. */
export interface MembershipView {
  /** This client's place among the sorted ids, from 0 (its place to be while it is not registered yet). */
  readonly rank: number;
  /** Clients registered, this one counted even while its own registration is pending. */
  readonly clients: number;
  /** Their ids, sorted, this one's among them. */
  readonly ids: readonly string[];
  /** This client's own key is in etcd on its lease. */
  readonly registered: boolean;
  /** Why its id is not its own: another live client holds it. */
  readonly conflict?: string | undefined;
}

export interface MembershipEvents {
  /** The registered ids changed (and the first listing). */
  view: [MembershipView];
  /** Another live client holds this client's id. */
  conflict: [ClientIdTakenError];
  /** The first listing did not come within the etcd dial timeout (the owner stops waiting for a place). */
  late: [];
}

export interface MembershipOptions extends CoordinationSettings {
  readonly clientId: string;
  readonly logger: Logger;
}

/** Changes of the view after the first are emitted this long after the first of a burst. */
const VIEW_SETTLE_MILLIS = 500;

export class ClientMembership extends EventEmitter<MembershipEvents> {
  readonly #options: MembershipOptions;
  readonly #shared: SharedEtcdClient;
  readonly #registration: LeaseRegistration;
  readonly #lease: SharedLease;
  readonly #abort = new AbortController();
  readonly #ids = new Set<string>();
  #listed = false;
  #registered = false;
  #conflict: string | undefined;
  #last: MembershipView | undefined;
  #loop: Promise<void> = Promise.resolve();
  #lateTimer: NodeJS.Timeout | undefined;
  /** The view last emitted, and the timer that emits the latest one after a burst of changes. */
  #told: MembershipView | undefined;
  #viewTimer: NodeJS.Timeout | undefined;

  constructor(options: MembershipOptions) {
    super();
    this.#options = options;
    this.#shared = acquireEtcdClient(options.etcd, options.logger);
    const shared = this.#shared;
    this.#lease = acquireSharedLease(options.etcd, options.ttlSeconds, options.logger);
    // The value names the process and is unique to this instance: a key with it is this client's own.
    const value = JSON.stringify({ clientId: options.clientId, host: hostname(), pid: process.pid, instance: randomUUID(), since: new Date().toISOString() });
    this.#registration = new LeaseRegistration(
      {
        etcd: options.etcd,
        key: options.clientsPrefix + options.clientId,
        value,
        write: 'claim',
        ttlSeconds: options.ttlSeconds,
        timeoutMillis: options.etcd.dialTimeoutMillis,
        drainMillis: 0,
        logger: options.logger,
      },
      // The shared client and lease stay the process's: close() lets go of them after the registration.
      { current: () => shared.current(), release: () => undefined, lease: this.#lease },
    );
    this.#registration.on('registered', () => {
      this.#registered = true;
      this.#conflict = undefined;
      this.#publish();
    });
    this.#registration.on('lost', () => {
      this.#registered = false;
      this.#publish();
    });
    this.#registration.on('error', (error: AnchorPoolError) => {
      if (!(error instanceof ClientIdTakenError)) return;
      const first = this.#conflict === undefined;
      this.#conflict = error.message;
      if (first) {
        options.logger.error({ clientId: options.clientId, error: error.message }, `subset client id ${JSON.stringify(options.clientId)} is taken: ${error.message}; this client shares that subset until the other's lease ends`);
        emitSafely(this, 'conflict', error);
        this.#publish();
      }
    });
  }

  start(): void {
    this.#registration.keep();
    this.#loop = this.#run();
    this.#lateTimer = setTimeout(() => {
      if (!this.#listed) emitSafely(this, 'late');
    }, this.#options.etcd.dialTimeoutMillis).unref();
  }

  /** Deletes the client's key (while it is on its lease), revokes the lease, stops watching. */
  async close(): Promise<void> {
    this.#abort.abort();
    clearTimeout(this.#lateTimer);
    clearTimeout(this.#viewTimer);
    await this.#registration.close();
    await this.#loop;
    this.#lease.release();
    this.#shared.release();
  }

  /** The view from the ids now: this client counted in its place even when its key is not there yet. */
  #publish(): void {
    if (!this.#listed) return;
    const view: MembershipView = {
      ...placeAmong(this.#options.clientId, this.#ids),
      registered: this.#registered,
      ...(this.#conflict !== undefined && { conflict: this.#conflict }),
    };
    const first = this.#last === undefined;
    this.#last = view;
    if (first) return this.#emitView();
    // Clients come and go in bursts (a fleet starting, a zone failing): one move per burst, not one per client.
    this.#viewTimer ??= setTimeout(() => this.#emitView(), VIEW_SETTLE_MILLIS).unref();
  }

  #emitView(): void {
    this.#viewTimer = undefined;
    const view = this.#last!;
    const told = this.#told;
    if (told !== undefined && sameIds(told.ids, view.ids) && told.registered === view.registered && told.conflict === view.conflict) return;
    this.#told = view;
    emitSafely(this, 'view', view);
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    const { retryInitialMillis, retryMaxMillis } = this.#options.etcd;
    // Back within a third of a TTL of etcd's return: the claim retries when this lists (see #list).
    const maxDelay = Math.min(retryMaxMillis, (this.#options.ttlSeconds * 1000) / 3);
    let backoff = new ExponentialBackoff({ initialDelay: Math.min(retryInitialMillis, maxDelay), maxDelay }).next();
    while (!signal.aborted) {
      const client = this.#shared.current();
      const startedAt = Date.now();
      try {
        const revision = await this.#list(client);
        await this.#watch(client, revision);
      } catch (err) {
        if (signal.aborted) return;
        // A replaced client is not an outage: list again at once on the new one.
        if (this.#shared.retired(client) !== undefined) continue;
        this.#options.logger.debug({ error: String(err) }, 'listing the subset clients failed; keeping the last view');
      }
      if (signal.aborted) return;
      if (Date.now() - startedAt < 1000) {
        await sleep(backoff.duration, undefined, { signal, ref: false }).catch(() => undefined);
        backoff = backoff.next(undefined);
      }
    }
  }

  async #list(client: Etcd3): Promise<number> {
    // Keys only: with thousands of clients each listing is read by each of them, and the ids are in the keys.
    const range = Range.prefix(this.#options.clientsPrefix);
    const response = await client.kv.range({ key: range.start, range_end: range.end, keys_only: true }, { deadline: Date.now() + this.#options.etcd.dialTimeoutMillis });
    this.#ids.clear();
    for (const kv of response.kvs) this.#ids.add(this.#idOf(kv));
    this.#listed = true;
    // etcd answers: a claim waiting out its backoff (the lease was lost in an outage) goes now, before the old lease ends.
    if (!this.#registered) this.#registration.retryNow();
    this.#publish();
    return Number(response.header.revision);
  }

  /** Watches from revision+1 until the stream breaks or the shared client is replaced. */
  #watch(client: Etcd3, revision: number): Promise<void> {
    const signal = this.#abort.signal;
    return new Promise<void>((resolve) => {
      if (signal.aborted) return resolve();
      const watcher = client.watch().inRange(Range.prefix(this.#options.clientsPrefix)).startRevision(String(revision + 1)).watcher();
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        signal.removeEventListener('abort', finish);
        stopHearing();
        watcher.cancel().catch(() => undefined);
        resolve();
      };
      // The key stays: its lease is the process's (shared-lease.ts) and outlives the client.
      const stopHearing = this.#shared.onRenewed((old) => {
        if (old === client) finish();
      });
      watcher.on('put', (kv: IKeyValue) => {
        const id = this.#idOf(kv);
        if (this.#ids.has(id)) return;
        this.#ids.add(id);
        this.#publish();
      });
      watcher.on('delete', (kv: IKeyValue) => {
        if (this.#ids.delete(this.#idOf(kv))) this.#publish();
      });
      watcher.on('disconnected', finish);
      watcher.on('error', finish);
      watcher.on('end', finish);
      signal.addEventListener('abort', finish, { once: true });
    });
  }

  #idOf(kv: IKeyValue): string {
    return kv.key.toString('utf8').slice(this.#options.clientsPrefix.length);
  }
}

/**
 * The fleet a client computes its subset in: the registered ids sorted, itself among them
 * even when its own key is not there (yet), and its rank among them.
 */
export function placeAmong(clientId: string, ids: Iterable<string>): { rank: number; clients: number; ids: string[] } {
  // Sorted as strings compare (`<`, UTF-16 code units), as every client sorts them.
  const fleet = [...new Set([...ids, clientId])].sort();
  return { rank: fleet.indexOf(clientId), clients: fleet.length, ids: fleet };
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/** The TTL of a client's registration lease when none is given, in seconds. */
export const DEFAULT_CLIENT_TTL_SECONDS = 10;

/** Every default clients prefix starts here: outside the backends' prefix and every prefix above it but the root. */
export const CLIENTS_ROOT = 'anchorpool.clients/';

/** Where the clients of one backends' prefix register, and for how long they outlive their process. */
export interface CoordinationSettings {
  readonly etcd: EtcdConnection;
  readonly clientsPrefix: string;
  readonly ttlSeconds: number;
}

/**
 * The coordination settings of a coordinated subset whose backends are discovered at
 * `site` (the resolved etcd options of the source; undefined for a pass:/// target), or
 * what is wrong, with the option's path.
 */
export function coordinationSettings(
  site: ResolvedEtcdOptions | undefined,
  subset: { readonly clientsPrefix?: string | undefined; readonly ttlSeconds?: number | undefined },
): CoordinationSettings | { readonly error: string } {
  if (site === undefined) return { error: "subset.mode: 'coordinated' needs an etcd target (the clients register in etcd); pass:/// has none" };
  const { prefix: backendsPrefix, ...etcd } = site;
  const clientsPrefix = subset.clientsPrefix ?? `${CLIENTS_ROOT}${backendsPrefix}`;
  if (clientsPrefix.startsWith(backendsPrefix)) {
    return { error: `subset.clientsPrefix: ${JSON.stringify(clientsPrefix)} is inside the backends' prefix ${JSON.stringify(backendsPrefix)}: discovery would read the clients as backends` };
  }
  if (backendsPrefix.startsWith(clientsPrefix)) {
    return { error: `subset.clientsPrefix: ${JSON.stringify(clientsPrefix)} contains the backends' prefix ${JSON.stringify(backendsPrefix)}: the backends would count as clients` };
  }
  return { etcd, clientsPrefix, ttlSeconds: subset.ttlSeconds ?? DEFAULT_CLIENT_TTL_SECONDS };
}
