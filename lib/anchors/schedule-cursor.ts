/**
 * ScheduleCursor: round robin over the schedule (see schedule.ts), skipping anchors that
 * are not eligible (not READY, draining, or at the stream cap). It keeps a count of
 * eligible anchors, so "nothing available" is answered in O(1) and a pick scans on
 * average S / eligible slots: O(1) while most anchors can take leases.
 * The schedule is replaced whole when the set of anchors changes; eligibility flips
 * arrive through eligibilityChanged() and cost O(1).
 *
 * pickLeastLoaded() is the other pick: the power of two choices (Finagle's p2c, Envoy's
 * least_request with choice_count 2). Two distinct eligible slots drawn at random, the
 * one with fewer leases (calls) in flight wins (ties: the first drawn). Drawn without
 * replacement, as Finagle does: with two anchors, a slow one can never win a draw against
 * itself. Every anchor is one slot of the schedule, so with
 * even load a key is drawn in proportion to its N: its share follows N, as with round
 * robin; a slow anchor piles up leases and loses the draws.
 */

export interface Pickable {
  readonly eligible: boolean;
  /** Streams (leases, calls) in flight on it now. */
  readonly streams: number;
}

/** Random draws before a least-loaded pick falls back to the round-robin scan (few eligible slots). */
const DRAWS = 4;

export class ScheduleCursor<A extends Pickable> {
  #slots: A[] = [];
  #cursor = 0;
  #eligible = 0;

  get eligibleSlots(): number {
    return this.#eligible;
  }

  /** Replaces the cycle; the cursor keeps its position modulo the new length. */
  setSchedule(slots: A[]): void {
    this.#slots = slots;
    this.#cursor = slots.length === 0 ? 0 : this.#cursor % slots.length;
    let eligible = 0;
    for (const slot of slots) if (slot.eligible) eligible += 1;
    this.#eligible = eligible;
  }

  /** Called by the owner when a scheduled anchor's eligibility flips. */
  eligibilityChanged(eligible: boolean): void {
    this.#eligible += eligible ? 1 : -1;
  }

  /** Of two eligible anchors drawn at random, the one with fewer leases; undefined when none is eligible. */
  pickLeastLoaded(random: () => number = Math.random): A | undefined {
    if (this.#eligible <= 1) return this.pick();
    const first = this.#draw(random, -1);
    const second = this.#draw(random, first);
    const a = this.#slots[first]!;
    const b = this.#slots[second]!;
    return b.streams < a.streams ? b : a;
  }

  /**
   * The index of a random eligible slot other than `other`; after DRAWS misses (most slots
   * ineligible), the next eligible one after the last miss. At least two slots are eligible.
   */
  #draw(random: () => number, other: number): number {
    const n = this.#slots.length;
    let i = 0;
    for (let tries = 0; tries < DRAWS; tries++) {
      // Uniform over the n slots, or over the n - 1 slots other than `other`.
      i = other === -1 ? Math.floor(random() * n) : Math.floor(random() * (n - 1));
      if (other !== -1 && i >= other) i += 1;
      if (this.#slots[i]!.eligible) return i;
    }
    for (let scanned = 0; scanned < n; scanned++, i = i + 1 === n ? 0 : i + 1) {
      if (i !== other && this.#slots[i]!.eligible) return i;
    }
    return other; // unreachable: two slots are eligible
  }

  /** The next eligible anchor in round-robin order, or undefined when none is. */
  pick(): A | undefined {
    if (this.#eligible === 0) return undefined;
    const slots = this.#slots;
    const n = slots.length;
    let i = this.#cursor;
    for (let scanned = 0; scanned < n; scanned++) {
      const slot = slots[i]!;
      i = i + 1 === n ? 0 : i + 1;
      if (slot.eligible) {
        this.#cursor = i;
        return slot;
      }
    }
    return undefined;
  }
}
