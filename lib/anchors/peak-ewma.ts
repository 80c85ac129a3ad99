/**
 * PeakEwma: an anchor's latency estimate for `pick: 'peak-ewma'`, after Finagle's
 * PeakEwma load metric (the one Linkerd and go-zero also use).
 *
 *   - A call slower than the estimate sets it at once (the peak): a backend that turns
 *     slow loses its draws from its first slow call.
 *   - A faster call pulls it down by a weight that grows with the time since the last
 *     call: w = exp(-Δt / τ), estimate = estimate·w + latency·(1 − w), τ = 2 s. The
 *     estimate follows the calls of the last τ or so, however many there are.
 *   - While no call ends on the anchor the estimate decays towards 0 by the same factor
 *     (read lazily). This is how a backend that was slow and recovered wins its share
 *     back: once its stale estimate has decayed below the others' cost it is drawn again
 *     and measured. From 50 ms against 5 ms backends that takes τ·ln(50/5) ≈ 4.6 s at most
 *     (less while the others have calls in flight); a backend that is still slow sets its
 *     peak again with that one call.
 *
 * A call that failed (one of the default failure codes of call-outcome.ts: UNAVAILABLE,
 * DEADLINE_EXCEEDED, …) counts as taking at least twice the estimate: a backend that fails
 * fast must not look fast. A cancelled call is not measured (the caller chose its length).
 *
 * The cost compared between two anchors is estimate × (calls in flight + 1). An anchor
 * with no call measured yet costs 0 while idle and a large penalty while busy: it gets one
 * call, whose latency then speaks for it (Finagle treats a new node the same way).
 */

/**
 * τ, the decay time of the estimate, in milliseconds. Finagle and go-zero default to 10 s;
 * we measured that one stall of a fast backend (a GC pause, a busy client) then keeps its
 * estimate up for τ·ln(stall / latency), tens of seconds on a loaded machine, long enough
 * for a 50 ms backend to win draws against 5 ms ones (6–9% of calls at 4 callers, against
 * ~1% with 2 s). See docs/decisions.md, 2026-12-07.
 */
export const PEAK_EWMA_DECAY_MILLIS = 2_000;

/** The cost of an anchor with no measured call but calls in flight, per call: above any real latency. */
const UNMEASURED_PENALTY_MILLIS = 1_000_000;

export class PeakEwma {
  #estimate = 0;
  /** performance.now() of the last call measured; -1: none yet. */
  #stamp = -1;

  get measured(): boolean {
    return this.#stamp >= 0;
  }

  /** A call took `millis`, and ended at `now` (performance.now()); `failed`: with a failure code. */
  observe(millis: number, now: number, failed = false): void {
    const latency = failed ? Math.max(millis, 2 * this.estimate(now)) : Math.max(0, millis);
    if (this.#stamp < 0) {
      this.#estimate = latency;
    } else {
      const w = Math.exp(-Math.max(0, now - this.#stamp) / PEAK_EWMA_DECAY_MILLIS);
      const decayed = this.#estimate * w;
      this.#estimate = latency > decayed ? latency : decayed + latency * (1 - w);
    }
    this.#stamp = now;
  }

  /** The estimate at `now`, in milliseconds; 0 before the first call. */
  estimate(now: number): number {
    if (this.#stamp < 0) return 0;
    return this.#estimate * Math.exp(-Math.max(0, now - this.#stamp) / PEAK_EWMA_DECAY_MILLIS);
  }

  /** What a pick compares: the estimate × (streams in flight + 1). */
  cost(streams: number, now: number): number {
    if (this.#stamp < 0) return streams === 0 ? 0 : UNMEASURED_PENALTY_MILLIS * streams;
    return this.estimate(now) * (streams + 1);
  }
}
