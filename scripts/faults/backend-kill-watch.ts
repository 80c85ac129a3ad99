// What the backend-kill scenario needs to know about the pool's anchors: every state
// change with its time, and the pool's own lease counter of that anchor at that moment.
// The counter is read inside the 'anchor-state' event, which the pool emits synchronously
// after the anchor's eligibility flipped and before any further lease can be granted, so
// "leases handed out while the anchor was not READY" is exact: the counter when it leaves
// READY against the counter when it is READY again (or at the end, if it never is).
import type { AnchorPool, AnchorState, AnchorStateEvent } from '../../lib/index.js';

export interface DownWindow {
  readonly address: string;
  readonly key: string;
  readonly anchor: number;
  /** When the anchor left READY. */
  readonly from: number;
  /** When it was READY again; undefined if it never was before the end. */
  readonly to: number | undefined;
  /** States it went through while down, in order. */
  readonly states: readonly AnchorState[];
  /** Leases the pool handed out on it in the window (its `acquired` counter's increase). */
  readonly leases: number;
}

interface OpenWindow {
  from: number;
  acquiredAtFrom: number;
  states: AnchorState[];
}

interface Slot {
  readonly address: string;
  readonly key: string;
  readonly anchor: number;
  state: AnchorState;
  open: OpenWindow | undefined;
}

const slotOf = (key: string, anchor: number): string => `${key}#${anchor}`;

export class AnchorWatch {
  readonly #pool: AnchorPool;
  readonly #now: () => number;
  readonly #slots = new Map<string, Slot>();
  readonly #closed: DownWindow[] = [];
  readonly #listener = (event: AnchorStateEvent): void => this.#onState(event);
  /** Called at every state change, and with `stopped` by stop(). */
  readonly #waiters = new Set<(stopped: boolean) => void>();

  constructor(pool: AnchorPool, now: () => number) {
    this.#pool = pool;
    this.#now = now;
    pool.on('anchor-state', this.#listener);
  }

  /** The anchor's state as of the last event (undefined for one never seen). */
  state(key: string, anchor: number): AnchorState | undefined {
    return this.#slots.get(slotOf(key, anchor))?.state;
  }

  /** States of every seen anchor of `address`. */
  statesOf(address: string): AnchorState[] {
    return [...this.#slots.values()].filter((s) => s.address === address).map((s) => s.state);
  }

  /** Resolves true once `predicate` holds (checked at every state change), false after timeoutMillis. */
  until(predicate: () => boolean, timeoutMillis: number): Promise<boolean> {
    if (predicate()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.#waiters.delete(onChange);
        resolve(ok);
      };
      const onChange = (stopped: boolean): void => {
        if (predicate()) done(true);
        else if (stopped) done(false);
      };
      const timer = setTimeout(() => done(false), timeoutMillis);
      this.#waiters.add(onChange);
    });
  }

  /** Every window in which an anchor was not READY, closed or still open now. */
  windows(): DownWindow[] {
    const open: DownWindow[] = [];
    for (const slot of this.#slots.values()) {
      if (slot.open === undefined) continue;
      const acquired = this.#acquired(slot.key, slot.anchor) ?? slot.open.acquiredAtFrom;
      open.push({ ...this.#base(slot), from: slot.open.from, to: undefined, states: [...slot.open.states], leases: acquired - slot.open.acquiredAtFrom });
    }
    return [...this.#closed, ...open].sort((a, b) => a.from - b.from);
  }

  stop(): void {
    this.#pool.off('anchor-state', this.#listener);
    for (const waiter of [...this.#waiters]) waiter(true);
  }

  #onState(event: AnchorStateEvent): void {
    // Draining anchors take no leases and are not what this scenario is about.
    if (event.draining) return;
    const at = this.#now();
    const id = slotOf(event.key, event.anchor);
    let slot = this.#slots.get(id);
    if (slot === undefined) {
      slot = { address: event.address, key: event.key, anchor: event.anchor, state: event.previous, open: undefined };
      this.#slots.set(id, slot);
    }
    slot.state = event.state;
    if (event.previous === 'READY' && event.state !== 'READY') {
      slot.open = { from: at, acquiredAtFrom: this.#acquired(event.key, event.anchor) ?? 0, states: [event.state] };
    } else if (slot.open !== undefined && event.state === 'READY') {
      const acquired = this.#acquired(event.key, event.anchor) ?? slot.open.acquiredAtFrom;
      this.#closed.push({ ...this.#base(slot), from: slot.open.from, to: at, states: slot.open.states, leases: acquired - slot.open.acquiredAtFrom });
      slot.open = undefined;
    } else if (slot.open !== undefined) {
      slot.open.states.push(event.state);
    }
    for (const waiter of [...this.#waiters]) waiter(false);
  }

  #base(slot: Slot): Pick<DownWindow, 'address' | 'key' | 'anchor'> {
    return { address: slot.address, key: slot.key, anchor: slot.anchor };
  }

  #acquired(key: string, anchor: number): number | undefined {
    return this.#pool.anchors().find((a) => a.key === key && a.anchor === anchor && !a.draining)?.acquired;
  }
}
