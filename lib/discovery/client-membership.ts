/**
 * ClientMembership: one subsetting client among its peers, for coordinated subsets. The
 * client claims `clientsPrefix + clientId` (the registration loop of registration.ts, in
 * its 'claim' mode) on the process's shared lease (shared-lease.ts), and hears the ids
 * registered under the prefix from the process's one watch of it (clients-watch.ts);
 * those ids are what every client computes the fleet's subsets from
 * (anchors/coordinated-assignment.ts).
 *
 *   claim prefix+id on the process's lease ──► (lease ended) ──► claim again
 *   the process's watch of the prefix ──► ids (once per burst) ──► this client's view
 *
 * While etcd cannot be reached the last ids stay, so subsets stay as they were; a renewed
 * etcd client or an outage shorter than the TTL leaves the key as it was. A client that
 * died leaves the others' ids when its lease ends (one TTL). An id held by another live
 * client is a conflict: reported (the 'conflict' event, the view's `conflict`), and
 * claimed again until the other's lease ends.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { acquireEtcdClient, type SharedEtcdClient } from '../etcd/etcd-client-share.js';
import type { EtcdConnection } from '../etcd/etcd-client.js';
import { type AnchorPoolError, ClientIdTakenError } from '../core/errors.js';
import { emitSafely } from '../core/emit-safely.js';
import type { Logger } from '../core/logger.js';
import { LeaseRegistration } from './registration.js';
import { acquireSharedLease, type SharedLease } from './shared-lease.js';
import { acquireClientsWatch, sameIds, type ClientsWatch } from './clients-watch.js';
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

/** The values of this process's memberships not closed yet: another value naming this process is one left behind. */
const liveValues = new Set<string>();

/** A value naming this process (host, pid) that no open membership wrote: its client closed without deleting its key. */
function abandonedHere(value: string): boolean {
  if (liveValues.has(value)) return false;
  try {
    const parsed = JSON.parse(value) as { host?: unknown; pid?: unknown };
    return parsed.host === hostname() && parsed.pid === process.pid;
  } catch {
    return false;
  }
}

export class ClientMembership extends EventEmitter<MembershipEvents> {
  readonly #options: MembershipOptions;
  readonly #shared: SharedEtcdClient;
  readonly #registration: LeaseRegistration;
  readonly #lease: SharedLease;
  readonly #watch: ClientsWatch;
  readonly #value: string;
  #registered = false;
  #conflict: string | undefined;
  #lateTimer: NodeJS.Timeout | undefined;
  /** The view last emitted. */
  #told: MembershipView | undefined;

  constructor(options: MembershipOptions) {
    super();
    this.#options = options;
    this.#shared = acquireEtcdClient(options.etcd, options.logger);
    const shared = this.#shared;
    this.#lease = acquireSharedLease(options.etcd, options.ttlSeconds, options.logger);
    // Back within a third of a TTL of etcd's return: a lost claim retries when the watch lists again.
    this.#watch = acquireClientsWatch(options.etcd, options.clientsPrefix, (options.ttlSeconds * 1000) / 3, options.logger);
    // The value names the process and is unique to this instance: a key with it is this client's own.
    const value = JSON.stringify({ clientId: options.clientId, host: hostname(), pid: process.pid, instance: randomUUID(), since: new Date().toISOString() });
    this.#value = value;
    liveValues.add(value);
    this.#registration = new LeaseRegistration(
      {
        etcd: options.etcd,
        key: options.clientsPrefix + options.clientId,
        value,
        write: 'claim',
        abandoned: abandonedHere,
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
    this.#watch.onIds(() => this.#publish());
    // etcd answers: a claim waiting out its backoff (the lease ended in an outage) goes now.
    this.#watch.onListed(() => {
      if (!this.#registered) this.#registration.retryNow();
    });
    this.#lateTimer = setTimeout(() => {
      if (this.#watch.ids() === undefined) emitSafely(this, 'late');
    }, this.#options.etcd.dialTimeoutMillis).unref();
    // The process may have listed the prefix already, for another client.
    this.#publish();
  }

  /** Deletes the client's key (while it is on its lease), lets go of the lease and the watch. */
  async close(): Promise<void> {
    clearTimeout(this.#lateTimer);
    this.#watch.release();
    await this.#registration.close();
    liveValues.delete(this.#value);
    this.#lease.release();
    this.#shared.release();
  }

  /** The view from the ids last heard (this client counted in its place even when its key is not there yet), when it differs from the last told. */
  #publish(): void {
    const ids = this.#watch.ids();
    if (ids === undefined) return;
    const view: MembershipView = {
      ...placeAmong(this.#options.clientId, ids),
      registered: this.#registered,
      ...(this.#conflict !== undefined && { conflict: this.#conflict }),
    };
    const told = this.#told;
    if (told !== undefined && sameIds(told.ids, view.ids) && told.registered === view.registered && told.conflict === view.conflict) return;
    this.#told = view;
    emitSafely(this, 'view', view);
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
