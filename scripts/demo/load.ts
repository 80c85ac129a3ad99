// The demo's load: a number of loops, each making real Echo calls back to back, one
// lease per call (pool.use → lease.client(EchoClient)). A call's error is thrown out of
// pool.use(), which makes it the lease's outcome for outlier ejection. It counts calls,
// errors (by the backend address that failed them), and the calls served through each
// anchor, exactly, for the summary at the end.
import { setTimeout as sleep } from 'node:timers/promises';
import type { AnchorPool } from '../../lib/index.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';

export interface AnchorCalls {
  key: string;
  anchor: number;
  address: string;
  calls: number;
}

const CALL_DEADLINE_MILLIS = 2000;
/** After a failed call, so that a backend that is down does not turn a loop into a spin. */
const ERROR_PAUSE_MILLIS = 100;

export class Load {
  calls = 0;
  errors = 0;
  lastError: string | undefined;
  readonly loops: number;
  readonly #perAnchor = new Map<string, AnchorCalls>();
  readonly #errorsByAddress = new Map<string, number>();
  readonly #pool: AnchorPool;
  readonly #running: Promise<void>[];
  #stopped = false;

  constructor(pool: AnchorPool, loops: number) {
    this.#pool = pool;
    this.loops = loops;
    this.#running = Array.from({ length: loops }, () => this.#loop());
  }

  /** Calls served per anchor (key#index at an address), in key and index order. */
  perAnchor(): AnchorCalls[] {
    return [...this.#perAnchor.values()].sort((a, b) => (a.key === b.key ? a.anchor - b.anchor || (a.address < b.address ? -1 : 1) : a.key < b.key ? -1 : 1));
  }

  /** Calls that failed on a lease at `address` (not counted: errors before a lease, such as an acquire timeout). */
  errorsOn(address: string): number {
    return this.#errorsByAddress.get(address) ?? 0;
  }

  /** Lets every loop finish its current call, then resolves. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#running);
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      let leasedAt: string | undefined;
      try {
        await this.#pool.use(async (lease) => {
          leasedAt = lease.address;
          await callEcho(lease.client(EchoClient), CALL_DEADLINE_MILLIS);
          const id = `${lease.key}#${lease.anchor}@${lease.address}`;
          let entry = this.#perAnchor.get(id);
          if (entry === undefined) {
            entry = { key: lease.key, anchor: lease.anchor, address: lease.address, calls: 0 };
            this.#perAnchor.set(id, entry);
          }
          entry.calls += 1;
        });
        this.calls += 1;
      } catch (err) {
        if (this.#stopped) return;
        this.errors += 1;
        if (leasedAt !== undefined) this.#errorsByAddress.set(leasedAt, this.errorsOn(leasedAt) + 1);
        this.lastError = err instanceof Error ? err.message : String(err);
        await sleep(ERROR_PAUSE_MILLIS);
      }
    }
  }
}
