// Closed-loop Echo callers on the three ways of calling through anchorpool, counting every
// call and its status code per way: manual leases (acquire → lease.client() → release
// with the outcome), pool.client() (a stub that leases per call), and a plain grpc-js
// client on etcd:/// (the anchored_round_robin policy). The restart, health and ejection
// scenarios run all three at once against the same backends, so each sees the same
// GOAWAYs, shutdowns and status flips. Every call's start and the backend that answered
// it are kept, so a scenario can tell when a backend left the rotation and came back.
import * as grpc from '@grpc/grpc-js';
import { type AnchorPool, isNeverSent } from '../../lib/index.js';
import { callEcho, EchoClient } from '../../testkit/echo/echo-service.js';

export type CallPath = 'lease.client()' | 'pool.client()' | 'etcd:///';

export interface PathTally {
  readonly path: CallPath;
  calls: number;
  /** Failed calls by status code name. */
  readonly failed: Map<string, number>;
  /** The first few failure messages, for the log. */
  readonly examples: string[];
  /** Manual leases: calls that failed before they left the client and were run again on a new lease, as the README shows. */
  retriedNeverSent: number;
  /** Start (performance.now(); for manual leases, when the lease was granted) and answering backend of every successful call. */
  readonly served: { readonly at: number; readonly server: string }[];
  /** Start of every failed call, on the same clock. */
  readonly failedAt: number[];
}

const CALL_DEADLINE_MILLIS = 3000;

export function failedCount(tally: PathTally): number {
  let n = 0;
  for (const count of tally.failed.values()) n += count;
  return n;
}

export function describeFailures(tally: PathTally): string {
  const failed = tally.failed.size === 0 ? '0' : [...tally.failed].map(([code, n]) => `${n} ${code}`).join(', ');
  return tally.path === 'lease.client()' ? `${failed} (never-sent calls run again by the caller: ${tally.retriedNeverSent})` : failed;
}

export interface ThreePathLoadOptions {
  /** Callers on each path. */
  readonly loops: number;
  /** The Echo request every call sends (e.g. 'unavailable:b2', which only b2 fails). Default 'ping'. */
  readonly request?: string;
  /** Each call's deadline. Default 3000. */
  readonly deadlineMillis?: number;
}

export class ThreePathLoad {
  readonly tallies: PathTally[];
  #running = true;
  readonly #workers: Promise<void>[] = [];

  constructor(pool: AnchorPool, native: grpc.Client, { loops, request = 'ping', deadlineMillis = CALL_DEADLINE_MILLIS }: ThreePathLoadOptions) {
    const stub = pool.client(EchoClient);
    const manual = this.#tally('lease.client()');
    const pooled = this.#tally('pool.client()');
    const plain = this.#tally('etcd:///');
    this.tallies = [manual, pooled, plain];
    for (let i = 0; i < loops; i++) {
      this.#workers.push(
        this.#loop(manual, async (started) => {
          // The README's recipe: a call that never left the client runs again on a new lease.
          for (;;) {
            const lease = await pool.acquire();
            const at = performance.now();
            started(at);
            try {
              const reply = await callEcho(lease.client(EchoClient), deadlineMillis, request);
              lease.release();
              manual.served.push({ at, server: reply.server });
              return;
            } catch (err) {
              lease.release(err as grpc.ServiceError);
              if (!isNeverSent(err)) throw err;
              manual.retriedNeverSent += 1;
            }
          }
        }),
        this.#loop(pooled, () => this.#timed(pooled, () => callEcho(stub, deadlineMillis, request))),
        this.#loop(plain, () => this.#timed(plain, () => callEcho(native, deadlineMillis, request))),
      );
    }
  }

  #tally(path: CallPath): PathTally {
    return { path, calls: 0, failed: new Map(), examples: [], retriedNeverSent: 0, served: [], failedAt: [] };
  }

  async #timed(tally: PathTally, call: () => Promise<{ server: string }>): Promise<void> {
    const at = performance.now();
    const reply = await call();
    tally.served.push({ at, server: reply.server });
  }

  /** Runs `call` until stop(); `call` may say when it really started (a manual lease: when it was granted). */
  async #loop(tally: PathTally, call: (started: (at: number) => void) => Promise<unknown>): Promise<void> {
    while (this.#running) {
      let startedAt = performance.now();
      try {
        await call((at) => (startedAt = at));
      } catch (err) {
        tally.failedAt.push(startedAt);
        const code = (err as Partial<grpc.ServiceError>).code;
        const name = typeof code === 'number' ? (grpc.status[code] ?? String(code)) : 'no status';
        tally.failed.set(name, (tally.failed.get(name) ?? 0) + 1);
        if (tally.examples.length < 3) tally.examples.push(`${name}: ${(err as Error).message}`);
      }
      tally.calls += 1;
    }
  }

  /** Calls so far on all paths. */
  get calls(): number {
    return this.tallies.reduce((sum, t) => sum + t.calls, 0);
  }

  /** Ends the loops; the calls running finish. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.allSettled(this.#workers);
  }
}
