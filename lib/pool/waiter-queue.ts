/**
 * Callers waiting for a lease, served by priority (higher first), FIFO within a
 * priority. A waiter that gives up (timeout, abort) is removed in O(1): the caller
 * marks it inactive and calls remove(); shift() skips inactive entries.
 */

export interface Waiter {
  readonly priority: number;
  /** False once the waiter gave up; it is then skipped. */
  readonly active: boolean;
}

interface Bucket<W> {
  readonly priority: number;
  items: W[];
  head: number;
}

export class WaiterQueue<W extends Waiter> {
  #buckets: Bucket<W>[] = []; // sorted by priority, highest first
  #size = 0;

  /** Waiters still waiting. */
  get size(): number {
    return this.#size;
  }

  push(waiter: W): void {
    let bucket = this.#buckets.find((b) => b.priority === waiter.priority);
    if (bucket === undefined) {
      bucket = { priority: waiter.priority, items: [], head: 0 };
      this.#buckets.push(bucket);
      this.#buckets.sort((a, b) => b.priority - a.priority);
    }
    bucket.items.push(waiter);
    this.#size += 1;
  }

  /** Accounts for a waiter that the caller has just marked inactive. */
  remove(): void {
    this.#size -= 1;
  }

  /** The next active waiter in order, removed from the queue. */
  shift(): W | undefined {
    for (const bucket of this.#buckets) {
      while (bucket.head < bucket.items.length) {
        const waiter = bucket.items[bucket.head]!;
        bucket.head += 1;
        if (waiter.active) {
          this.#size -= 1;
          this.#compact(bucket);
          return waiter;
        }
      }
      this.#compact(bucket);
    }
    return undefined;
  }

  #compact(bucket: Bucket<W>): void {
    if (bucket.head === bucket.items.length) {
      bucket.items = [];
      bucket.head = 0;
    } else if (bucket.head > 1024 && bucket.head * 2 > bucket.items.length) {
      bucket.items = bucket.items.slice(bucket.head);
      bucket.head = 0;
    }
  }
}
