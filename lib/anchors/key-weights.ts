/**
 * KeyWeights: what the pick knows of each key besides its anchors — its zone and how many
 * of its N slots are in rotation (the inputs of zone-shares.ts). The anchor set tells it of
 * every anchor that came into rotation or left it; it recounts that key only (O(N)) and
 * says when the key came back from having none in rotation (slow start ramps it then).
 */
import type { Anchor } from './anchor.js';
import type { DesiredEntry } from './reconcile.js';
import type { ZoneLoad } from './zone-shares.js';

interface KeyWeight {
  /** Its N: the slots it has in the schedule. */
  anchors: number;
  /** The zone group it is picked in: its zone, or the caller's for a key without one. */
  group: string;
  /** Its own zone, as its value says. */
  zone: string | undefined;
  /** Of its N slots, as many as it has anchors in rotation (extra ones included): min(N, in rotation). */
  healthy: number;
  /** Some anchor of it (extra ones included) is in rotation. */
  inRotation: boolean;
  /** It came with the first entries applied and has not come into rotation yet (the whole fleet is new then). */
  first: boolean;
}

export interface Recount {
  /** Its healthy slots changed: zone shares need computing again. */
  readonly healthyChanged: boolean;
  /** It came into rotation after none of its anchors was; `first`: it is a key of the first entries. */
  readonly cameBack: false | { readonly first: boolean };
  /** Its last anchor in rotation left it. */
  readonly wentOut: boolean;
}

const UNCHANGED: Recount = { healthyChanged: false, cameBack: false, wentOut: false };

export class KeyWeights {
  readonly #keys = new Map<string, KeyWeight>();
  #local: string | undefined;
  /** The clock's time when the first non-empty entries were applied; undefined before. */
  #firstAppliedAt: number | undefined;

  constructor(local: string | undefined) {
    this.#local = local;
  }

  /** The caller's zone; undefined: zones are not used. */
  get local(): string | undefined {
    return this.#local;
  }

  /** When the first non-empty entries were applied (the clock's time). */
  get firstAppliedAt(): number | undefined {
    return this.#firstAppliedAt;
  }

  /** The zone group `key` is picked in, when zones are used. */
  groupOf(key: string): string | undefined {
    return this.#keys.get(key)?.group;
  }

  /** Its own zone as its value says, if any. */
  zoneOf(key: string): string | undefined {
    return this.#keys.get(key)?.zone;
  }

  /** Some anchor of `key` is in rotation. */
  inRotation(key: string): boolean {
    return this.#keys.get(key)?.inRotation === true;
  }

  setLocal(local: string | undefined): void {
    this.#local = local;
    for (const weight of this.#keys.values()) weight.group = this.#groupFor(weight.zone);
  }

  /** The entries now applied: new keys are tracked, gone ones forgotten (returned). */
  setEntries(desired: ReadonlyMap<string, DesiredEntry>, now: number): string[] {
    const gone: string[] = [];
    for (const key of this.#keys.keys()) {
      if (desired.has(key)) continue;
      this.#keys.delete(key);
      gone.push(key);
    }
    const first = this.#firstAppliedAt === undefined;
    if (first && desired.size > 0) this.#firstAppliedAt = now;
    for (const [key, entry] of desired) {
      const weight = this.#keys.get(key);
      if (weight === undefined) {
        this.#keys.set(key, { anchors: entry.anchors, group: this.#groupFor(entry.zone), zone: entry.zone, healthy: 0, inRotation: false, first });
      } else {
        weight.anchors = entry.anchors;
        weight.zone = entry.zone;
        weight.group = this.#groupFor(entry.zone);
      }
    }
    return gone;
  }

  /** Recounts `key` from its active anchors. */
  recount(key: string, anchors: Iterable<Anchor>): Recount {
    const weight = this.#keys.get(key);
    if (weight === undefined) return UNCHANGED;
    let count = 0;
    for (const anchor of anchors) if (anchor.inRotation) count += 1;
    const inRotation = count > 0;
    // An extra anchor in rotation stands in for one of the N that is not: the key's slots are served.
    const healthy = Math.min(weight.anchors, count);
    const cameBack = inRotation && !weight.inRotation ? { first: weight.first } : false;
    if (cameBack !== false) weight.first = false;
    const wentOut = weight.inRotation && !inRotation;
    weight.inRotation = inRotation;
    const healthyChanged = healthy !== weight.healthy;
    weight.healthy = healthy;
    return { healthyChanged, cameBack, wentOut };
  }

  /** Each zone group's slots and healthy slots, each key's healthy slots weighed by `factor` (its slow-start ramp). */
  zoneLoads(factor: (key: string) => number = () => 1): ZoneLoad[] {
    const loads = new Map<string, { zone: string; total: number; healthy: number }>();
    for (const [key, weight] of this.#keys) {
      const load = loads.get(weight.group) ?? { zone: weight.group, total: 0, healthy: 0 };
      load.total += weight.anchors;
      load.healthy += weight.healthy === 0 ? 0 : weight.healthy * factor(key);
      loads.set(weight.group, load);
    }
    return [...loads.values()];
  }

  #groupFor(zone: string | undefined): string {
    return zone === undefined || this.#local === undefined ? (this.#local ?? '') : zone;
  }
}
