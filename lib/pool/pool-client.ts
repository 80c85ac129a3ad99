/**
 * pool.client(Ctor): a grpc-js client stub whose every call runs on a lease, built from
 * public grpc-js API only. A callInvocationTransformer takes a lease with tryAcquire():
 * when one is free (the common case) the call goes straight to the leased anchor's
 * channel. When none is free, a per-call interceptor delays the call until
 * pool.acquire() resolves, then creates it through a routing channel (the stub's
 * `channelOverride`) on the leased anchor's channel. Either way the call is a
 * ResumableCall (lib/pool/resumable-call.ts): it releases the lease when the call ends with
 * any status — OK, an error, a deadline or a cancel — for unary calls and every kind of
 * stream, and runs a call that never left the client again on another lease.
 */
import * as grpc from '@grpc/grpc-js';
import { NO_OUTCOME } from '../core/call-outcome.js';
import type { AcquireOptions, Lease } from './lease.js';
import { grpcStatusOf } from '../core/error-status.js';
import { ResumableCall, type CallArgs, type ChannelCall, type LeaseSupply } from './resumable-call.js';
import { timeoutForDeadline } from '../core/timer-limit.js';

/** What the client needs from a pool. */
export interface LeaseProvider extends LeaseSupply {
  hasReadyAnchor(): boolean;
  /** close() was called: the routing channel reports SHUTDOWN from then on. */
  isClosed(): boolean;
  onStateChange(listener: () => void): () => void;
  describeTarget(): string;
}

type InnerCall = ReturnType<grpc.NextCall>;
type Listener = Parameters<InnerCall['start']>[1];
type MessageContext = Parameters<InnerCall['sendMessageWithContext']>[0];

/**
 * The channel the stub sees. It creates each call on the channel of the lease that the
 * interceptor hands it, synchronously, for the duration of one nextCall().
 */
class LeaseRoutingChannel implements grpc.ChannelInterface {
  #current: Lease | undefined;
  readonly #provider: LeaseProvider;

  constructor(provider: LeaseProvider) {
    this.#provider = provider;
  }

  route<T>(lease: Lease, create: () => T): T {
    this.#current = lease;
    try {
      return create();
    } finally {
      this.#current = undefined;
    }
  }

  createCall(...args: CallArgs): ChannelCall {
    const lease = this.#current;
    if (lease === undefined) throw new Error('anchorpool: pool client calls must go through their lease interceptor');
    return new ResumableCall(this.#provider, lease, args);
  }

  /** The channel of one call that holds its lease already (the common case). */
  leased(lease: Lease): grpc.ChannelInterface {
    const provider = this.#provider;
    // Everything but createCall is the stub's channel; grpc-js asks a call's channel for nothing else.
    return Object.assign(Object.create(this) as this, { createCall: (...args: CallArgs): ChannelCall => new ResumableCall(provider, lease, args) });
  }

  getTarget(): string {
    return this.#provider.describeTarget();
  }

  getConnectivityState(): grpc.connectivityState {
    if (this.#provider.isClosed()) return grpc.connectivityState.SHUTDOWN;
    return this.#provider.hasReadyAnchor() ? grpc.connectivityState.READY : grpc.connectivityState.CONNECTING;
  }

  watchConnectivityState(current: grpc.connectivityState, deadline: Date | number, callback: (error?: Error) => void): void {
    // As a grpc-js channel: a closed one cannot be watched (Client.waitForReady reports that).
    if (this.#provider.isClosed()) throw new Error('the pool behind this client was closed');
    let timer: NodeJS.Timeout | undefined;
    const off = this.#provider.onStateChange(() => {
      if (this.getConnectivityState() === current) return;
      off();
      clearTimeout(timer);
      callback();
    });
    // A deadline beyond the timer limit (or none) is waited out with no timer at all.
    const wait = timeoutForDeadline(new Date(deadline).getTime() - Date.now());
    if (wait !== undefined) {
      timer = setTimeout(() => {
        off();
        callback(new Error('Deadline passed without connectivity state change'));
      }, wait);
    }
  }

  getChannelzRef(): ReturnType<grpc.ChannelInterface['getChannelzRef']> {
    return { kind: 'channel', id: 0, name: this.getTarget() } as ReturnType<grpc.ChannelInterface['getChannelzRef']>;
  }

  /** The pool owns the anchors' channels; closing a stub closes nothing. */
  close(): void {}
}

/** A call that waits for its lease, then runs on the leased anchor and releases it at the end. */
class LeasedCall implements InnerCall {
  #call: InnerCall | undefined;
  #pending: ((call: InnerCall) => void)[] = [];
  #finished = false;
  /** Created only when the call has to wait for a lease (AbortController is not cheap). */
  #abort: AbortController | undefined;
  #listener: Listener | undefined;

