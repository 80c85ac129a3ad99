/**
 * The native policy's record of where its calls run: calls in flight per anchor (for
 * least-loaded picks and the maxStreamsPerAnchor cap) and each call's outcome (for outlier
 * ejection). It is the CallPlacement its replaying calls report to.
 *
 * A call counts from its pick, not from its stream's start: when a picker arrives grpc-js
 * runs the picks of all queued calls in one go, before any of their streams start, and
 * each pick must see the ones before it (or every queued call would choose the same
 * least-loaded anchor, or pass the cap). A pick whose stream never starts — grpc-js picks
 * again when the subchannel left READY meanwhile, or the call was cancelled — is given
 * back on the next turn; a stream that starts after that (slow call credentials) counts
 * from its start.
 */
import { status as grpcStatus, type status as Status } from '@grpc/grpc-js';
import type { Anchor } from '../anchors/anchor.js';
import type { CallPlacement, PlacedAnchor } from '../grpc-js/refused-stream-replay.js';

export interface CallCountSettings<A> {
  /** Where outcomes go (outlier ejection), if anywhere. */
  readonly outcome?: (anchor: A, code: Status) => void;
  /** Where call latencies go (peak-ewma picks), if anywhere. */
  readonly latency?: (anchor: A, code: Status, millis: number) => void;
  /** Another anchor for a refused stream (CallPlacement.another). */
  readonly another: (refused: A) => A | undefined;
  readonly moved?: (from: A, to: A) => void;
}

export class CallCounts<A extends Anchor & PlacedAnchor> implements CallPlacement<A> {
  readonly #settings: CallCountSettings<A>;
  /** Picks counted on an anchor whose streams have not started yet. */
  readonly #picked = new Map<A, number>();
  #sweep: NodeJS.Immediate | undefined;

  constructor(settings: CallCountSettings<A>) {
    this.#settings = settings;
  }

  get timed(): boolean {
    return this.#settings.latency !== undefined;
  }

  /** A pick chose the anchor: the call counts on it from now on. */
  picked(anchor: A): void {
    anchor.take();
    this.#picked.set(anchor, (this.#picked.get(anchor) ?? 0) + 1);
    this.#sweep ??= setImmediate(() => this.#giveBackUnstarted());
  }

  started(anchor: A): void {
    const picked = this.#picked.get(anchor) ?? 0;
    if (picked > 1) this.#picked.set(anchor, picked - 1);
    else if (picked === 1) this.#picked.delete(anchor);
    else anchor.take();
  }

  ended(anchor: A, code: Status, millis: number): void {
    anchor.give();
    // A call the client cancelled took as long as the client chose: it says nothing of the backend.
    if (code !== grpcStatus.CANCELLED) this.#settings.latency?.(anchor, code, millis);
    this.#settings.outcome?.(anchor, code);
  }

  moved(from: A, to: A): void {
    from.give();
    to.take();
    this.#settings.moved?.(from, to);
  }

  another(refused: A): A | undefined {
    return this.#settings.another(refused);
  }

  #giveBackUnstarted(): void {
    this.#sweep = undefined;
    for (const [anchor, picked] of this.#picked) for (let i = 0; i < picked; i++) anchor.give();
    this.#picked.clear();
  }
}
