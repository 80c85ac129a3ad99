// A lease probe for the propagation scenario: a tight acquire/release loop that notes
// when leases land on one address. It measures what a busy client sees — the first and
// the last moment the pool hands out a lease on that backend — rather than the pool's
// internal events.
//
// One turn per event-loop iteration (setImmediate), so etcd's watch traffic and the
// anchors' socket events are processed between turns; each turn takes and returns a few
// leases, enough for the round robin to visit every eligible anchor at least once. The
// resolution is one turn: microseconds while the process is otherwise idle.
import type { AnchorPool } from '../../lib/index.js';

export class LeaseProbe {
  /** performance.now() of the first lease on the address since the probe started. */
  firstAt: number | undefined;
  /** performance.now() of the latest lease on the address. */
  lastAt: number | undefined;
  turns = 0;
  /** Resolves with firstAt once a lease has landed on the address. */
  readonly first: Promise<number>;
  readonly #pool: AnchorPool;
  readonly #address: string;
  readonly #picksPerTurn: number;
  #running = true;
  #onFirst!: (at: number) => void;
  #stopped: Promise<void>;
  #onStopped!: () => void;

  constructor(pool: AnchorPool, address: string, picksPerTurn: number) {
    this.#pool = pool;
    this.#address = address;
    this.#picksPerTurn = picksPerTurn;
    this.first = new Promise((resolve) => (this.#onFirst = resolve));
    this.#stopped = new Promise((resolve) => (this.#onStopped = resolve));
    setImmediate(() => this.#turn());
  }

  /** Ends the loop after the current turn; resolves once no turn will run again. */
  stop(): Promise<void> {
    this.#running = false;
    return this.#stopped;
  }

  #turn(): void {
    if (!this.#running) {
      this.#onStopped();
      return;
    }
    for (let i = 0; i < this.#picksPerTurn; i++) {
      // tryAcquire, not acquire: a probe that waited would block the loop on the
      // pool's waiter queue instead of noticing that nothing is eligible.
      const lease = this.#pool.tryAcquire();
      if (lease === undefined) break;
      if (lease.address === this.#address) {
        const at = performance.now();
        if (this.firstAt === undefined) {
          this.firstAt = at;
          this.#onFirst(at);
        }
        this.lastAt = at;
      }
      lease.release();
    }
    this.turns += 1;
    setImmediate(() => this.#turn());
  }
}
