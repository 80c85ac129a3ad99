/**
 * SlowStartRamps: the keys whose share is ramping up now (slow-start.ts gives the factor),
 * and the admission gates that apply the ramp to the picks (schedule-cursor.ts):
 *   - round robin gives a ramping key a credit of its factor per visit and takes it once
 *     the credit reaches one, so a key at factor f gets f of its share, exactly, in order;
 *   - a two-choice pick lets a drawn slot of a ramping key through with probability f.
 * The anchor set starts a key's ramp when the key comes into rotation after none of its
 * anchors was (key-weights.ts tells it when).
 */
import { slowStartFactor, type SlowStartSettings } from './slow-start.js';

interface Ramp {
  /** The clock's time when it started. */
  readonly from: number;
  /** Round robin's admission credit. */
  credit: number;
}

export class SlowStartRamps {
  #settings: SlowStartSettings | undefined;
  readonly #ramps = new Map<string, Ramp>();
  /** No key ramps past this time: picks skip the gate after it. */
  #until = 0;

  constructor(settings: SlowStartSettings | undefined) {
    this.#settings = settings;
  }

  get settings(): SlowStartSettings | undefined {
    return this.#settings;
  }

  /** New settings: ramps under way follow the new window; undefined ends them all. */
  configure(settings: SlowStartSettings | undefined): void {
    this.#settings = settings;
    if (settings === undefined) this.#ramps.clear();
    this.#until = 0;
    for (const ramp of this.#ramps.values()) this.#until = Math.max(this.#until, ramp.from + settings!.windowMillis);
  }

  /** `key` came into rotation at `now`: its share starts from the floor (when slow start is on). */
  start(key: string, now: number): void {
    if (this.#settings === undefined) return;
    this.#ramps.set(key, { from: now, credit: 0 });
    this.#until = Math.max(this.#until, now + this.#settings.windowMillis);
  }

  forget(key: string): void {
    this.#ramps.delete(key);
  }

  /** Some key may be ramping at `now`: picks need the gate. */
  ramping(now: number): boolean {
    return now < this.#until;
  }

  /** The factor of `key`'s share at `now`: from minWeightPercent / 100 up to 1 (1 when it does not ramp). */
  factor(key: string, now: number): number {
    const ramp = this.#ramps.get(key);
    if (ramp === undefined || this.#settings === undefined) return 1;
    const factor = slowStartFactor(now - ramp.from, this.#settings);
    if (factor >= 1) this.#ramps.delete(key);
    return factor;
  }

  /** Round robin's gate. */
  admitInTurn(key: string, now: number): boolean {
    const factor = this.factor(key, now);
    if (factor >= 1) return true;
    const ramp = this.#ramps.get(key)!;
    ramp.credit += factor;
    if (ramp.credit < 1) return false;
    ramp.credit -= 1;
    return true;
  }

  /** A two-choice pick's gate. */
  admitAtRandom(key: string, now: number, random: () => number): boolean {
    const factor = this.factor(key, now);
    return factor >= 1 || random() < factor;
  }

  /** The keys ramping at `now`, with their factor. */
  list(now: number): { key: string; factor: number }[] {
    const list: { key: string; factor: number }[] = [];
    for (const key of [...this.#ramps.keys()]) {
      const factor = this.factor(key, now);
      if (factor < 1) list.push({ key, factor });
    }
    return list;
  }
}
