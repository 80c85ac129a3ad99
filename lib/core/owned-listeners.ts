/**
 * One user's listeners in a set many users of a shared thing fill: each user can take
 * back its own, all at once when it lets go, without touching the others'.
 */
export class OwnedListeners<L> {
  readonly #all: Set<L>;
  readonly #own = new Set<L>();

  constructor(all: Set<L>) {
    this.#all = all;
  }

  /** This user's listeners (to leave out when it is the one that caused an event). */
  get own(): ReadonlySet<L> {
    return this.#own;
  }

  /** Adds `listener`; returns its removal. */
  add(listener: L): () => void {
    this.#all.add(listener);
    this.#own.add(listener);
    return () => {
      this.#all.delete(listener);
      this.#own.delete(listener);
    };
  }

  /** Removes every listener this user added. */
  clear(): void {
    for (const listener of this.#own) this.#all.delete(listener);
    this.#own.clear();
  }
}
