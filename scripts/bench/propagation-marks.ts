// Named timestamps for one propagation trial: listeners (pool events, the etcd3
// watcher) mark the first time something happens, and the trial awaits the marks it
// needs. Only the first mark of a name counts until reset(), so a late duplicate event
// never moves a figure.

export class Marks {
  readonly #times = new Map<string, number>();
  readonly #waiting = new Map<string, ((at: number) => void)[]>();

  /** Records performance.now() under `name`, unless it is already marked. */
  mark(name: string): void {
    if (this.#times.has(name)) return;
    const at = performance.now();
    this.#times.set(name, at);
    for (const resolve of this.#waiting.get(name) ?? []) resolve(at);
    this.#waiting.delete(name);
  }

  get(name: string): number | undefined {
    return this.#times.get(name);
  }

  /** Resolves with the mark's time, at once if it is already set. */
  wait(name: string): Promise<number> {
    const at = this.#times.get(name);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve) => this.#waiting.set(name, [...(this.#waiting.get(name) ?? []), resolve]));
  }

  /** Forgets every mark; pending waits stay and resolve on the next mark of their name. */
  reset(): void {
    this.#times.clear();
  }
}
