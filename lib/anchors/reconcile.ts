/**
 * Reconcile: the pure diff from desired endpoints to anchors, by (key, index).
 *   - a new key creates anchors 0..N-1;
 *   - N growing creates the new indexes, N shrinking drains the highest ones;
 *   - a changed address drains all old anchors and creates new ones;
 *   - a deleted key drains all of its anchors.
 * Existing anchors whose (key, index, address) still stand are never touched, so they
 * keep their connections.
 */

export interface DesiredEntry {
  readonly addr: string;
  readonly anchors: number;
  /** The anchors' maximum age before a make-before-break refresh; undefined or 0: never. */
  readonly maxAgeMillis?: number;
  /** The most anchors the key may open for capacity (load-driven); undefined: exactly `anchors`. */
  readonly maxAnchors?: number;
  /** The zone the key's backend runs in (zone-aware routing); undefined: in every zone. */
  readonly zone?: string;
}

/** What is live now for one key: its address and how many anchors (indexes 0..count-1). */
export interface LiveEntry {
  readonly addr: string;
  readonly count: number;
}

export interface AnchorRef {
  readonly key: string;
  readonly index: number;
}

export interface ReconcilePlan {
  readonly create: readonly (AnchorRef & { readonly addr: string })[];
  readonly drain: readonly AnchorRef[];
}

export function reconcile(desired: ReadonlyMap<string, DesiredEntry>, live: ReadonlyMap<string, LiveEntry>): ReconcilePlan {
  const create: (AnchorRef & { addr: string })[] = [];
  const drain: AnchorRef[] = [];
  const drainRange = (key: string, from: number, to: number) => {
    for (let index = to - 1; index >= from; index--) drain.push({ key, index });
  };
  const createRange = (key: string, addr: string, from: number, to: number) => {
    for (let index = from; index < to; index++) create.push({ key, index, addr });
  };
  for (const [key, current] of live) {
    const wanted = desired.get(key);
    if (wanted === undefined || wanted.addr !== current.addr) drainRange(key, 0, current.count);
    else if (wanted.anchors < current.count) drainRange(key, wanted.anchors, current.count);
  }
  for (const [key, wanted] of desired) {
    const current = live.get(key);
    const from = current === undefined || current.addr !== wanted.addr ? 0 : current.count;
    createRange(key, wanted.addr, from, wanted.anchors);
  }
  return { create, drain };
}
