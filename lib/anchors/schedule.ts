/**
 * The round-robin schedule: one cycle of S picks listing every anchor once, each entry
 * spread evenly, built by "earliest eligible deadline first" over the entries' weights
 * (N = their anchor counts, W = ΣN). Pick k happens at virtual time k/W. An entry's j-th
 * pick becomes eligible at j/N and is due by (j+1)/N; each pick takes the eligible entry
 * that is due first. No entry ever gets ahead of its share by a whole pick, so an entry
 * is never picked twice in a row while others are behind: a(2), b(1) gives a b a, and
 * consecutive leases go to different addresses whenever the weights allow.
 * Exact integer arithmetic; O(S log E) for E entries; rebuilt only when anchors change.
 */
import { MinHeap } from '../core/min-heap.js';

export interface ScheduleEntry<A> {
  readonly key: string;
  /** The entry's anchors in index order. */
  readonly anchors: readonly A[];
}

interface Cursor<A> {
  readonly order: number;
  readonly weight: number;
  readonly anchors: readonly A[];
  /** How many of its picks are placed so far. */
  next: number;
}

export function buildSchedule<A>(entries: readonly ScheduleEntry<A>[]): A[] {
  const total = entries.reduce((sum, e) => sum + e.anchors.length, 0);
  // next/weight compared as fractions by cross-multiplying; ties go to the earlier entry.
  const byEligible = new MinHeap<Cursor<A>>((a, b) => a.next * b.weight - b.next * a.weight || a.order - b.order);
  const byDeadline = new MinHeap<Cursor<A>>((a, b) => (a.next + 1) * b.weight - (b.next + 1) * a.weight || a.order - b.order);
  entries.forEach((entry, order) => {
    if (entry.anchors.length > 0) byEligible.push({ order, weight: entry.anchors.length, anchors: entry.anchors, next: 0 });
  });
  const cycle: A[] = [];
  for (let k = 0; k < total; k++) {
    // Eligible: next/weight <= k/total.
    for (let c = byEligible.peek(); c !== undefined && c.next * total <= k * c.weight; c = byEligible.peek()) {
      byDeadline.push(byEligible.pop()!);
    }
    const cursor = byDeadline.pop() ?? byEligible.pop()!; // the fallback never runs: some entry is always eligible
    cycle.push(cursor.anchors[cursor.next]!);
    cursor.next += 1;
    if (cursor.next < cursor.weight) byEligible.push(cursor);
  }
  return cycle;
}
