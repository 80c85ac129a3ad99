/**
 * The round-robin schedule: one cycle listing every anchor once, with each entry's
 * anchors spread evenly across the cycle. Slot j of entry e (N anchors, position p among
 * E entries) sits at virtual time (j + (p + 0.5) / E) / N; sorting all slots by that
 * time interleaves entries in proportion to N, and the per-entry phase keeps entries of
 * equal weight from landing on the same instant (a(4), b(1), c(1) gives a a b a a c,
 * not a a b c a a). So consecutive picks go to different addresses whenever the weights
 * allow. Pure; built in O(S log S) for S anchors, only when the set of anchors changes.
 */

export interface ScheduleEntry<A> {
  readonly key: string;
  /** The entry's anchors in index order. */
  readonly anchors: readonly A[];
}

export function buildSchedule<A>(entries: readonly ScheduleEntry<A>[]): A[] {
  const slots: { time: number; order: number; anchor: A }[] = [];
  entries.forEach((entry, order) => {
    const n = entry.anchors.length;
    const phase = (order + 0.5) / entries.length;
    entry.anchors.forEach((anchor, j) => slots.push({ time: (j + phase) / n, order, anchor }));
  });
  slots.sort((x, y) => x.time - y.time || x.order - y.order);
  return slots.map((slot) => slot.anchor);
}
