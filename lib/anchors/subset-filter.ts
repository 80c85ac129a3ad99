/**
 * SubsetFilter: between the entries an owner applies and the anchor set's reconcile. Of
 * the keys offered it passes on the client's subset (subset.ts): the first keys of the
 * client's order until `size` of them can serve, the failed ones on the way kept, and
 * keys it drops kept while their replacements connect (make before break).
 *
 *   offered entries ──► order ──► chooseSubset ──► keepLeaving ──► reconcile
 *
 * The order: rendezvous, by the client's own hash of each key; or coordinated, the
 * client's share of an assignment every client computes alike from the registered ids and
 * the keys (coordinated-assignment.ts), then its other keys by its own score there, for
 * widening. A coordinated client passes on nothing until the owner tells it the ids (one
 * etcd listing after start), so it does not connect to one subset only to move to another
 * a moment later; when etcd does not tell in time the owner says so (place undefined) and
 * it starts from the rendezvous order.
 *
 * It remembers which keys of the subset failed (a first connection in TRANSIENT_FAILURE, or
 * out of rotation after serving: unhealthy, ejected, held out, disconnected) until they
 * serve again, so a key retrying its connection does not flap between failed and unknown;
 * the mark goes with the key when it leaves the subset or moves to another address. The
 * anchor set tells it, and asks it again after every change of standing (coalesced to one
 * evaluation per microtask by the anchor set).
 */
import type { DesiredEntry } from './reconcile.js';
import { coordinatedOrder } from './coordinated-assignment.js';
import { chooseSubset, keepLeaving, rendezvousRank, type SubsetStanding } from './subset.js';

export interface SubsetSettings {
  /** Keys that can serve the client keeps anchors to. */
  readonly size: number;
  readonly mode: 'rendezvous' | 'coordinated';
  /** The client's id in the ranking: unique per pool or channel unless given. */
  readonly clientId: string;
}

/** What the owner reports of a coordinated client's registration. */
export interface CoordinationReport {
  /** The client's place among the registered ids, sorted, from 0. */
  readonly rank: number;
  readonly clients: number;
  /** The client's own key is in etcd. */
  readonly registered: boolean;
  /** Another live client holds this client's id. */
  readonly conflict?: string | undefined;
}

/** What the owner tells a coordinated client (from etcd): the report, and the ids the assignment is computed from (this client's among them). */
export interface CoordinationView extends CoordinationReport {
  readonly ids: readonly string[];
}

export interface SubsetReport {
  readonly size: number;
  readonly mode: 'rendezvous' | 'coordinated';
  readonly clientId: string;
  /** Coordinated mode: the client's place among the clients, as last heard from etcd; absent until then (no keys meanwhile, or the rendezvous order once etcd was too slow to tell). */
  readonly coordination?: CoordinationReport | undefined;
  /** Keys offered (the whole prefix). */
  readonly offered: number;
  /** Keys in the subset now, in the client's order (rendezvous, or its coordinated order), each with why it is there. */
  readonly keys: readonly { readonly key: string; readonly why: 'chosen' | 'failed, kept to see it return' | 'leaving, until its replacement serves' }[];
}

export class SubsetFilter {
  #settings: SubsetSettings;
  readonly #serving: (key: string) => boolean;
  /** Each offered key's rendezvous rank for this client, computed once per key. */
  readonly #ranks = new Map<string, number>();
  #place: CoordinationView | undefined;
  /** Coordinated and its place not heard of yet: nothing is passed on. */
  #awaitingPlace: boolean;
  #offered: ReadonlyMap<string, DesiredEntry> = new Map();
  #order: string[] = [];
  readonly #failed = new Set<string>();
  /** The keys passed on last, and the choice among them (the rest are leaving). */
  #applied: ReadonlySet<string> = new Set();
  #chosen: ReadonlySet<string> = new Set();

  constructor(settings: SubsetSettings, serving: (key: string) => boolean) {
    this.#settings = settings;
    this.#serving = serving;
    this.#awaitingPlace = settings.mode === 'coordinated';
  }

  /** Coordinated, and waiting to hear its place: it has passed nothing on yet. */
  get awaitingPlace(): boolean {
    return this.#awaitingPlace;
  }

