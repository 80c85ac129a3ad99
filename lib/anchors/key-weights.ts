/**
 * KeyWeights: what the pick knows of each key besides its anchors — its zone, how many of
 * its N anchors are in rotation (for zone shares, zone-shares.ts), and its slow-start ramp
 * (slow-start.ts). The anchor set tells it of every anchor that came into rotation or
 * left it; it recounts that key only (O(N)) and, when a key comes back from having none
 * in rotation, starts the key's ramp.
 *
 * The ramp is applied as an admission gate on the picks (schedule-cursor.ts): round
 * robin gives each key a credit of its factor per visit and takes it when the credit
 * reaches one, so a key at factor f gets f of its share, exactly, in order; a two-choice
 * pick lets a drawn slot through with probability f.
 */
import type { Anchor } from './anchor.js';
import type { DesiredEntry } from './reconcile.js';
import { slowStartFactor, type SlowStartSettings } from './slow-start.js';
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
  /** Its first coming into rotation does not ramp (keys of the first resolution). */
  skipRamp: boolean;
  /** performance.now() when its ramp started; undefined: not ramping. */
  rampFrom: number | undefined;
  /** Round robin's admission credit while ramping. */
  credit: number;
}

export class KeyWeights {
  readonly #keys = new Map<string, KeyWeight>();
  #local: string | undefined;
  #slowStart: SlowStartSettings | undefined;
  /** No key ramps past this time (performance.now()): picks skip the gate after it. */
  #rampUntil = 0;
  #applied = false;

  constructor(local: string | undefined, slowStart: SlowStartSettings | undefined) {
    this.#local = local;
    this.#slowStart = slowStart;
  }

  /** The caller's zone; undefined: zones are not used. */
  get local(): string | undefined {
    return this.#local;
  }

  /** The zone group `key` is picked in, when zones are used. */
  groupOf(key: string): string | undefined {
    return this.#keys.get(key)?.group;
  }

  /** Its own zone as its value says, if any. */
  zoneOf(key: string): string | undefined {
    return this.#keys.get(key)?.zone;
  }

  setLocal(local: string | undefined): void {
    this.#local = local;
    for (const weight of this.#keys.values()) weight.group = this.#groupFor(weight.zone);
  }

  setSlowStart(settings: SlowStartSettings | undefined): void {
    this.#slowStart = settings;
    if (settings === undefined) {
      for (const weight of this.#keys.values()) weight.rampFrom = undefined;
      this.#rampUntil = 0;
    }
  }

  /** The entries now applied: new keys are tracked, gone ones forgotten. Keys of the first call do not ramp. */
  setEntries(desired: ReadonlyMap<string, DesiredEntry>): void {
    for (const key of this.#keys.keys()) if (!desired.has(key)) this.#keys.delete(key);
    for (const [key, entry] of desired) {
      const weight = this.#keys.get(key);
      if (weight === undefined) {
        const zone = entry.zone;
        this.#keys.set(key, {
          anchors: entry.anchors,
          group: this.#groupFor(zone),
          zone,
          healthy: 0,
          inRotation: false,
          skipRamp: !this.#applied,
          rampFrom: undefined,
          credit: 0,
        });
      } else {
        weight.anchors = entry.anchors;
        weight.zone = entry.zone;
        weight.group = this.#groupFor(entry.zone);
      }
    }
    this.#applied = true;
  }

  /**
   * Recounts `key` from its active anchors (index order). Returns whether its healthy
   * count changed (zone shares then need computing again).
   */
  recount(key: string, anchors: Iterable<Anchor>, now: number): boolean {
    const weight = this.#keys.get(key);
    if (weight === undefined) return false;
    let count = 0;
    for (const anchor of anchors) if (anchor.inRotation) count += 1;
    const inRotation = count > 0;
    // An extra anchor in rotation stands in for one of the N that is not: the key's slots are served.
    const healthy = Math.min(weight.anchors, count);
    if (inRotation && !weight.inRotation) this.#cameIntoRotation(weight, now);
    weight.inRotation = inRotation;
    const changed = healthy !== weight.healthy;
    weight.healthy = healthy;
    return changed;
  }

  /** Each zone group's slots and healthy slots. */
  zoneLoads(): ZoneLoad[] {
    const loads = new Map<string, { zone: string; total: number; healthy: number }>();
    for (const weight of this.#keys.values()) {
      const load = loads.get(weight.group) ?? { zone: weight.group, total: 0, healthy: 0 };
      load.total += weight.anchors;
      load.healthy += weight.healthy;
      loads.set(weight.group, load);
    }
    return [...loads.values()];
  }

  /** Some key may be ramping at `now`: picks need the gate. */
  ramping(now: number): boolean {
    return now < this.#rampUntil;
  }

  /** The slow-start factor of `key` at `now` (1 when it does not ramp). */
  factor(key: string, now: number): number {
    const weight = this.#keys.get(key);
    if (weight?.rampFrom === undefined || this.#slowStart === undefined) return 1;
    const factor = slowStartFactor(now - weight.rampFrom, this.#slowStart);
    if (factor >= 1) weight.rampFrom = undefined;
    return factor;
  }

  /** Round robin's gate: a ramping key earns its factor per visit and is taken once it has earned a whole pick. */
  admitInTurn(key: string, now: number): boolean {
    const factor = this.factor(key, now);
    if (factor >= 1) return true;
    const weight = this.#keys.get(key)!;
    weight.credit += factor;
    if (weight.credit < 1) return false;
    weight.credit -= 1;
    return true;
  }

  /** A two-choice pick's gate: a drawn slot of a ramping key goes through with probability of its factor. */
  admitAtRandom(key: string, now: number, random: () => number): boolean {
    const factor = this.factor(key, now);
    return factor >= 1 || random() < factor;
  }

  /** Keys ramping now, with their factor: for stats. */
  ramps(now: number): { key: string; factor: number }[] {
    const ramps: { key: string; factor: number }[] = [];
    if (!this.ramping(now)) return ramps;
    for (const key of this.#keys.keys()) {
      const factor = this.factor(key, now);
      if (factor < 1) ramps.push({ key, factor });
    }
    return ramps;
  }

  #cameIntoRotation(weight: KeyWeight, now: number): void {
    const skip = weight.skipRamp;
    weight.skipRamp = false;
    if (skip || this.#slowStart === undefined) return;
    weight.rampFrom = now;
    weight.credit = 0;
    this.#rampUntil = Math.max(this.#rampUntil, now + this.#slowStart.windowMillis);
  }

  #groupFor(zone: string | undefined): string {
    return zone === undefined || this.#local === undefined ? (this.#local ?? '') : zone;
  }
}
