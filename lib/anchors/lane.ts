/**
 * Lane: one place in the round-robin schedule shared by several anchors of one key. A key
 * that may grow past its N (`maxAnchors`) gets N lanes instead of N anchors in the
 * schedule, and every anchor of the key — the N it asks for and the extra ones opened for
 * capacity — rides in one of them (anchor i in lane i mod N). The schedule still gives the
 * key N places per cycle, so its share of the leases follows its configured N however
 * many connections it has opened: growth adds capacity, not share.
 *
 * A lane is eligible while any of its anchors is; a pick takes the anchor with the fewest
 * leases among the eligible ones (the extra anchors exist because the others are full).
 */
import type { Anchor } from './anchor.js';

export class Lane<A extends Anchor> {
  readonly key: string;
  readonly #anchors: A[] = [];
  #eligible = 0;

  constructor(key: string) {
    this.key = key;
  }

  get eligible(): boolean {
    return this.#eligible > 0;
  }

  /** Streams in use on all its anchors (for a least-loaded pick between lanes). */
  get streams(): number {
    let streams = 0;
    for (const anchor of this.#anchors) streams += anchor.streams;
    return streams;
  }

  anchors(): readonly A[] {
    return this.#anchors;
  }

  /** Adds an anchor; returns whether the lane became eligible. */
  add(anchor: A): boolean {
    this.#anchors.push(anchor);
    if (!anchor.eligible) return false;
    this.#eligible += 1;
    return this.#eligible === 1;
  }

  /** Removes an anchor; returns whether the lane stopped being eligible. */
  remove(anchor: A): boolean {
    const at = this.#anchors.indexOf(anchor);
    if (at === -1) return false;
    this.#anchors.splice(at, 1);
    if (!anchor.eligible) return false;
    this.#eligible -= 1;
    return this.#eligible === 0;
  }

  /** Puts `fresh` where `old` was (a refresh); returns the change of the lane's eligibility: +1, -1 or 0. */
  replace(old: A, fresh: A): number {
    const at = this.#anchors.indexOf(old);
    if (at === -1) return 0;
    const before = this.eligible;
    this.#anchors[at] = fresh;
    this.#eligible += (fresh.eligible ? 1 : 0) - (old.eligible ? 1 : 0);
    return before === this.eligible ? 0 : this.eligible ? 1 : -1;
  }

  /** One of its anchors' eligibility flipped; returns the change of the lane's: +1, -1 or 0. */
  eligibilityChanged(eligible: boolean): number {
    this.#eligible += eligible ? 1 : -1;
    if (eligible) return this.#eligible === 1 ? 1 : 0;
    return this.#eligible === 0 ? -1 : 0;
  }

  /** The eligible anchor with the fewest leases (or of the lowest cost, given one), or undefined. */
  pick(cost?: (anchor: A) => number): A | undefined {
    let best: A | undefined;
    let bestCost = Infinity;
    for (const anchor of this.#anchors) {
      if (!anchor.eligible) continue;
      const c = cost === undefined ? anchor.streams : cost(anchor);
      if (best === undefined || c < bestCost) {
        best = anchor;
        bestCost = c;
      }
    }
    return best;
  }

  /** The cost of the anchor pick(cost) would take (for a two-choice pick between lanes); Infinity when none is eligible. */
  cost(cost: (anchor: A) => number): number {
    let least = Infinity;
    for (const anchor of this.#anchors) if (anchor.eligible) least = Math.min(least, cost(anchor));
    return least;
  }
}
