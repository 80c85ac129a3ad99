// Closed-loop Echo callers on one grpc-js client, recording every call: the load of the
// traffic scenarios (slow-start, zone-routing), which read who answered and how long it took.
import * as grpc from '@grpc/grpc-js';
import { callEcho } from '../../testkit/echo/echo-service.js';

export interface CallRecord {
  /** Start, performance.now(). */
  readonly at: number;
  readonly millis: number;
  /** The backend that answered; undefined for a failed call. */
  readonly server: string | undefined;
  /** Status code name of a failed call. */
  readonly failed: string | undefined;
}

/** `callers` callers, each starting its next call when its last ends, until stop(). */
export class ClosedLoop {
  readonly records: CallRecord[] = [];
  /** The first three failures, with their messages. */
  readonly examples: string[] = [];
  #running = true;
  readonly #workers: Promise<void>[];

  constructor(client: grpc.Client, callers: number, deadlineMillis: number) {
    this.#workers = Array.from({ length: callers }, () => this.#loop(client, deadlineMillis));
  }

  async #loop(client: grpc.Client, deadlineMillis: number): Promise<void> {
    while (this.#running) {
      const at = performance.now();
      try {
        const reply = await callEcho(client, deadlineMillis);
        this.records.push({ at, millis: performance.now() - at, server: reply.server, failed: undefined });
      } catch (err) {
        const code = (err as Partial<grpc.ServiceError>).code;
        const name = typeof code === 'number' ? (grpc.status[code] ?? String(code)) : 'no status';
        this.records.push({ at, millis: performance.now() - at, server: undefined, failed: name });
        if (this.examples.length < 3) this.examples.push(`${name}: ${(err as Error).message}`);
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.allSettled(this.#workers);
  }
}
