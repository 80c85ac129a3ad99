/**
 * Slow start: the share of a key that just came (back) into rotation ramps up over a
 * window instead of jumping to full, so a cold process (JIT, caches, its own connection
 * pools) is not handed a full share at once. Envoy's model and names:
 *
 *   factor(t) = max(minWeightPercent / 100, (t / windowMillis) ^ (1 / aggression)),  t < windowMillis
 *   factor(t) = 1,                                                                 t ≥ windowMillis
 *
 * t runs from the moment the key's first anchor came into rotation after none was (a new
 * key, a backend restarted, back from NOT_SERVING or from an ejection). aggression 1 ramps
 * linearly; above 1 the share rises fast at first, below 1 slowly at first.
 * Keys of the first resolution do not ramp: the whole fleet is new then, and ramping every
 * key would ramp none of them.
 */

export interface SlowStartSettings {
  readonly windowMillis: number;
  readonly aggression: number;
  readonly minWeightPercent: number;
}

export const DEFAULT_SLOW_START = { windowMillis: 30_000, aggression: 1, minWeightPercent: 10 } as const satisfies SlowStartSettings;

/** The factor of a key's share `sinceMillis` after it came into rotation: from minWeightPercent/100 up to 1. */
export function slowStartFactor(sinceMillis: number, settings: SlowStartSettings): number {
  if (sinceMillis >= settings.windowMillis) return 1;
  const ramp = Math.pow(Math.max(0, sinceMillis) / settings.windowMillis, 1 / settings.aggression);
  return Math.max(settings.minWeightPercent / 100, ramp);
}
