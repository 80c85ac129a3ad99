/**
 * OutlierEjection: the OutlierDetector applied to an anchor set, the one wiring the pool
 * and the policy share. It turns call outcomes into the detector's records, runs its
 * interval on an unref'd timer, and ejects or returns every anchor of an entry through
 * the set (an ejected anchor is simply not eligible). Its owner hears of each change, to
 * log it, emit it, or report a new channel state.
 */
import type { Anchor } from './anchor.js';
import type { AnchorSet } from './anchor-set.js';
import { outcomeCode, type CallOutcome } from '../core/call-outcome.js';
import { OutlierDetector, type Ejection, type OutlierDetectionSettings } from './outlier-detector.js';

export interface OutlierEjectionSettings extends OutlierDetectionSettings {
  readonly failureCodes: readonly number[];
}

export interface OutlierEjectionHooks {
  ejected(ejection: Ejection): void;
  returned(key: string): void;
}

export class OutlierEjection<A extends Anchor> {
  readonly #detector: OutlierDetector;
  readonly #failureCodes: ReadonlySet<number>;
  readonly #anchors: AnchorSet<A>;
  readonly #hooks: OutlierEjectionHooks;
  readonly #timer: NodeJS.Timeout;
  /** Each entry's address: outcomes from another one (an old address's draining anchors) are not counted. */
  #addresses = new Map<string, string>();
  #ejections = 0;

  constructor(settings: OutlierEjectionSettings, anchors: AnchorSet<A>, hooks: OutlierEjectionHooks) {
    this.#detector = new OutlierDetector(settings);
    this.#failureCodes = new Set(settings.failureCodes);
    this.#anchors = anchors;
    this.#hooks = hooks;
    this.#timer = setInterval(() => this.#tick(), settings.intervalMillis);
    this.#timer.unref();
  }

  /** Ejections since it started. */
  get ejections(): number {
    return this.#ejections;
  }

  isEjected(key: string): boolean {
    return this.#detector.isEjected(key);
  }

  /**
   * The entries now wanted, key → address. New ones start clean, gone ones are forgotten,
   * and an entry whose address changed starts clean too: it is another backend now.
   */
  setEntries(entries: ReadonlyMap<string, string>): void {
    const moved = [...entries].filter(([key, address]) => this.#addresses.has(key) && this.#addresses.get(key) !== address).map(([key]) => key);
    this.#detector.setKeys([...entries.keys()].filter((key) => !moved.includes(key)));
    this.#detector.setKeys(entries.keys());
    this.#addresses = new Map(entries);
  }

  /** A call on `anchor` ended with `outcome`. */
  record(anchor: A, outcome: CallOutcome): void {
    if (this.#addresses.get(anchor.key) !== anchor.address) return;
    const ejection = this.#detector.record(anchor.key, this.#failureCodes.has(outcomeCode(outcome)), Date.now());
    if (ejection !== undefined) this.#eject(ejection);
  }

  /** Stops the timer and puts every ejected entry back. */
  close(): void {
    clearInterval(this.#timer);
    for (const anchor of [...this.#anchors.active()]) if (anchor.ejected) this.#anchors.setEjected(anchor.key, false);
  }

  #tick(): void {
    const { ejected, returned } = this.#detector.tick(Date.now());
    for (const ejection of ejected) this.#eject(ejection);
    for (const key of returned) {
      this.#anchors.setEjected(key, false);
      this.#hooks.returned(key);
    }
  }

  #eject(ejection: Ejection): void {
    this.#ejections += 1;
    this.#anchors.setEjected(ejection.key, true);
    this.#hooks.ejected(ejection);
  }
}
