/**
 * SubsetFilter: between the entries an owner applies and the anchor set's reconcile. Of
 * the keys offered it passes on the client's subset (subset.ts): the keys of highest
 * rendezvous rank until `size` of them can serve, the failed ones on the way kept, and
 * keys it drops kept while their replacements connect (make before break).
 *
 *   offered entries ──► rendezvous order ──► chooseSubset ──► keepLeaving ──► reconcile
 *
 * It remembers which keys of the subset failed (a first connection in TRANSIENT_FAILURE, or
 * out of rotation after serving: unhealthy, ejected, held out, disconnected) until they
 * serve again, so a key retrying its connection does not flap between failed and unknown;
 * the mark goes with the key when it leaves the subset or moves to another address. The
 * anchor set tells it, and asks it again after every change of standing (coalesced to one
 * evaluation per microtask by the anchor set).
 */
import type { DesiredEntry } from './reconcile.js';
import { chooseSubset, keepLeaving, rendezvousRank, type SubsetStanding } from './subset.js';

export interface SubsetSettings {
  /** Keys that can serve the client keeps anchors to. */
  readonly size: number;
  /** The client's id in the ranking: unique per pool or channel unless given. */
  readonly clientId: string;
}

export interface SubsetReport {
  readonly size: number;
  readonly clientId: string;
  /** Keys offered (the whole prefix). */
  readonly offered: number;
  /** Keys in the subset now, in rendezvous order, each with why it is there. */
  readonly keys: readonly { readonly key: string; readonly why: 'chosen' | 'failed, kept to see it return' | 'leaving, until its replacement serves' }[];
}

export class SubsetFilter {
  #settings: SubsetSettings;
  readonly #serving: (key: string) => boolean;
  /** Each offered key's rank, computed once per key. */
  readonly #ranks = new Map<string, number>();
  #offered: ReadonlyMap<string, DesiredEntry> = new Map();
  #order: string[] = [];
  readonly #failed = new Set<string>();
  /** The keys passed on last, and the choice among them (the rest are leaving). */
  #applied: ReadonlySet<string> = new Set();
  #chosen: ReadonlySet<string> = new Set();

  constructor(settings: SubsetSettings, serving: (key: string) => boolean) {
    this.#settings = settings;
    this.#serving = serving;
  }

  get settings(): SubsetSettings {
    return this.#settings;
  }

  /** New settings (a policy config changed); what it applied and what failed stay, so the next offer moves only what the change moves. */
  reconfigure(settings: SubsetSettings): void {
    if (settings.clientId !== this.#settings.clientId) this.#ranks.clear();
    this.#settings = settings;
  }

  /** New entries offered: the subset of them to apply. */
  offer(offered: ReadonlyMap<string, DesiredEntry>): Map<string, DesiredEntry> {
    const previous = this.#offered;
    this.#offered = offered;
    for (const key of this.#ranks.keys()) if (!offered.has(key)) this.#ranks.delete(key);
    // A key gone, or moved to another address, is not the key that failed.
    for (const key of this.#failed) if (offered.get(key)?.addr !== previous.get(key)?.addr) this.#failed.delete(key);
    for (const key of offered.keys()) if (!this.#ranks.has(key)) this.#ranks.set(key, rendezvousRank(this.#settings.clientId, key));
    this.#order = [...offered.keys()].sort((a, b) => this.#ranks.get(b)! - this.#ranks.get(a)! || (a < b ? -1 : a > b ? 1 : 0));
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
    return { size: this.#settings.size, clientId: this.#settings.clientId, offered: this.#offered.size, keys };
  }

  #standing = (key: string): SubsetStanding => (this.#serving(key) ? 'serving' : this.#failed.has(key) ? 'failed' : 'unknown');

  #choose(): Map<string, DesiredEntry> {
    const chosen = chooseSubset(this.#order, this.#settings.size, this.#standing);
    const kept = keepLeaving(chosen, this.#applied, this.#order, this.#settings.size, this.#standing);
    this.#chosen = new Set(chosen);
    this.#applied = new Set(kept);
    // A key that left the subset has no anchors to see it return: it starts afresh if it comes back.
    for (const key of this.#failed) if (!this.#applied.has(key)) this.#failed.delete(key);
    return new Map(kept.map((key) => [key, this.#offered.get(key)!]));
  }
}
