/**
 * ScheduleCursor: round robin over the schedule (see schedule.ts), skipping anchors that
 * are not eligible (not READY, draining, or at the stream cap). It keeps a count of
 * eligible anchors, so "nothing available" is answered in O(1) and a pick scans on
 * average S / eligible slots: O(1) while most anchors can take leases.
 * The schedule is replaced whole when the set of anchors changes; eligibility flips
 * arrive through eligibilityChanged() and cost O(1).
 *
 * pickBest() is the other pick: the power of k choices (Finagle's p2c, Envoy's
 * least_request and its choice_count). k distinct eligible slots drawn at random, the one
 * of lowest cost wins (ties: the first drawn): for 'least-loaded' two, by streams in
 * flight; for 'peak-ewma' three, by latency × (streams + 1). Drawn without replacement, as
 * Finagle does: with two anchors, a slow one can never win a draw against itself. Every
 * anchor is one slot, equally likely to be drawn and (when costs are even) to win, so a
 * key's share follows its N, as with round robin.
 *
 * Why three for peak-ewma: a backend with 2 of 6 anchors that is slow wins a draw of two
 * whenever both are its own (1 in 15 draws); a draw of three always holds a faster one.
 * Drawing the second from another key instead would split shares by key, not by N, as
 * soon as costs differ by noise.
 *
 * Both picks take an optional admission gate (slow start, slow-start.ts): a slot the gate
 * turns down is passed over for this pick. A pick that finds no admitted slot takes an
 * eligible one anyway: the gate shapes shares, it never leaves a call without an anchor.
 */
export interface Pickable {
  /** The key whose anchor (or lane of anchors) this is. */
  readonly key: string;
  readonly eligible: boolean;
  /** Streams (leases, calls) in flight on it now. */
  readonly streams: number;
}

/** Random draws before a two-choice pick falls back to a scan (few eligible or admitted slots). */
const DRAWS = 4;

/** Whether a slot may take this pick (slow start); it may count the visit (a round-robin credit). */
export type Admit<A> = (slot: A) => boolean;

const streamsOf = (slot: Pickable): number => slot.streams;

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
  pickLeastLoaded(random: () => number = Math.random, admit?: Admit<A>): A | undefined {
    return this.pickBest(streamsOf, 2, random, admit);
  }

  /**
   * Of `choices` distinct eligible (and admitted) slots drawn at random, the one of lowest
   * cost, ties to the first drawn; fewer when fewer are eligible; undefined when none is.
   */
  pickBest(cost: (slot: A) => number, choices: number, random: () => number = Math.random, admit?: Admit<A>): A | undefined {
    if (this.#eligible <= 1) return this.pick(admit);
    const drawn: number[] = [];
    let best: A | undefined;
    let bestCost = Infinity;
    for (let c = Math.min(choices, this.#eligible); c > 0; c--) {
      const i = this.#draw(random, drawn, admit);
      if (i === -1) break;
      drawn.push(i);
      const slot = this.#slots[i]!;
      const value = cost(slot);
      if (best === undefined || value < bestCost) {
        best = slot;
        bestCost = value;
      }
    }
    return best;
  }

  /**
   * The index of a random eligible, admitted slot not in `taken`; after DRAWS misses (most
   * slots ineligible or turned down), the next eligible one after the last miss; -1 when
   * every eligible slot is taken.
   */
  #draw(random: () => number, taken: readonly number[], admit: Admit<A> | undefined): number {
    const n = this.#slots.length;
    const other = taken.length === 1 ? taken[0]! : -1;
    let i = 0;
    for (let tries = 0; tries < DRAWS; tries++) {
      // Uniform over the n slots; with one taken, uniform over the n - 1 others (no try lost).
      i = other === -1 ? Math.floor(random() * n) : Math.floor(random() * (n - 1));
      if (other !== -1 && i >= other) i += 1;
      const slot = this.#slots[i]!;
      if (slot.eligible && !taken.includes(i) && (admit === undefined || admit(slot))) return i;
    }
    for (let scanned = 0; scanned < n; scanned++, i = i + 1 === n ? 0 : i + 1) {
      if (this.#slots[i]!.eligible && !taken.includes(i)) return i;
    }
    return -1;
  }

  /**
   * The next eligible anchor in round-robin order, or undefined when none is. With a
   * gate, the next one it admits; if a whole cycle admits none, the first eligible one.
   */
  pick(admit?: Admit<A>): A | undefined {
    if (this.#eligible === 0) return undefined;
    const slots = this.#slots;
    const n = slots.length;
    let i = this.#cursor;
    let fallback = -1;
    for (let scanned = 0; scanned < n; scanned++) {
      const slot = slots[i]!;
      const at = i;
      i = i + 1 === n ? 0 : i + 1;
      if (!slot.eligible) continue;
      if (admit === undefined || admit(slot)) {
        this.#cursor = i;
        return slot;
      }
      if (fallback === -1) fallback = at;
    }
    if (fallback === -1) return undefined;
    this.#cursor = fallback + 1 === n ? 0 : fallback + 1;
    return slots[fallback];
  }
}
