// What etcd holds under a prefix versus what a pool believes: the endpoint set of its
// source and the anchors it keeps open. Fault scenarios (and the source specs) compare the
// two after breaking something; "lost" is in etcd but not in the pool, "phantom" the
// reverse, "stale" present in both with a different address or N.
import type { Etcd3 } from 'etcd3';
import { DEFAULT_LIMITS, parseEndpointValue, type AnchorPool, type ParseLimits } from '../lib/index.js';

export interface ViewDiff {
  readonly lost: string[];
  readonly phantom: string[];
  readonly stale: string[];
}

/** `key => addr#anchors` for every valid value under the prefix in etcd right now. */
export async function etcdTruth(client: Etcd3, prefix: string, limits: ParseLimits = DEFAULT_LIMITS): Promise<Map<string, string>> {
  const raw = await client.getAll().prefix(prefix).buffers();
  const truth = new Map<string, string>();
  for (const [key, value] of Object.entries(raw)) {
    const parsed = parseEndpointValue(key, value, limits);
    if (parsed.ok) truth.set(key, `${parsed.endpoint.addr}#${parsed.endpoint.anchors}`);
  }
  return truth;
}

export function diffViews(actual: Map<string, string>, expected: Map<string, string>): ViewDiff {
  const lost = [...expected.keys()].filter((k) => !actual.has(k));
  const phantom = [...actual.keys()].filter((k) => !expected.has(k));
  const stale = [...expected.keys()].filter((k) => actual.has(k) && actual.get(k) !== expected.get(k));
  return { lost, phantom, stale };
}

export const sameView = (diff: ViewDiff): boolean => diff.lost.length + diff.phantom.length + diff.stale.length === 0;

export const describeDiff = (diff: ViewDiff): string => `${diff.lost.length} lost, ${diff.phantom.length} phantom, ${diff.stale.length} stale`;

/** The pool's endpoint set, `key => addr#anchors`. */
export function endpointView(pool: AnchorPool): Map<string, string> {
  const view = new Map<string, string>();
  for (const [key, e] of pool.snapshot().endpoints) view.set(key, `${e.addr}#${e.anchors}`);
  return view;
}

/** The anchors the pool keeps open (draining ones excluded), as `key => addr#count`. */
export function anchorView(pool: AnchorPool): Map<string, string> {
  const counts = new Map<string, { addr: string; n: number }>();
  for (const a of pool.anchors()) {
    if (a.draining) continue;
    const entry = counts.get(a.key) ?? { addr: a.address, n: 0 };
    entry.n += 1;
    counts.set(a.key, entry);
  }
  return new Map([...counts].map(([key, { addr, n }]) => [key, `${addr}#${n}`]));
}

export interface Convergence {
  /** Endpoint set versus etcd. */
  readonly endpoints: ViewDiff;
  /** Open anchors versus etcd. */
  readonly anchors: ViewDiff;
  /** How long it took to agree, or the timeout when it never did. */
  readonly millis: number;
  readonly agreed: boolean;
}

/** Polls until the pool's endpoints and anchors both equal etcd's valid values (or the timeout). */
export async function convergePool(pool: AnchorPool, client: Etcd3, prefix: string, timeoutMillis = 15_000): Promise<Convergence> {
  const startedAt = Date.now();
  for (;;) {
    let truth: Map<string, string> | undefined;
    try {
      truth = await etcdTruth(client, prefix);
    } catch {
      // etcd briefly unavailable for the checker itself: try again
    }
    if (truth !== undefined) {
      const endpoints = diffViews(endpointView(pool), truth);
      const anchors = diffViews(anchorView(pool), truth);
      const agreed = sameView(endpoints) && sameView(anchors);
      if (agreed || Date.now() - startedAt >= timeoutMillis) return { endpoints, anchors, millis: Date.now() - startedAt, agreed };
    } else if (Date.now() - startedAt >= timeoutMillis) {
      return { endpoints: { lost: ['(etcd unreadable)'], phantom: [], stale: [] }, anchors: { lost: [], phantom: [], stale: [] }, millis: Date.now() - startedAt, agreed: false };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
