// The demo's load: a number of loops, each making real Echo calls back to back, one
// lease per call (pool.use → lease.client(EchoClient)). A call's error is thrown out of
// pool.use(), which makes it the lease's outcome for outlier ejection. A burst adds more
// loops for a while, whose calls the server answers only after a delay, so they hold
// their leases. It counts calls, errors (by the backend address that failed them), and
// the calls served through each anchor, exactly, for the summary at the end.
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
  #burstLoops = 0;

  constructor(pool: AnchorPool, loops: number) {
    this.#pool = pool;
    this.loops = loops;
    this.#running = Array.from({ length: loops }, () => this.#loop('ping', () => this.#stopped));
  }

  /** Loops of a burst running now (besides the `loops`). */
  get burstLoops(): number {
    return this.#burstLoops;
  }

  /**
   * Starts `loops` more loops whose calls the server answers after `serverMillis` (Echo's
   * "sleep:<ms>"); the returned stop() lets each finish its current call, then resolves.
   */
  burst(loops: number, serverMillis: number): { stop(): Promise<void> } {
    let over = false;
    this.#burstLoops += loops;
    const running = Array.from({ length: loops }, () => this.#loop(`sleep:${serverMillis}`, () => over || this.#stopped));
    // stop() of the whole load waits for these too.
    this.#running.push(...running);
    return {
      stop: async () => {
        if (over) return;
        over = true;
        await Promise.all(running);
        this.#burstLoops -= loops;
      },
    };
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

  async #loop(request: string, stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      let leasedAt: string | undefined;
      try {
        await this.#pool.use(async (lease) => {
          leasedAt = lease.address;
          await callEcho(lease.client(EchoClient), CALL_DEADLINE_MILLIS, request);
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
        // Stopping a burst lets its calls finish, so their errors still count; stopping the load closes the pool under them.
        if (this.#stopped) return;
        this.errors += 1;
        if (leasedAt !== undefined) this.#errorsByAddress.set(leasedAt, this.errorsOn(leasedAt) + 1);
        this.lastError = err instanceof Error ? err.message : String(err);
        await sleep(ERROR_PAUSE_MILLIS);
      }
    }
  }
}
