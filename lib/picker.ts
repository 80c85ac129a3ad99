/**
 * The picker: round robin over the schedule (see schedule.ts), skipping anchors that
 * are not eligible (not READY, draining, or at the lease cap). It keeps a count of
 * eligible anchors, so "nothing available" is answered in O(1) and a pick scans on
 * average S / eligible slots: O(1) while most anchors can take leases.
 * The schedule is replaced whole when the set of anchors changes; eligibility flips
 * arrive through eligibilityChanged() and cost O(1).
 */

export interface Pickable {
  readonly eligible: boolean;
}

export class Picker<A extends Pickable> {
  #slots: A[] = [];
  #cursor = 0;
  #eligible = 0;

  get eligibleCount(): number {
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
