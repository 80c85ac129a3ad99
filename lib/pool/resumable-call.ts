/**
 * One pool.client() call at the channel level: it runs on a lease, releases the lease
 * with its status when it ends, and when an attempt fails before anything of it left the
 * client (the never-sent mark of lib/core/never-sent.ts: its anchor lost its connection between
 * the lease and the stream), it runs again on another lease, as gRPC's transparent retry
 * does within one channel. Only such calls are run again: a call that may have reached a
 * server (any other failure, or one that received headers or a message) ends with its
 * status. The request messages are kept for the replay in a RequestLog until the call is
 * committed.
 */
import * as grpc from '@grpc/grpc-js';
import { NO_OUTCOME } from '../core/call-outcome.js';
import type { AcquireOptions, Lease } from './lease.js';
import { isNeverSent } from '../core/never-sent.js';
import { MAX_REPLAYS, RequestLog, type SentMessage } from '../core/request-log.js';
import { timeoutForDeadline } from '../core/timer-limit.js';

/** What a resumable call needs from the pool. */
export interface LeaseSupply {
  acquire(options?: AcquireOptions): Promise<Lease>;
  tryAcquire(): Lease | undefined;
  releaseAtEnd(lease: Lease, outcome?: grpc.status | typeof NO_OUTCOME): void;
}

export type ChannelCall = ReturnType<grpc.ChannelInterface['createCall']>;
export type CallArgs = Parameters<grpc.ChannelInterface['createCall']>;
type Listener = Parameters<ChannelCall['start']>[1];
type MessageContext = Parameters<ChannelCall['sendMessageWithContext']>[0];
type CallCredentials = Parameters<ChannelCall['setCredentials']>[0];

export class ResumableCall implements ChannelCall {
  #lease: Lease | undefined;
  #attempt: ChannelCall;
  #listener: Listener | undefined;
  #metadata: grpc.Metadata | undefined;
  #credentials: CallCredentials | undefined;
  readonly #sent = new RequestLog();
  /**
   * Messages still to write to the current attempt. A grpc-js call takes one message at a
   * time (it keeps one until its callback), so they go one after another.
   */
  #outbox: SentMessage[] = [];
  #writing = false;
  #readStarted = false;
  #halfClosed = false;
  #replays = 0;
  #cancelled = false;
  #ended = false;
  /** Set while a replay waits for a lease. */
  #waiting: AbortController | undefined;

  constructor(
    private readonly supply: LeaseSupply,
    lease: Lease,
    private readonly args: CallArgs,
  ) {
    this.#lease = lease;
    this.#attempt = lease.channel.createCall(...args);
  }

  start(metadata: grpc.Metadata, listener: Listener): void {
    this.#listener = listener;
    this.#metadata = metadata.clone();
    this.#startAttempt(metadata);
  }

  sendMessageWithContext(context: MessageContext, message: Buffer): void {
    this.#outbox.push(this.#sent.record(message, context.flags, context.callback));
    this.#pump();
  }

  /** Writes the next message of the outbox once the one before is written, then the half-close. */
  #pump(): void {
    if (this.#writing) return;
    const entry = this.#outbox.shift();
    if (entry === undefined) {
      if (this.#halfClosed) this.#attempt.halfClose();
      return;
    }
    this.#writing = true;
    const attempt = this.#attempt;
    const context: MessageContext = {
      callback: (error) => {
        if (attempt !== this.#attempt) return;
        this.#writing = false;
        entry.written(error);
        this.#pump();
      },
    };
    if (entry.flags !== undefined) context.flags = entry.flags;
    attempt.sendMessageWithContext(context, entry.message);
  }

  startRead(): void {
    this.#readStarted = true;
    this.#attempt.startRead();
  }

  halfClose(): void {
    this.#halfClosed = true;
    if (!this.#writing && this.#outbox.length === 0) this.#attempt.halfClose();
  }

  cancelWithStatus(code: grpc.status, details: string): void {
    this.#cancelled = true;
    if (this.#waiting !== undefined) {
      this.#waiting.abort();
      this.#end({ code, details, metadata: new grpc.Metadata() });
    } else this.#attempt.cancelWithStatus(code, details);
  }

  getPeer(): string {
    return this.#attempt.getPeer();
  }
  getCallNumber(): number {
    return this.#attempt.getCallNumber();
  }
  setCredentials(credentials: CallCredentials): void {
    this.#credentials = credentials;
    this.#attempt.setCredentials(credentials);
  }
  getAuthContext(): ReturnType<ChannelCall['getAuthContext']> {
    return this.#attempt.getAuthContext();
  }

  #startAttempt(metadata: grpc.Metadata): void {
    const attempt = this.#attempt;
    const listener = this.#listener!;
    attempt.start(metadata, {
      onReceiveMetadata: (received) => {
        this.#sent.commit();
        listener.onReceiveMetadata(received);
      },
      onReceiveMessage: (message) => {
        this.#sent.commit();
        listener.onReceiveMessage(message);
      },
      onReceiveStatus: (status) => {
        if (attempt !== this.#attempt) return;
        if (!this.#sent.committed && !this.#cancelled && this.#replays < MAX_REPLAYS && isNeverSent(status)) this.#replay(status);
        else this.#end(status);
      },
    });
  }

  /** The attempt never left the client: give its lease back uncounted and run the call on another. */
  #replay(failure: grpc.StatusObject): void {
    this.#replays += 1;
    this.supply.releaseAtEnd(this.#lease!, NO_OUTCOME);
    this.#lease = undefined;
    const lease = this.supply.tryAcquire();
    if (lease !== undefined) return this.#resume(lease);
    const deadline = new Date(this.args[1]).getTime();
    const left = deadline - Date.now();
    if (left <= 0) return this.#end(failure);
    const waiting = new AbortController();
    this.#waiting = waiting;
    // A deadline beyond Node's timer limit counts as none: acquireTimeoutMillis bounds the wait.
    const timeoutMillis = timeoutForDeadline(left);
    const options: AcquireOptions = timeoutMillis === undefined ? { signal: waiting.signal } : { signal: waiting.signal, timeoutMillis };
    this.supply.acquire(options).then(
      (leased) => {
        this.#waiting = undefined;
        if (this.#ended) this.supply.releaseAtEnd(leased, NO_OUTCOME);
        else this.#resume(leased);
      },
      // No lease in time (or the pool closed): the call ends with the failure that stopped it.
      () => {
        this.#waiting = undefined;
        this.#end(failure);
      },
    );
  }

  #resume(lease: Lease): void {
    this.#lease = lease;
    this.#attempt = lease.channel.createCall(...this.args);
    if (this.#credentials !== undefined) this.#attempt.setCredentials(this.#credentials);
    this.#startAttempt(this.#metadata!.clone());
    if (this.#readStarted) this.#attempt.startRead();
    // Every request so far, in order, then the half-close if the caller has sent it.
    this.#outbox = [...this.#sent.messages!];
    this.#writing = false;
    this.#pump();
  }

  #end(status: grpc.StatusObject): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#sent.commit();
    const lease = this.#lease;
    this.#lease = undefined;
    // The call's status is its outcome (outlier ejection counts the failures).
    if (lease !== undefined) this.supply.releaseAtEnd(lease, status.code);
    this.#listener?.onReceiveStatus(status);
  }
}
