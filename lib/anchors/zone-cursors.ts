/**
 * ZoneCursors: the schedule split by zone, for a caller that names its own zone. Each
 * zone group (a zone; the caller's own also holds the keys without a zone) has its own
 * round-robin schedule and cursor (schedule.ts, schedule-cursor.ts), so shares by N hold
 * inside a zone. A pick first draws a zone by the shares of zone-shares.ts, then picks in
 * it; a zone with nothing eligible (every anchor at its stream cap) passes the pick on to
 * the next zone that has a share, largest share first.
 */
import { buildSchedule, type ScheduleEntry } from './schedule.js';
import { ScheduleCursor, type Pickable } from './schedule-cursor.js';
import type { ZoneShares } from './zone-shares.js';

export interface ZonedEntry<S> extends ScheduleEntry<S> {
  /** The zone group the key is picked in. */
  readonly group: string;
}

interface Group<S extends Pickable> {
  readonly zone: string;
  readonly cursor: ScheduleCursor<S>;
  share: number;
}

export class ZoneCursors<S extends Pickable> {
  #groups = new Map<string, Group<S>>();
  /** The group of each key, for eligibility flips. */
  #byKey = new Map<string, Group<S>>();
  /** Groups with a share, largest first. */
  #ranked: Group<S>[] = [];
  #shares: ZoneShares | undefined;

  get eligibleSlots(): number {
    let eligible = 0;
    for (const group of this.#groups.values()) eligible += group.cursor.eligibleSlots;
    return eligible;
  }

  get shares(): ZoneShares | undefined {
    return this.#shares;
  }

  /** Replaces the schedules; a zone that stays keeps its cursor (and its position). */
  setSchedule(entries: readonly ZonedEntry<S>[]): void {
    const byGroup = new Map<string, ZonedEntry<S>[]>();
    for (const entry of entries) {
      const list = byGroup.get(entry.group) ?? [];
      list.push(entry);
      byGroup.set(entry.group, list);
    }
    const groups = new Map<string, Group<S>>();
    this.#byKey = new Map();
    for (const [zone, list] of byGroup) {
      const group = this.#groups.get(zone) ?? { zone, cursor: new ScheduleCursor<S>(), share: 0 };
      group.cursor.setSchedule(buildSchedule(list));
      groups.set(zone, group);
      for (const entry of list) this.#byKey.set(entry.key, group);
    }
    this.#groups = groups;
    if (this.#shares !== undefined) this.setShares(this.#shares);
  }

  eligibilityChanged(key: string, eligible: boolean): void {
    this.#byKey.get(key)?.cursor.eligibilityChanged(eligible);
  }

  /** Takes new shares; returns whether any zone's share changed. */
  setShares(shares: ZoneShares): boolean {
    this.#shares = shares;
    let changed = false;
    for (const group of this.#groups.values()) {
      const share = shares.shares.get(group.zone) ?? 0;
      if (share !== group.share) changed = true;
      group.share = share;
    }
    this.#ranked = [...this.#groups.values()].filter((g) => g.share > 0).sort((a, b) => b.share - a.share);
    return changed;
  }

  /**
   * Picks with `pickIn` in a zone drawn by the shares, then in the other zones with a
   * share (largest first) while none is found. Returns the pick and its zone.
   */
  pick(pickIn: (cursor: ScheduleCursor<S>) => S | undefined, random: () => number = Math.random): { slot: S; zone: string } | undefined {
    const ranked = this.#ranked;
    if (ranked.length === 0) return undefined;
    let drawn = ranked[0]!;
    if (ranked.length > 1) {
      let r = random();
      for (const group of ranked) {
        drawn = group;
        r -= group.share;
        if (r < 0) break;
      }
    }
    const slot = pickIn(drawn.cursor);
    if (slot !== undefined) return { slot, zone: drawn.zone };
    for (const group of ranked) {
      if (group === drawn) continue;
      const other = pickIn(group.cursor);
      if (other !== undefined) return { slot: other, zone: group.zone };
    }
    return undefined;
  }
}
