/**
 * Calls that wait for room: a pick found every anchor that could take the call at its
 * stream cap, so the call queued in the channel (and a key that may grow, `maxAnchors`,
 * was asked to open one more anchor). When an anchor frees a place, a new picker lets
 * grpc-js pick for the queued calls again: once per turn of the event loop (setImmediate),
 * not from inside the call's end that freed the place (that runs within grpc-js's own
 * status handling), and only when a call did wait. grpc-js runs every queued pick again
 * for each new picker, so one picker per freed place would cost O(queued) picks per call;
 * one per turn serves all the places freed by the I/O of that turn in one pass.
 */
export class RoomWait {
  readonly #freed: () => void;
  #waiting = false;
  #scheduled = false;
  #destroyed = false;

  /** `freed`: calls waited and a place is free now; report a new picker. */
  constructor(freed: () => void) {
    this.#freed = freed;
  }

  /** A pick found no room. */
  waiting(): void {
    this.#waiting = true;
  }

  /** An anchor can take calls again. */
  roomFreed(): void {
    if (!this.#waiting || this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#waiting || this.#destroyed) return;
      this.#waiting = false;
      this.#freed();
    });
  }

  destroy(): void {
    this.#destroyed = true;
  }
}
