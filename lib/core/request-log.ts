/**
 * The request messages of a call that may still be run again: kept, in order, until the
 * call is committed (the server answered with headers or a message, or the requests
 * outgrew RETRY_BUFFER_BYTES). Both replays use it: pool.client()'s ResumableCall, across
 * leases, and the native policy's ReplayingCall, across subchannels.
 */

/** grpc-js's own per-call retry buffer default (grpc.per_rpc_retry_buffer_size). */
export const RETRY_BUFFER_BYTES = 256 * 1024;

/**
 * Attempts after the first. A replay moves the call off an anchor that has just gone
 * away, so the next attempt is on another anchor; the bound only stops a loop when every
 * anchor is failing at once.
 */
export const MAX_REPLAYS = 4;

export interface SentMessage {
  readonly message: Buffer;
  readonly flags: number | undefined;
  /** The writer's callback, called once however many attempts write the message. */
  readonly written: (error?: Error | null) => void;
}

export class RequestLog {
  #messages: SentMessage[] | undefined = [];
  #bytes = 0;

  /** Notes a message the caller sends; its callback will run once. */
  record(message: Buffer, flags: number | undefined, callback: ((error?: Error | null) => void) | undefined): SentMessage {
    let called = false;
    const entry: SentMessage = { message, flags, written: (error) => (called ? undefined : ((called = true), callback?.(error))) };
    if (this.#messages !== undefined) {
      this.#bytes += message.length;
      if (this.#bytes > RETRY_BUFFER_BYTES) this.commit();
      else this.#messages.push(entry);
    }
    return entry;
  }

  /** Nothing can be replayed any more: the messages are let go. */
  commit(): void {
    this.#messages = undefined;
  }

  get committed(): boolean {
    return this.#messages === undefined;
  }

  /** Every message so far, in order; undefined once committed. */
  get messages(): readonly SentMessage[] | undefined {
    return this.#messages;
  }
}
