/**
 * OutlierDetector: passive outlier ejection from call outcomes (modelled on gRFC A50 and
 * Envoy's outlier detection), per endpoint entry (etcd key): a backend that fails its
 * calls is taken out of rotation for a while, longer each time it is ejected again.
 *
 *   - consecutive failures: `consecutiveFailures` failed calls in a row eject at once
 *     (Envoy's consecutive_5xx; default 5);
 *   - failure percentage: every `intervalMillis`, an entry with at least
 *     `requestVolume` calls in the interval whose failed share is at least
 *     `failurePercentage` is ejected (A50's failure_percentage_ejection);
 *   - an ejection lasts `baseEjectionTimeMillis × times ejected`, at most
 *     `maxEjectionTimeMillis`, and ends at the first tick after that; every interval an
 *     entry spends in rotation lowers its count by one again (A50's multiplier);
 *   - at most `maxEjectionPercent` of the entries are ejected at once, but one may
 *     always be (A50 and Envoy both allow a single ejection whatever the percentage).
 *
 * Pure logic with an injected clock; the owner applies ejections to its anchors and runs
 * tick() on a timer. Time is in milliseconds of the owner's clock.
 */

export interface OutlierDetectionSettings {
  readonly consecutiveFailures: number;
  readonly intervalMillis: number;
  /** 0 turns the percentage check off. */
  readonly failurePercentage: number;
  readonly requestVolume: number;
  readonly baseEjectionTimeMillis: number;
  readonly maxEjectionTimeMillis: number;
  readonly maxEjectionPercent: number;
}

export const DEFAULT_OUTLIER_DETECTION: OutlierDetectionSettings = {
  consecutiveFailures: 5,
  intervalMillis: 10_000,
  failurePercentage: 85,
  requestVolume: 50,
  baseEjectionTimeMillis: 30_000,
  maxEjectionTimeMillis: 300_000,
  maxEjectionPercent: 10,
};

export interface Ejection {
  readonly key: string;
  readonly until: number;
  readonly times: number;
  readonly reason: 'consecutive-failures' | 'failure-percentage';
}

interface EntryState {
  consecutive: number;
  calls: number;
  failures: number;
  times: number;
  ejectedUntil: number | undefined;
}

export class OutlierDetector {
  readonly #settings: OutlierDetectionSettings;
  readonly #entries = new Map<string, EntryState>();

  constructor(settings: OutlierDetectionSettings) {
    this.#settings = settings;
  }

  /** Makes the known entries exactly `keys` (new ones start clean; gone ones are forgotten). */
  setKeys(keys: Iterable<string>): void {
    const wanted = new Set(keys);
    for (const key of this.#entries.keys()) if (!wanted.has(key)) this.#entries.delete(key);
    for (const key of wanted) if (!this.#entries.has(key)) this.#entries.set(key, { consecutive: 0, calls: 0, failures: 0, times: 0, ejectedUntil: undefined });
  }

  isEjected(key: string): boolean {
    return this.#entries.get(key)?.ejectedUntil !== undefined;
  }

  ejectedCount(): number {
    let n = 0;
    for (const entry of this.#entries.values()) if (entry.ejectedUntil !== undefined) n += 1;
    return n;
  }

  /** A call on `key` ended; returns the ejection it caused, if any. */
  record(key: string, failed: boolean, now: number): Ejection | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    entry.calls += 1;
    if (!failed) {
      entry.consecutive = 0;
      return undefined;
    }
    entry.failures += 1;
    entry.consecutive += 1;
    const threshold = this.#settings.consecutiveFailures;
    if (threshold > 0 && entry.consecutive >= threshold && entry.ejectedUntil === undefined && this.#mayEject()) {
      return this.#eject(key, entry, now, 'consecutive-failures');
    }
    return undefined;
  }

  /**
   * Once per interval: ends ejections whose time is up, runs the failure-percentage
   * check over the interval's calls, and starts a new interval. Returns what changed.
   */
  tick(now: number): { ejected: Ejection[]; returned: string[] } {
    const ejected: Ejection[] = [];
    const { failurePercentage, requestVolume } = this.#settings;
    if (failurePercentage > 0) {
      for (const [key, entry] of this.#entries) {
        if (entry.ejectedUntil !== undefined || entry.calls < requestVolume) continue;
        if ((100 * entry.failures) / entry.calls >= failurePercentage && this.#mayEject()) ejected.push(this.#eject(key, entry, now, 'failure-percentage'));
      }
    }
    const returned: string[] = [];
    for (const [key, entry] of this.#entries) {
      entry.calls = 0;
      entry.failures = 0;
      if (entry.ejectedUntil !== undefined) {
        if (now < entry.ejectedUntil) continue;
        entry.ejectedUntil = undefined;
        entry.consecutive = 0;
        returned.push(key);
      } else if (entry.times > 0) {
        // A whole interval in rotation brings the multiplier down by one (as A50).
        entry.times -= 1;
      }
    }
    return { ejected, returned };
  }

  #mayEject(): boolean {
    const ejected = this.ejectedCount();
    if (ejected === 0) return true;
    return ((ejected + 1) * 100) / this.#entries.size <= this.#settings.maxEjectionPercent;
  }

  #eject(key: string, entry: EntryState, now: number, reason: Ejection['reason']): Ejection {
    entry.times += 1;
    const duration = Math.min(this.#settings.baseEjectionTimeMillis * entry.times, Math.max(this.#settings.baseEjectionTimeMillis, this.#settings.maxEjectionTimeMillis));
    entry.ejectedUntil = now + duration;
    entry.consecutive = 0;
    return { key, until: entry.ejectedUntil, times: entry.times, reason };
  }
}
