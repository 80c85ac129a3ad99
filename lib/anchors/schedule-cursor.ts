/**
 * ScheduleCursor: round robin over the schedule (see schedule.ts), skipping anchors that
 * are not eligible (not READY, draining, or at the stream cap). It keeps a count of
 * eligible anchors, so "nothing available" is answered in O(1) and a pick scans on
 * average S / eligible slots: O(1) while most anchors can take leases.
 * The schedule is replaced whole when the set of anchors changes; eligibility flips
 * arrive through eligibilityChanged() and cost O(1).
 *
 * pickOfTwo() is the other pick: the power of two choices (Finagle's p2c, Envoy's
 * least_request with choice_count 2). Two distinct eligible slots drawn at random, the
 * one of lower cost wins (ties: the first drawn): fewer streams in flight for
 * 'least-loaded', latency × (streams + 1) for 'peak-ewma'. Drawn without replacement, as
 * Finagle does: with two anchors, a slow one can never win a draw against itself. Every
 * anchor is one slot of the schedule, so when costs are even a key is drawn in
 * proportion to its N: its share follows N, as with round robin.
 *
 * With `distinctKeys` (the peak-ewma pick) the second slot is drawn among the other keys'
 * slots first (DRAWS tries; then any other slot, so one key with many anchors still
 * compares them; a third of the slots on one key falls back once in ~20,000 draws): two
 * anchors of one backend tell little apart, and with two anchors per backend
 * a slow backend would otherwise win every draw that lands on it twice (1 in 15 of the
 * draws over three backends). The first slot is drawn by N and a tie goes to it, so even
 * costs still give each key its share by N.
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
  /** Distinct keys in the schedule: with one, a draw for another key cannot succeed. */
  #keys = 0;

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
    this.#keys = new Set(slots.map((slot) => slot.key)).size;
  }

  /** Called by the owner when a scheduled anchor's eligibility flips. */
  eligibilityChanged(eligible: boolean): void {
    this.#eligible += eligible ? 1 : -1;
  }

  /** Of two eligible anchors drawn at random, the one with fewer leases; undefined when none is eligible. */
  pickLeastLoaded(random: () => number = Math.random, admit?: Admit<A>): A | undefined {
    return this.pickOfTwo(streamsOf, random, admit);
  }

  /** Of two eligible (and admitted) slots drawn at random, the one of lower cost; undefined when none is eligible. */
  pickOfTwo(cost: (slot: A) => number, random: () => number = Math.random, admit?: Admit<A>, distinctKeys = false): A | undefined {
    if (this.#eligible <= 1) return this.pick(admit);
    const first = this.#draw(random, -1, admit);
    const a = this.#slots[first]!;
    const otherKey = distinctKeys && this.#keys > 1 ? this.#drawOtherKey(random, a.key, admit) : -1;
    const b = this.#slots[otherKey === -1 ? this.#draw(random, first, admit) : otherKey]!;
    return cost(b) < cost(a) ? b : a;
  }

  /** A random eligible, admitted slot of another key than `key`; -1 after 2 × DRAWS misses (one key, or few eligible elsewhere). */
  #drawOtherKey(random: () => number, key: string, admit: Admit<A> | undefined): number {
    const n = this.#slots.length;
    for (let tries = 0; tries < 2 * DRAWS; tries++) {
      const i = Math.floor(random() * n);
      const slot = this.#slots[i]!;
      if (slot.eligible && slot.key !== key && (admit === undefined || admit(slot))) return i;
    }
    return -1;
  }

  /**
   * The index of a random eligible, admitted slot other than `other`; after DRAWS misses
   * (most slots ineligible or turned down), the next eligible one after the last miss. At
   * least two slots are eligible.
   */
  #draw(random: () => number, other: number, admit: Admit<A> | undefined): number {
    const n = this.#slots.length;
    let i = 0;
    for (let tries = 0; tries < DRAWS; tries++) {
      // Uniform over the n slots, or over the n - 1 slots other than `other`.
      i = other === -1 ? Math.floor(random() * n) : Math.floor(random() * (n - 1));
      if (other !== -1 && i >= other) i += 1;
      const slot = this.#slots[i]!;
      if (slot.eligible && (admit === undefined || admit(slot))) return i;
    }
    for (let scanned = 0; scanned < n; scanned++, i = i + 1 === n ? 0 : i + 1) {
      if (i !== other && this.#slots[i]!.eligible) return i;
    }
    return other; // unreachable: two slots are eligible
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
