/**
 * The round-robin schedule: one cycle listing every anchor once, with each entry's
 * anchors spread evenly across the cycle. Slot j of an entry with N anchors sits at
 * virtual time (j + 0.5) / N; sorting all slots by that time (ties by entry order)
 * interleaves entries in proportion to N: a(2), b(1) gives a b a, so consecutive
 * picks go to different addresses whenever the weights allow. Pure; built in
 * O(S log S) for S anchors, only when the set of anchors changes.
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
    entry.anchors.forEach((anchor, j) => slots.push({ time: (j + 0.5) / n, order, anchor }));
  });
  slots.sort((x, y) => x.time - y.time || x.order - y.order);
  return slots.map((slot) => slot.anchor);
}