  constructor(
    private readonly provider: LeaseProvider,
    private readonly router: LeaseRoutingChannel,
    private readonly options: grpc.InterceptorOptions,
    private readonly nextCall: grpc.NextCall,
  ) {}

  start(metadata: grpc.Metadata, listener?: Listener): void {
    this.#listener = listener;
    // The common case: a free slot now, so the call starts synchronously, as a plain call would.
    const lease = this.provider.tryAcquire();
    if (lease !== undefined) return this.#begin(lease, metadata);
    this.#abort = new AbortController();
    const acquire: AcquireOptions = { signal: this.#abort.signal };
    const deadline = this.options.deadline === undefined ? Infinity : new Date(this.options.deadline).getTime() - Date.now();
    // A deadline beyond Node's timer limit (about 24.8 days) counts as none: acquireTimeoutMillis bounds the wait.
    const timeoutMillis = timeoutForDeadline(deadline);
    this.provider.acquire(timeoutMillis === undefined ? acquire : { ...acquire, timeoutMillis }).then(
      (leased) => {
        if (this.#finished) return this.provider.releaseAtEnd(leased, NO_OUTCOME); // cancelled while waiting: no call ran
        this.#begin(leased, metadata);
        for (const op of this.#pending) op(this.#call!);
        this.#pending = [];
      },
      (error: unknown) => {
        if (this.#finished) return;
        this.#fail(grpcStatusOf(error, { byDeadline: timeoutMillis !== undefined }), `anchorpool: ${(error as Error).message}`);
      },
    );
  }

  #begin(lease: Lease, metadata: grpc.Metadata): void {
    const listener = this.#listener;
    // The ResumableCall the router creates owns the lease from here on.
    const call = this.router.route(lease, () => this.nextCall(this.options));
    this.#call = call;
    // Methods are called on the listener itself: grpc-js passes class instances.
    call.start(metadata, {
      onReceiveMetadata: (received) => listener?.onReceiveMetadata?.(received),
      onReceiveMessage: (message) => listener?.onReceiveMessage?.(message),
      onReceiveStatus: (status) => {
        this.#finished = true;
        listener?.onReceiveStatus?.(status);
      },
    });
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    this.#run((call) => call.sendMessageWithContext(context, message));
  }
  sendMessage(message: unknown): void {
    this.#run((call) => call.sendMessage(message));
  }
  startRead(): void {
    this.#run((call) => call.startRead());
  }
  halfClose(): void {
    this.#run((call) => call.halfClose());
  }

  cancelWithStatus(status: grpc.status, details: string): void {
    if (this.#call !== undefined) return this.#call.cancelWithStatus(status, details);
    this.#abort?.abort();
    this.#fail(status, details);
  }

  getPeer(): string {
    return this.#call?.getPeer() ?? '';
  }

  getAuthContext(): ReturnType<InnerCall['getAuthContext']> {
    return this.#call?.getAuthContext() ?? null;
  }

  #run(op: (call: InnerCall) => void): void {
    if (this.#call !== undefined) op(this.#call);
    else if (!this.#finished) this.#pending.push(op);
  }

  #fail(code: grpc.status, details: string): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#pending = [];
    this.#listener?.onReceiveStatus?.({ code, details, metadata: new grpc.Metadata() });
  }
}

type ClientConstructor<C extends grpc.Client> = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C;

export function createPoolClient<C extends grpc.Client>(provider: LeaseProvider, Ctor: ClientConstructor<C>, options: grpc.ClientOptions = {}): C {
  const router = new LeaseRoutingChannel(provider);
  const clientInterceptors = options.interceptors ?? [];
  const userTransform = options.callInvocationTransformer;
  const leaseInterceptor: grpc.Interceptor = (interceptorOptions, nextCall) =>
    new grpc.InterceptingCall(new LeasedCall(provider, router, interceptorOptions, nextCall));
  const transform = (given: grpc.CallProperties<unknown, unknown>): grpc.CallProperties<unknown, unknown> => {
    const properties = userTransform ? (userTransform(given) as grpc.CallProperties<unknown, unknown>) : given;
    const lease = provider.tryAcquire();
    if (lease !== undefined) {
      // The common case, a free slot now: the call runs straight on the leased anchor's
      // channel, with no interceptor of ours.
      return { ...properties, channel: router.leased(lease) as grpc.Channel };
    }
    // It has to wait: our interceptor goes innermost for this call. Call interceptors
    // replace the client's in grpc-js, so the client's are carried over.
    const own = properties.callOptions.interceptors;
    return { ...properties, callOptions: { ...properties.callOptions, interceptors: [...(own ?? clientInterceptors), leaseInterceptor] } };
  };
  return new Ctor(provider.describeTarget(), grpc.credentials.createInsecure(), {
    ...options,
    channelOverride: router,
    callInvocationTransformer: transform as grpc.ClientOptions['callInvocationTransformer'],
  });
}
