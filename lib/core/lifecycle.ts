/**
 * Lifecycle: open → closing → finished, the one implementation shared by the pool, the
 * endpoint sources and a registration.
 *
 *   - close() is idempotent: every call returns the same promise, which settles only
 *     when the owner's shutdown has finished (a second close() never resolves early).
 *   - Everything pending that close() must settle (acquire and ready() waiters, timers
 *     that keep a caller waiting) is held here with hold(); close() runs their settle
 *     functions first, synchronously, before any shutdown work starts. A wait with a
 *     timeout and an AbortSignal is held through deadlineWait() (deadline-wait.ts).
 *   - A settle function runs at most once, and never after it was released.
 */

type LifecycleState = 'open' | 'closing' | 'finished';

export class Lifecycle {
  #state: LifecycleState = 'open';
  #closing: Promise<void> | undefined;
  readonly #held = new Set<() => void>();

  /** close() has been called (it may still be running). */
  get closing(): boolean {
    return this.#state !== 'open';
  }

  /** close() has finished (its shutdown ran to the end). */
  get finished(): boolean {
    return this.#state === 'finished';
  }

  /**
   * Holds something close() must settle. `settle` is called once when close() begins,
   * unless the returned release function was called first. Holding on a lifecycle that
   * is already closing settles at once (synchronously).
   */
  hold(settle: () => void): () => void {
    if (this.#state !== 'open') {
      settle();
      return () => undefined;
    }
    const entry = (): void => settle();
    this.#held.add(entry);
    return () => {
      this.#held.delete(entry);
    };
  }

  /** Runs `shutdown` once; every call returns the promise of that one run. */
  close(shutdown: () => Promise<void>): Promise<void> {
    this.#closing ??= this.#run(shutdown);
    return this.#closing;
  }

  async #run(shutdown: () => Promise<void>): Promise<void> {
    this.#state = 'closing';
    const held = [...this.#held];
    this.#held.clear();
    for (const settle of held) settle();
    try {
      await shutdown();
    } finally {
      this.#state = 'finished';
    }
  }
}
