/**
 * The channel state the anchored_round_robin policy reports, from a census of its active
 * anchors: pure, so its rules read in one place. As round_robin: READY while any anchor
 * can take a call (or every READY one is at its stream cap: calls wait for a place);
 * else CONNECTING while an anchor connects for the first time since it was READY or made,
 * or waits for its first health status (gRFC A17); else TRANSIENT_FAILURE, with a reason
 * that says whether health, ejection or connections are what is missing.
 */
import type { AnchorHealth } from '../anchors/anchor.js';
import type { SubchannelAnchor } from './subchannel-anchor.js';

export interface AnchorCensus {
  /** Places in the schedule that can take a call now. */
  readonly eligibleSlots: number;
  /** READY anchors at their stream cap. */
  readonly full: number;
  /** Anchors connecting (or IDLE) that have not failed since they were last READY. */
  readonly connecting: number;
  /** The health of the READY anchors. */
  readonly health: Readonly<Record<AnchorHealth, number>>;
  /** READY anchors ejected by outlier detection. */
  readonly ejected: number;
}

export type PolicyState = { readonly state: 'READY' } | { readonly state: 'CONNECTING' } | { readonly state: 'TRANSIENT_FAILURE'; readonly details: string };

/** `failing`: anchors that reported TRANSIENT_FAILURE since they were last READY (they retry, but count as failed). */
export function censusOf(anchors: Iterable<SubchannelAnchor>, eligibleSlots: number, failing: ReadonlySet<SubchannelAnchor>): AnchorCensus {
  const health: Record<AnchorHealth, number> = { UNCHECKED: 0, UNKNOWN: 0, SERVING: 0, NOT_SERVING: 0, SERVICE_UNKNOWN: 0 };
  let full = 0;
  let connecting = 0;
  let ejected = 0;
  for (const anchor of anchors) {
    if (anchor.state === 'READY') {
      health[anchor.health] += 1;
      if (!anchor.draining && anchor.streams >= anchor.capacity) full += 1;
      if (anchor.ejected) ejected += 1;
    } else if ((anchor.state === 'CONNECTING' || anchor.state === 'IDLE') && !failing.has(anchor)) {
      connecting += 1;
    }
  }
  return { eligibleSlots, full, connecting, health, ejected };
}

export function policyStateOf(census: AnchorCensus, policyName: string, lastError: string | null): PolicyState {
  if (census.eligibleSlots > 0 || census.full > 0) return { state: 'READY' };
  const { health } = census;
  if (census.connecting > 0 || health.UNKNOWN > 0) return { state: 'CONNECTING' };
  const unhealthy = health.NOT_SERVING + health.SERVICE_UNKNOWN;
  const reported = [health.NOT_SERVING > 0 ? 'NOT_SERVING' : '', health.SERVICE_UNKNOWN > 0 ? 'SERVICE_UNKNOWN' : ''].filter(Boolean).join(' or ');
  const details =
    census.ejected > 0 && unhealthy === 0
      ? `${policyName}: every connected backend is ejected by outlier detection (${census.ejected} anchor(s)); they return when their ejection time ends`
      : unhealthy > 0
        ? `${policyName}: no healthy backend: ${unhealthy} connected anchor(s) report ${reported}`
        : `${policyName}: no connection established${lastError ? `; last error: ${lastError}` : ''}`;
  return { state: 'TRANSIENT_FAILURE', details };
}
