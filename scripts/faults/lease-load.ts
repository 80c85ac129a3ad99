// Leases flowing while a fault happens: `loops` callers each acquire a lease, make one
// Echo call on its channel, and release it, until stopped. Every acquire and call outcome
// is counted, so a scenario can say "100% of acquires succeeded".
import { type AnchorPool, isAnchorPoolError } from '../../lib/index.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';

export interface LoadCounts {
  acquired: number;
  acquireFailures: number;
  /** Codes of the failed acquires (e.g. ANCHORPOOL_ACQUIRE_TIMEOUT), with counts. */
  acquireErrors: Record<string, number>;
  calls: number;
  callFailures: number;
}

export class LeaseLoad {
  readonly counts: LoadCounts = { acquired: 0, acquireFailures: 0, acquireErrors: {}, calls: 0, callFailures: 0 };
  readonly #pool: AnchorPool;
  readonly #loops: Promise<void>[] = [];
  #stopping = false;

  constructor(pool: AnchorPool, loops: number, options: { acquireTimeoutMillis?: number; callDeadlineMillis?: number } = {}) {
    this.#pool = pool;
    for (let i = 0; i < loops; i++) this.#loops.push(this.#loop(options.acquireTimeoutMillis ?? 1000, options.callDeadlineMillis ?? 2000));
  }

  /** Counts since the last reset, then starts counting afresh. */
  take(): LoadCounts {
    const taken = { ...this.counts, acquireErrors: { ...this.counts.acquireErrors } };
    Object.assign(this.counts, { acquired: 0, acquireFailures: 0, acquireErrors: {}, calls: 0, callFailures: 0 });
    return taken;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#loops);
  }

  async #loop(acquireTimeoutMillis: number, callDeadlineMillis: number): Promise<void> {
    while (!this.#stopping) {
      let lease;
      try {
        lease = await this.#pool.acquire({ timeoutMillis: acquireTimeoutMillis });
        this.counts.acquired += 1;
      } catch (err) {
        this.counts.acquireFailures += 1;
        const code = isAnchorPoolError(err) ? err.code : 'untyped';
        this.counts.acquireErrors[code] = (this.counts.acquireErrors[code] ?? 0) + 1;
        if (this.#pool.closed) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      try {
        await callEcho(lease.client(EchoClient), callDeadlineMillis);
        this.counts.calls += 1;
      } catch {
        this.counts.callFailures += 1;
      } finally {
        lease[Symbol.dispose](); // a no-op once the pool has shut down
      }
    }
  }
}

export const percent = (part: number, whole: number): string => (whole === 0 ? 'n/a' : `${((100 * part) / whole).toFixed(part === whole ? 0 : 2)}%`);
