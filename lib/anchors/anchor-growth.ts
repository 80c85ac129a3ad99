/**
 * AnchorGrowth: load-driven anchors for keys that allow more than their N (`maxAnchors`).
 * When callers wait and every anchor of such a key is full, the anchor set asks for one
 * more (gRFC A105's idea: a new connection when all are at their stream limit):
 *
 *   want(key) ──► one extra anchor connecting per key at a time
 *        ├─ it becomes eligible ──► done (the set may ask again while callers still wait)
 *        └─ TRANSIENT_FAILURE, or not eligible within connectTimeoutMillis ──► closed,
 *           and the key backs off (backoffInitialMillis, doubling to backoffMaxMillis)
 *
 * and drains them back: a sampler checks the keys with extra anchors every sampleMillis;
 * a key whose streams stayed at or under `lowWater` of what one anchor fewer could carry for
 * idleMillis loses its newest extra anchor (one per sample), down to its N.
 * It owns no slots: the anchor set opens and drains anchors through its hooks.
 */
import type { Anchor } from './anchor.js';

export interface GrowthSettings {
  readonly connectTimeoutMillis: number;
  readonly backoffInitialMillis: number;
  readonly backoffMaxMillis: number;
  /** How long a key's extra anchors must have stayed under the low-water mark before one drains. */
  readonly idleMillis: number;
  readonly sampleMillis: number;
  /** The low-water mark: streams at or under this share of what one anchor fewer could carry. */
  readonly lowWater: number;
}

export const DEFAULT_GROWTH_SETTINGS: GrowthSettings = {
  connectTimeoutMillis: 10_000,
  backoffInitialMillis: 1000,
  backoffMaxMillis: 30_000,
  idleMillis: 30_000,
  sampleMillis: 1000,
  lowWater: 0.5,
};

export interface GrowthHooks<A extends Anchor> {
  /** Opens the next anchor of `key` (index = its current count), started; undefined when it may not grow. */
  open(key: string): A | undefined;
  /** Closes an extra anchor that did not make it. */
  discard(anchor: A): void;
  /** Drains the newest extra anchor of `key`. */
  shrink(key: string): void;
  /** The key's anchors now, its N, and the streams one anchor carries. */
  load(key: string): { count: number; floor: number; streams: number; capacity: number } | undefined;
}

interface KeyState<A> {
  pending?: { anchor: A; timer: NodeJS.Timeout };
  backoffMillis: number;
  backoffUntil: number;
  idleSince?: number;
}

export class AnchorGrowth<A extends Anchor> {
  #settings: GrowthSettings;
  readonly #hooks: GrowthHooks<A>;
  readonly #keys = new Map<string, KeyState<A>>();
  #sampler: NodeJS.Timeout | undefined;
  #opened = 0;
  #drained = 0;
  #failed = 0;

  constructor(settings: GrowthSettings, hooks: GrowthHooks<A>) {
    this.#settings = settings;
    this.#hooks = hooks;
  }

  /** The native policy's config can change the idle period; the next sample uses it. */
  setIdleMillis(idleMillis: number): void {
    if (idleMillis !== this.#settings.idleMillis) this.#settings = { ...this.#settings, idleMillis };
  }

  /** Extra anchors opened, drained back and failed so far. */
  counts(): { opened: number; drained: number; failed: number } {
    return { opened: this.#opened, drained: this.#drained, failed: this.#failed };
  }

  isPending(anchor: A): boolean {
    return this.#keys.get(anchor.key)?.pending?.anchor === anchor;
  }

  /** `key` is full while callers wait: open one more anchor unless one is connecting or the key backs off. */
  want(key: string): void {
    const state = this.#state(key);
    if (state.pending !== undefined || performance.now() < state.backoffUntil) return;
    const anchor = this.#hooks.open(key);
    if (anchor === undefined) return;
    this.#opened += 1;
    if (anchor.eligible) return this.#startSampling();
    const timer = setTimeout(() => this.failed(anchor), this.#settings.connectTimeoutMillis);
    timer.unref();
    state.pending = { anchor, timer };
    this.#startSampling();
  }

  /** The extra anchor connecting for its key became eligible. */
  ready(anchor: A): void {
    const state = this.#keys.get(anchor.key);
    if (state?.pending?.anchor !== anchor) return;
    clearTimeout(state.pending.timer);
    state.pending = undefined;
    state.backoffMillis = 0;
  }

  /** The extra anchor connecting for its key failed (TRANSIENT_FAILURE or the timeout): closed, the key backs off. */
  failed(anchor: A): void {
    const state = this.#keys.get(anchor.key);
    if (state?.pending?.anchor !== anchor) return;
    clearTimeout(state.pending.timer);
    state.pending = undefined;
    this.#failed += 1;
    const { backoffInitialMillis, backoffMaxMillis } = this.#settings;
    state.backoffMillis = state.backoffMillis === 0 ? backoffInitialMillis : Math.min(backoffMaxMillis, state.backoffMillis * 2);
    state.backoffUntil = performance.now() + state.backoffMillis;
    this.#opened -= 1;
    this.#hooks.discard(anchor);
  }

  /** `key` is gone or its extra anchors were drained by a change: forget its state. */
  forget(key: string): void {
    const state = this.#keys.get(key);
    if (state?.pending !== undefined) clearTimeout(state.pending.timer);
    this.#keys.delete(key);
  }

  stop(): void {
    for (const key of [...this.#keys.keys()]) this.forget(key);
    clearInterval(this.#sampler);
    this.#sampler = undefined;
  }

  #state(key: string): KeyState<A> {
    let state = this.#keys.get(key);
    if (state === undefined) {
      state = { backoffMillis: 0, backoffUntil: 0 };
      this.#keys.set(key, state);
    }
    return state;
  }

  #startSampling(): void {
    if (this.#sampler !== undefined) return;
    this.#sampler = setInterval(() => this.#sample(), this.#settings.sampleMillis);
    this.#sampler.unref();
  }

  #sample(): void {
    const now = performance.now();
    let extras = false;
    for (const [key, state] of this.#keys) {
      const load = this.#hooks.load(key);
      if (load === undefined || load.count <= load.floor) {
        state.idleSince = undefined;
        continue;
      }
      extras = true;
      const low = load.streams <= this.#settings.lowWater * (load.count - 1) * load.capacity;
      if (!low) {
        state.idleSince = undefined;
        continue;
      }
      state.idleSince ??= now;
      if (now - state.idleSince >= this.#settings.idleMillis && state.pending === undefined) {
        this.#drained += 1;
        this.#hooks.shrink(key);
      }
    }
    if (!extras) {
      clearInterval(this.#sampler);
      this.#sampler = undefined;
    }
  }
}
