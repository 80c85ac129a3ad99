/**
 * Zone-aware routing: which share of the calls goes to each zone, for a caller in zone
 * `local`. A pure function of what is in rotation, so it is unit-tested on its own
 * (spec/zone-shares.spec.ts) and the pick only draws a zone by these shares.
 *
 * Weights are anchor slots: a key counts with its N (its configured anchors), and with as
 * many of them as are in rotation (READY, healthy, not ejected) as its healthy weight.
 * Keys without a zone count as in every zone, so in the caller's: they are in `local`.
 *
 *   h = local healthy / local total (as a percent)
 *   - h ≥ spillBelowPercent:  every call stays local.
 *   - panicBelowPercent ≤ h < spillBelowPercent:  the local zone keeps h / spillBelowPercent
 *     of the calls (its healthy anchors take at most 1 / spillBelowPercent of their usual
 *     load); the rest spills to the other zones in proportion to their healthy weight.
 *     With the default 100 the local zone keeps exactly the share of its healthy anchors.
 *   - h < panicBelowPercent:  zones no longer matter: every zone gets calls in proportion
 *     to its healthy weight, the local one included.
 * No other zone with anything healthy: everything stays local. No local zone at all (no
 * key in it, and none without a zone): zones do not matter either.
 */

export interface ZoneLoad {
  readonly zone: string;
  /** Anchor slots of the zone's keys (the sum of their N). */
  readonly total: number;
  /** Of those, the slots in rotation now. */
  readonly healthy: number;
}

export interface ZoneThresholds {
  readonly spillBelowPercent: number;
  readonly panicBelowPercent: number;
}

/** The caller's zone and its thresholds. */
export interface ZoneSettings extends ZoneThresholds {
  readonly local: string;
}

export const DEFAULT_ZONE_THRESHOLDS = { spillBelowPercent: 100, panicBelowPercent: 50 } as const satisfies ZoneThresholds;

/** local: all calls in the caller's zone; spill: some leave it; panic/no-local: spread over every zone by health; none: nothing is healthy. */
export type ZoneMode = 'local' | 'spill' | 'panic' | 'no-local' | 'none';

export interface ZoneShares {
  readonly mode: ZoneMode;
  /** Each zone's share of the calls, from 0 to 1; they sum to 1 unless the mode is 'none'. */
  readonly shares: ReadonlyMap<string, number>;
}

export function zoneShares(local: string, zones: readonly ZoneLoad[], thresholds: ZoneThresholds): ZoneShares {
  const shares = new Map<string, number>(zones.map((z) => [z.zone, 0]));
  let healthyElsewhere = 0;
  let localLoad: ZoneLoad | undefined;
  for (const zone of zones) {
    if (zone.zone === local) localLoad = zone;
    else healthyElsewhere += zone.healthy;
  }
  const localHealthy = localLoad?.healthy ?? 0;
  if (localHealthy + healthyElsewhere === 0) return { mode: 'none', shares };
  const byHealth = (mode: ZoneMode): ZoneShares => {
    const all = localHealthy + healthyElsewhere;
    for (const zone of zones) shares.set(zone.zone, zone.healthy / all);
    return { mode, shares };
  };
  if (localLoad === undefined || localLoad.total === 0) return byHealth('no-local');
  const healthyPercent = (100 * localLoad.healthy) / localLoad.total;
  if (localHealthy > 0 && (healthyElsewhere === 0 || healthyPercent >= thresholds.spillBelowPercent)) {
    shares.set(local, 1);
    return { mode: 'local', shares };
  }
  if (healthyPercent < thresholds.panicBelowPercent) return byHealth('panic');
  // Here healthyPercent < spillBelowPercent, or nothing local is healthy.
  const kept = localHealthy === 0 ? 0 : healthyPercent / thresholds.spillBelowPercent;
  shares.set(local, kept);
  for (const zone of zones) if (zone.zone !== local) shares.set(zone.zone, ((1 - kept) * zone.healthy) / healthyElsewhere);
  return { mode: 'spill', shares };
}
