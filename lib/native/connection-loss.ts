/**
 * What the anchored_round_robin policy does when one of its connections goes away (a
 * GOAWAY, a close), so that grpc-js's one immediate retry of a refused stream lands on a
 * connection that will take it:
 *
 *   - settle: until the I/O already received has been read (the next setImmediate), picks
 *     queue instead of choosing. Other connections may have a GOAWAY of their own waiting
 *     in their sockets (servers with max_connection_age cycle many at about the same time).
 *   - sibling pause: the key's other connections take no calls for SIBLING_PAUSE_MILLIS,
 *     if other keys can take them meanwhile. A server that shuts down sends GOAWAY on every
 *     connection; the retry must not meet the same server's next GOAWAY.
 */
import type { AnchorSet } from '../anchors/anchor-set.js';
import type { SubchannelAnchor } from './subchannel-anchor.js';

/** How long a key's other connections are held out after one of them went away. */
export const SIBLING_PAUSE_MILLIS = 250;

export interface ConnectionLossHooks {
  /** Picks must queue from now until resume(). */
  hold(): void;
  /** The settle (or a pause) is over: report the state again. */
  resume(): void;
  trace(text: string): void;
}

export class ConnectionLoss {
  readonly #anchors: AnchorSet<SubchannelAnchor>;
  readonly #hooks: ConnectionLossHooks;
  #settling = false;
  #destroyed = false;

  constructor(anchors: AnchorSet<SubchannelAnchor>, hooks: ConnectionLossHooks) {
    this.#anchors = anchors;
    this.#hooks = hooks;
  }

  /** Picks queue until the next setImmediate. */
  get settling(): boolean {
    return this.#settling;
  }

  /** `gone` left READY while it was in use. */
  lost(gone: SubchannelAnchor): void {
    this.#pauseSiblings(gone);
    // With nothing else to pick, the state change is reported at once (CONNECTING or TRANSIENT_FAILURE).
    if (this.#anchors.eligibleSlots > 0) this.#settle();
  }

  destroy(): void {
    this.#destroyed = true;
  }

  #pauseSiblings(gone: SubchannelAnchor): void {
    const siblings = [...this.#anchors.active()].filter((a) => a.key === gone.key && a !== gone && a.state === 'READY' && !a.draining);
    if (siblings.length === 0) return;
    const elsewhere = [...this.#anchors.active()].some((a) => a.key !== gone.key && a.eligible);
    if (!elsewhere) return;
    this.#hooks.trace(`${gone.key}: a connection went away; its ${siblings.length} other(s) take no calls for ${SIBLING_PAUSE_MILLIS} ms`);
    for (const sibling of siblings) sibling.pause(SIBLING_PAUSE_MILLIS, () => this.#hooks.resume());
  }

  #settle(): void {
    if (this.#settling) return;
    this.#settling = true;
    this.#hooks.hold();
    setImmediate(() => {
      this.#settling = false;
      if (!this.#destroyed) this.#hooks.resume();
    });
  }
}
