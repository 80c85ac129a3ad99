/**
 * AnchorRefresher: make-before-break refresh of anchors that reached their maximum age
 * (gax's ChannelPool refresh, for connections behind L4 balancers that pin each one to a
 * server). It keeps one age timer per anchor (the age jittered ±15%, so a key's anchors
 * do not refresh together) and, per key, at most one replacement at a time:
 *
 *   age reached ──► queue of the key ──► replacement for the same (key, index) starts
 *        ──► it becomes eligible (READY, healthy) ──► swap: it takes the slot, the old one drains
 *        └─ not eligible within connectTimeoutMillis ──► it is closed, the old one stays,
 *           and its refresh is tried again retryMillis later
 *
 * It owns no slots: the anchor set creates, swaps and discards anchors through its hooks.
 */
import type { Anchor } from './anchor.js';
import { timerDelay } from '../core/timer-limit.js';

export interface RefreshSettings {
  /** How long a replacement may take to become eligible. */
  readonly connectTimeoutMillis: number;
  /** When a replacement failed, how long until the old anchor's refresh is tried again. */
  readonly retryMillis: number;
  /** Age spread: the age timer is maxAge × (1 ± jitter). */
  readonly jitter: number;
  /** Random source in [0, 1), replaceable for specs. */
  readonly random: () => number;
}

export const DEFAULT_REFRESH_SETTINGS: RefreshSettings = { connectTimeoutMillis: 10_000, retryMillis: 10_000, jitter: 0.15, random: Math.random };

export interface RefreshHooks<A extends Anchor> {
  /** The anchor still holds its slot (it was not drained or replaced meanwhile). */
  holdsSlot(anchor: A): boolean;
  /** A new anchor for `old`'s slot, not started, not in the schedule. */
  replacement(old: A): A;
  /** `fresh` takes `old`'s slot; `old` drains. */
  swap(old: A, fresh: A, ageMillis: number): void;
  /** A replacement that did not make it: closed, `old` stays. */
  discard(fresh: A, old: A): void;
}

interface Pending<A> {
  readonly old: A;
  readonly fresh: A;
  readonly timer: NodeJS.Timeout;
}

export class AnchorRefresher<A extends Anchor> {
  readonly #settings: RefreshSettings;
  readonly #hooks: RefreshHooks<A>;
  readonly #timers = new Map<A, NodeJS.Timeout>();
  readonly #born = new Map<A, number>();
  /** Anchors whose age is reached, per key, oldest first. */
  readonly #due = new Map<string, A[]>();
  readonly #pending = new Map<string, Pending<A>>();
  #refreshes = 0;
  #failures = 0;

  constructor(settings: RefreshSettings, hooks: RefreshHooks<A>) {
    this.#settings = settings;
    this.#hooks = hooks;
  }

  /** Refreshes done so far (a replacement took its slot). */
  get refreshes(): number {
    return this.#refreshes;
  }
  /** Replacements that did not become eligible in time. */
  get failures(): number {
    return this.#failures;
  }
  /** Keys with a replacement connecting now. */
  get replacing(): number {
    return this.#pending.size;
  }

  /** Starts `anchor`'s age clock (maxAgeMillis undefined or 0: it is never refreshed). */
  track(anchor: A, maxAgeMillis: number | undefined): void {
    this.untrack(anchor);
    if (maxAgeMillis === undefined || maxAgeMillis <= 0) return;
    this.#born.set(anchor, performance.now());
    this.#arm(anchor, this.#jittered(maxAgeMillis));
  }

  /** `anchor` is gone (drained, closed) or no longer refreshed: its clock stops; a replacement for it is closed. */
  untrack(anchor: A): void {
    clearTimeout(this.#timers.get(anchor));
    this.#timers.delete(anchor);
    this.#born.delete(anchor);
    const queue = this.#due.get(anchor.key);
    if (queue !== undefined) {
      const at = queue.indexOf(anchor);
      if (at !== -1) queue.splice(at, 1);
      if (queue.length === 0) this.#due.delete(anchor.key);
    }
    const pending = this.#pending.get(anchor.key);
    if (pending?.old === anchor) {
      this.#pending.delete(anchor.key);
      clearTimeout(pending.timer);
      this.#hooks.discard(pending.fresh, anchor);
    }
  }

  /** Whether `anchor` is a replacement waiting to take a slot. */
  isPending(anchor: A): boolean {
    return this.#pending.get(anchor.key)?.fresh === anchor;
  }

  /** A pending replacement became eligible: it takes the slot now. */
  ready(fresh: A): void {
    const pending = this.#pending.get(fresh.key);
    if (pending?.fresh !== fresh) return;
    this.#pending.delete(fresh.key);
    clearTimeout(pending.timer);
    const born = this.#born.get(pending.old);
    this.#refreshes += 1;
    this.#hooks.swap(pending.old, fresh, born === undefined ? 0 : performance.now() - born);
    this.#next(fresh.key);
  }

  /** Stops every clock and closes every replacement. */
  stop(): void {
    for (const anchor of [...this.#timers.keys(), ...[...this.#pending.values()].map((p) => p.old)]) this.untrack(anchor);
    this.#due.clear();
  }

  #jittered(maxAgeMillis: number): number {
    const { jitter, random } = this.#settings;
    return Math.max(1, Math.round(maxAgeMillis * (1 - jitter + 2 * jitter * random())));
  }

  #arm(anchor: A, delay: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(anchor);
      if (!this.#hooks.holdsSlot(anchor)) return;
      const queue = this.#due.get(anchor.key) ?? [];
      queue.push(anchor);
      this.#due.set(anchor.key, queue);
      this.#next(anchor.key);
    }, timerDelay(delay));
    // An age timer never keeps a process alive.
    timer.unref();
    this.#timers.set(anchor, timer);
  }

  /** Starts the next due refresh of `key`, unless one is under way. */
  #next(key: string): void {
    if (this.#pending.has(key)) return;
    const queue = this.#due.get(key);
    let old = queue?.shift();
    while (old !== undefined && !this.#hooks.holdsSlot(old)) old = queue?.shift();
    if (queue?.length === 0) this.#due.delete(key);
    if (old === undefined) return;
    const timer = setTimeout(() => this.#failed(key), this.#settings.connectTimeoutMillis);
    timer.unref();
    const fresh = this.#hooks.replacement(old);
    // Pending before it starts: a replacement that is eligible at once finds itself here.
    this.#pending.set(key, { old, fresh, timer });
    fresh.start();
  }

  #failed(key: string): void {
    const pending = this.#pending.get(key);
    if (pending === undefined) return;
    this.#pending.delete(key);
    this.#failures += 1;
    this.#hooks.discard(pending.fresh, pending.old);
    // The old anchor keeps serving; its refresh is tried again later.
    this.#arm(pending.old, this.#settings.retryMillis);
    this.#next(key);
  }
}
