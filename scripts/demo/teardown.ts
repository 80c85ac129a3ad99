// What the demo started, stopped exactly once: at the end, after a failure, or after a
// signal. Each thing is registered the moment it exists, so a failure half-way stops
// exactly what was started. Things stop by stage (the load before the pool, the pool
// before the backends it calls, etcd last), newest first within a stage. A synchronous fallback per thing
// runs on process exit if its orderly stop never finished (a second Ctrl-C exits at
// once), so even then no process and no data directory is left behind.

export interface StopResult {
  name: string;
  error?: Error;
}

interface Entry {
  name: string;
  stage: number;
  stop: () => Promise<void>;
  fallback: (() => void) | undefined;
  done: boolean;
}

export class Teardown {
  readonly #entries: Entry[] = [];
  #running: Promise<StopResult[]> | undefined;
  readonly #onExit = (): void => {
    for (const entry of this.#entries) {
      if (entry.done || entry.fallback === undefined) continue;
      try {
        entry.fallback();
      } catch {
        // the process is exiting; the other fallbacks still need to run
      }
    }
  };

  constructor() {
    process.on('exit', this.#onExit);
  }

  /** `stage`: lower stages stop first. `fallback`: synchronous, for process exit. */
  add(name: string, stage: number, stop: () => Promise<void>, fallback?: () => void): void {
    this.#entries.push({ name, stage, stop, fallback, done: false });
  }

  /** Stops everything in stage order; a failing stop does not keep the others from running. */
  run(): Promise<StopResult[]> {
    this.#running ??= (async () => {
      const results: StopResult[] = [];
      const order = [...this.#entries].reverse().sort((a, b) => a.stage - b.stage); // stable: newest first within a stage
      for (const entry of order) {
        try {
          await entry.stop();
          entry.done = true;
          results.push({ name: entry.name });
        } catch (err) {
          results.push({ name: entry.name, error: err instanceof Error ? err : new Error(String(err)) });
        }
      }
      process.off('exit', this.#onExit);
      return results;
    })();
    return this.#running;
  }
}
