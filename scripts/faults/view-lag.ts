// How far a pool's endpoint view trails etcd: every acknowledged write starts a clock for
// its key, and the clock stops when the pool's view of that key shows the written value
// (or the key's absence). A key written again before the pool caught up keeps its first
// start time, so the figure is the longest stretch any key was behind.
import type { AnchorPool } from '../../lib/index.js';

export class ViewLag {
  readonly #pool: AnchorPool;
  readonly #pending = new Map<string, { since: number; expected: string | undefined }>();
  readonly #lags: number[] = [];
  #max = 0;
  #maxKey = '';

  constructor(pool: AnchorPool) {
    this.#pool = pool;
    const settle = (e: { key: string }) => this.#settle(e.key);
    pool.on('endpoint-added', settle);
    pool.on('endpoint-removed', settle);
    pool.on('endpoint-updated', ({ after }) => settle(after));
  }

  /** etcd acknowledged a write: `expected` is `addr#anchors`, or undefined for a delete. */
  acked(key: string, expected: string | undefined): void {
    const since = this.#pending.get(key)?.since ?? Date.now();
    this.#pending.set(key, { since, expected });
    this.#settle(key);
  }

  /** A write whose outcome is unknown (its deadline passed; etcd may still apply it): stop timing the key. */
  forget(key: string): void {
    this.#pending.delete(key);
  }

  /** Longest lag so far, counting keys still behind as lagging until now. */
  get maxMillis(): number {
    const now = Date.now();
    let max = this.#max;
    for (const { since } of this.#pending.values()) max = Math.max(max, now - since);
    return max;
  }

  get maxKey(): string {
    return this.#maxKey;
  }

  /** Lags of the writes the pool caught up with, in ms. */
  get samples(): readonly number[] {
    return this.#lags;
  }

  get behind(): number {
    return this.#pending.size;
  }

  #settle(key: string): void {
    const pending = this.#pending.get(key);
    if (pending === undefined) return;
    const endpoint = this.#pool.snapshot().endpoints.get(key);
    const current = endpoint === undefined ? undefined : `${endpoint.addr}#${endpoint.anchors}`;
    if (current !== pending.expected) return;
    const lag = Date.now() - pending.since;
    this.#pending.delete(key);
    this.#lags.push(lag);
    if (lag > this.#max) {
      this.#max = lag;
      this.#maxKey = key;
    }
  }
}
