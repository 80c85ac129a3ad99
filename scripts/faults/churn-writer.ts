// A steady stream of puts and deletes on a set of keys, as operators and autoscalers
// produce it: about `opsPerSecond`, 70% puts (text form `addr#N`, N from 1 to maxAnchors)
// and 30% deletes, from a seeded generator so every run writes the same sequence. Each
// write has a short deadline, so one stuck on a killed member fails fast and the churn
// goes on; etcd itself stays the truth the scenarios compare with.
import type { Etcd3 } from 'etcd3';
import type { ViewLag } from './view-lag.js';

export interface ChurnOptions {
  readonly prefix: string;
  readonly keys: number;
  readonly opsPerSecond: number;
  /** Backend addresses the values point at. */
  readonly addresses: readonly string[];
  readonly maxAnchors: number;
  readonly seed: number;
  /** Told about every acknowledged write. */
  readonly lag?: ViewLag;
}

/** mulberry32: small, fast, and the same sequence for the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class ChurnWriter {
  ops = 0;
  failures = 0;
  readonly #client: Etcd3;
  readonly #options: ChurnOptions;
  readonly #random: () => number;
  #running: Promise<void> | undefined;
  #stopping = false;

  constructor(client: Etcd3, options: ChurnOptions) {
    this.#client = client;
    this.#options = options;
    this.#random = seededRandom(options.seed);
  }

  /** The next value the generator picks: `addr#N`. */
  nextValue(): string {
    const { addresses, maxAnchors } = this.#options;
    const addr = addresses[Math.floor(this.#random() * addresses.length)]!;
    return `${addr}#${1 + Math.floor(this.#random() * maxAnchors)}`;
  }

  /** Puts about 70% of the keys (the churn's steady state), so a run starts where it will stay. */
  async prefill(): Promise<number> {
    const { prefix, keys } = this.#options;
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < keys; i++) {
      if (this.#random() < 0.7) writes.push(this.#client.put(`${prefix}k${i}`).value(this.nextValue()).exec());
    }
    await Promise.all(writes);
    return writes.length;
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#running;
  }

  async #loop(): Promise<void> {
    const { prefix, keys, opsPerSecond, lag } = this.#options;
    const interval = 1000 / opsPerSecond;
    const startedAt = Date.now();
    while (!this.#stopping) {
      const key = `${prefix}k${Math.floor(this.#random() * keys)}`;
      const put = this.#random() < 0.7;
      const value = put ? this.nextValue() : undefined;
      try {
        const options = { deadline: Date.now() + 500 };
        if (value !== undefined) await this.#client.put(key).value(value).options(options);
        else await this.#client.delete().key(key).options(options);
        this.ops += 1;
        lag?.acked(key, value);
      } catch {
        this.failures += 1;
        lag?.forget(key);
      }
      // Paced against the start, so slow writes during a kill do not lower the rate after it.
      const due = startedAt + (this.ops + this.failures) * interval;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
    }
  }
}
