/**
 * The native policy runs a stream that a server refused (HTTP/2 REFUSED_STREAM, sent with
 * a GOAWAY) again on another anchor, itself. grpc-js retries a refused stream only once,
 * at once; when servers cycle their connections (max_connection_age, a rolling restart)
 * the retry can be refused too, and the call fails though no server ever saw it. A
 * refused stream provably reached no handler, so it can run again while its request
 * messages are still at hand (a RequestLog, as pool.client()'s replays).
 *
 * The picker hands grpc-js a ReplayingSubchannel, a view of the anchor's subchannel whose
 * getRealSubchannel().createCall() — the one call grpc-js's LoadBalancingCall makes on
 * it — returns a ReplayingCall. The call also reports where it runs (CallPlacement), so
 * calls are counted, and their outcomes recorded, on the anchor that ran them.
 */
import * as grpc from '@grpc/grpc-js';
import { constants as http2 } from 'node:http2';
import { MAX_REPLAYS, RequestLog } from '../core/request-log.js';
import { BaseSubchannelWrapper, type SubchannelInterface } from './experimental.js';

type RealSubchannel = ReturnType<SubchannelInterface['getRealSubchannel']>;
type SubchannelCall = ReturnType<RealSubchannel['createCall']>;
type CallListener = Parameters<RealSubchannel['createCall']>[3];
type MessageContext = Parameters<SubchannelCall['sendMessageWithContext']>[0];

export interface PlacedAnchor {
  readonly subchannel: SubchannelInterface;
}

/** What a replaying call tells the policy about where it runs. */
export interface CallPlacement<A extends PlacedAnchor> {
  /** The call has a stream on the anchor. */
  started(anchor: A): void;
  /** Whether calls are timed (latency-aware picks): only then is the clock read. */
  readonly timed: boolean;
  /**
   * The call ended on the anchor with this status code; `millis`: from its stream's start
   * (on its last anchor) to its first response message, or to its status when none came
   * (0 when not timed).
   */
  ended(anchor: A, code: grpc.status, millis: number): void;
  /** The anchor refused the call's stream, and the call runs on another one (no outcome). */
  moved(from: A, to: A): void;
  /**
   * Another READY anchor for a refused stream, asked on the turn after the refusal (a
   * GOAWAY waiting in another socket is read first); undefined hands the refusal to
   * grpc-js, whose own retry then picks through the channel.
   */
  another(refused: A): A | undefined;
}

export class ReplayingSubchannel<A extends PlacedAnchor> extends BaseSubchannelWrapper {
  #real: RealSubchannel | undefined;
  #unwrapped: ReplayingSubchannel<A> | undefined;

  constructor(
    child: SubchannelInterface,
    readonly anchor: A,
    private readonly placement: CallPlacement<A>,
  ) {
    super(child);
  }

  override getRealSubchannel(): RealSubchannel {
    // Everything but createCall is the real subchannel's (grpc-js uses nothing else of it from a pick).
    return (this.#real ??= Object.create(this.child.getRealSubchannel(), {
      createCall: {
        value: (metadata: grpc.Metadata, host: string, method: string, listener: CallListener, callNumber?: number): SubchannelCall =>
          new ReplayingCall(this.anchor, this.placement, { metadata, host, method, callNumber }, listener),
      },
    }) as RealSubchannel);
  }

  // grpc-js's outlier_detection, as a parent policy, reads its own wrapper's entry from a
  // pick and unwraps it: both are passed through, the unwrapped one still replaying.
  getMapEntry(): unknown {
    return (this.child as { getMapEntry?: () => unknown }).getMapEntry?.();
  }
  getWrappedSubchannel(): SubchannelInterface {
    const inner = (this.child as { getWrappedSubchannel?: () => SubchannelInterface }).getWrappedSubchannel?.();
    if (inner === undefined) return this;
    return (this.#unwrapped ??= new ReplayingSubchannel(inner, this.anchor, this.placement));
  }
}

interface StreamArgs {
  readonly metadata: grpc.Metadata;
  readonly host: string;
  readonly method: string;
  readonly callNumber: number | undefined;
}