  get settings(): SubsetSettings {
    return this.#settings;
  }

  /** New settings (a policy config changed); what it applied and what failed stay, so the next offer moves only what the change moves. */
  reconfigure(settings: SubsetSettings): void {
    if (settings.clientId !== this.#settings.clientId) this.#ranks.clear();
    if (settings.mode !== 'coordinated') this.#place = undefined;
    this.#awaitingPlace = settings.mode === 'coordinated' && this.#place === undefined && this.#applied.size === 0;
    this.#settings = settings;
  }

  /**
   * A coordinated client's place changed, or (undefined) it could not be learnt in time:
   * the subset to apply, or undefined when it is the same.
   */
  place(place: CoordinationView | undefined): Map<string, DesiredEntry> | undefined {
    if (this.#settings.mode !== 'coordinated') return undefined;
    this.#awaitingPlace = false;
    this.#place = place ?? this.#place;
    this.#order = this.#ordered();
    return this.reevaluate();
  }

  /** New entries offered: the subset of them to apply. */
  offer(offered: ReadonlyMap<string, DesiredEntry>): Map<string, DesiredEntry> {
    const previous = this.#offered;
    this.#offered = offered;
    for (const key of this.#ranks.keys()) if (!offered.has(key)) this.#ranks.delete(key);
    // A key gone, or moved to another address, is not the key that failed.
    for (const key of this.#failed) if (offered.get(key)?.addr !== previous.get(key)?.addr) this.#failed.delete(key);
    this.#order = this.#ordered();
    return this.#choose();
  }

  /** After a change of standing: the subset to apply, or undefined when it is the same. */
  reevaluate(): Map<string, DesiredEntry> | undefined {
    const before = this.#applied;
    const next = this.#choose();
    if (next.size === before.size && [...next.keys()].every((key) => before.has(key))) return undefined;
    return next;
  }

  /** A key of the subset failed (it is not serving): it no longer counts until it serves again. Keys outside the subset are not watched: ignored. */
  failed(key: string): void {
    if (this.#applied.has(key) && !this.#serving(key)) this.#failed.add(key);
  }

  /** A key came into rotation. */
  served(key: string): void {
    this.#failed.delete(key);
  }

  report(): SubsetReport {
    const keys = this.#order
      .filter((key) => this.#applied.has(key))
      .map((key) => ({
        key,
        why: !this.#chosen.has(key) ? ('leaving, until its replacement serves' as const) : this.#failed.has(key) ? ('failed, kept to see it return' as const) : ('chosen' as const),
      }));
    const { size, mode, clientId } = this.#settings;
    const place = this.#place;
    const coordination = place && { rank: place.rank, clients: place.clients, registered: place.registered, ...(place.conflict !== undefined && { conflict: place.conflict }) };
    return { size, mode, clientId, ...(coordination !== undefined && { coordination }), offered: this.#offered.size, keys };
  }

  /** The offered keys in the client's order: rendezvous, or its share of the coordinated assignment once its place is known. */
  #ordered(): string[] {
    const { clientId, size } = this.#settings;
    const place = this.#place;
    if (place !== undefined) return coordinatedOrder(clientId, place.ids, this.#offered.keys(), size);
    const ranks = this.#ranks;
    for (const key of this.#offered.keys()) if (!ranks.has(key)) ranks.set(key, rendezvousRank(clientId, key));
    return [...this.#offered.keys()].sort((a, b) => ranks.get(b)! - ranks.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
  }

  #standing = (key: string): SubsetStanding => (this.#serving(key) ? 'serving' : this.#failed.has(key) ? 'failed' : 'unknown');

  #choose(): Map<string, DesiredEntry> {
    if (this.#awaitingPlace) return new Map();
    const chosen = chooseSubset(this.#order, this.#settings.size, this.#standing);
    const kept = keepLeaving(chosen, this.#applied, this.#order, this.#settings.size, this.#standing);
    this.#chosen = new Set(chosen);
    this.#applied = new Set(kept);
    // A key that left the subset has no anchors to see it return: it starts afresh if it comes back.
    for (const key of this.#failed) if (!this.#applied.has(key)) this.#failed.delete(key);
    return new Map(kept.map((key) => [key, this.#offered.get(key)!]));
  }
}