export class ReplayingCall<A extends PlacedAnchor> implements SubchannelCall {
  #anchor: A;
  #stream: SubchannelCall;
  readonly #sent = new RequestLog();
  #readStarted = false;
  #halfClosed = false;
  #replays = 0;
  #ended = false;
  /** performance.now() when its stream (the last one, after a replay) started, and when its first message came; 0: not timed, or none yet. */
  #startedAt = 0;
  #answeredAt = 0;

  constructor(
    anchor: A,
    private readonly placement: CallPlacement<A>,
    private readonly args: StreamArgs,
    private readonly listener: CallListener,
  ) {
    this.#anchor = anchor;
    // A subchannel that is not READY throws here, and grpc-js picks again (never started).
    this.#stream = this.#open(anchor);
    placement.started(anchor);
    if (placement.timed) this.#startedAt = performance.now();
  }

  #open(anchor: A): SubchannelCall {
    const { metadata, host, method, callNumber } = this.args;
    let stream: SubchannelCall | undefined;
    const current = (): boolean => stream === undefined || stream === this.#stream;
    stream = anchor.subchannel.getRealSubchannel().createCall(
      metadata,
      host,
      method,
      {
        onReceiveMetadata: (received) => {
          if (!current()) return;
          this.#sent.commit();
          this.listener.onReceiveMetadata(received);
        },
        onReceiveMessage: (message) => {
          if (!current()) return;
          if (this.#startedAt !== 0 && this.#answeredAt === 0) this.#answeredAt = performance.now();
          this.#sent.commit();
          this.listener.onReceiveMessage(message);
        },
        onReceiveStatus: (status) => {
          if (!current() || this.#ended) return;
          if (status.rstCode === http2.NGHTTP2_REFUSED_STREAM && !this.#sent.committed && this.#replays < MAX_REPLAYS) {
            this.#replays += 1;
            setImmediate(() => this.#replay(status));
          } else this.#end(status);
        },
      },
      callNumber,
    );
    return stream;
  }

  /** Runs the refused stream on another anchor, or hands the refusal on when there is none. */
  #replay(refusal: Parameters<CallListener['onReceiveStatus']>[0]): void {
    if (this.#ended) return;
    const next = this.placement.another(this.#anchor);
    if (next === undefined || next.subchannel.getConnectivityState() !== grpc.connectivityState.READY) return this.#end(refusal);
    let stream: SubchannelCall;
    try {
      stream = this.#open(next);
    } catch {
      return this.#end(refusal);
    }
    this.placement.moved(this.#anchor, next);
    this.#anchor = next;
    this.#stream = stream;
    if (this.#startedAt !== 0) this.#startedAt = performance.now();
    for (const entry of this.#sent.messages!) stream.sendMessageWithContext(contextOf(entry.flags, entry.written), entry.message);
    if (this.#halfClosed) stream.halfClose();
    if (this.#readStarted) stream.startRead();
  }

  #end(status: Parameters<CallListener['onReceiveStatus']>[0]): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#sent.commit();
    const millis = this.#startedAt === 0 ? 0 : (this.#answeredAt || performance.now()) - this.#startedAt;
    this.placement.ended(this.#anchor, status.code, millis);
    this.listener.onReceiveStatus(status);
  }

  sendMessageWithContext(context: MessageContext, message: Buffer): void {
    const entry = this.#sent.record(message, context.flags, context.callback);
    this.#stream.sendMessageWithContext(contextOf(entry.flags, entry.written), message);
  }

  startRead(): void {
    this.#readStarted = true;
    this.#stream.startRead();
  }

  halfClose(): void {
    this.#halfClosed = true;
    this.#stream.halfClose();
  }

  cancelWithStatus(code: grpc.status, details: string): void {
    // Ends here too: a stream already refused and waiting for its replay reports nothing more.
    this.#stream.cancelWithStatus(code, details);
    this.#end({ code, details, metadata: new grpc.Metadata() });
  }

  getPeer(): string {
    return this.#stream.getPeer();
  }
  getCallNumber(): number {
    return this.#stream.getCallNumber();
  }
  getDeadlineInfo(): string[] {
    return this.#stream.getDeadlineInfo();
  }
  getAuthContext(): ReturnType<SubchannelCall['getAuthContext']> {
    return this.#stream.getAuthContext();
  }
}

function contextOf(flags: number | undefined, written: (error?: Error | null) => void): MessageContext {
  return flags === undefined ? { callback: written } : { callback: written, flags };
}
