/**
 * The endpoint entries the anchored_round_robin policy keeps anchors for. From our own
 * resolver they arrive whole in its attribute; when another resolver chose the policy,
 * they are rebuilt from the endpoint list, where duplicates of an address are its anchors;
 * such entries carry no zone (another resolver cannot say one), so they count as in every zone.
 */
import type { Endpoint, SubchannelAddress } from '../grpc-js/experimental.js';
import type { ResolvedEntry } from './resolver.js';

function addressKey(address: SubchannelAddress): string {
  return 'path' in address ? `unix:${address.path}` : address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

export function entriesFromEndpoints(endpoints: readonly Endpoint[]): ResolvedEntry[] {
  const byAddress = new Map<string, ResolvedEntry>();
  for (const endpoint of endpoints) {
    const address = endpoint.addresses[0];
    if (address === undefined) continue;
    const key = addressKey(address);
    const entry = byAddress.get(key);
    byAddress.set(key, { key, addr: key, address, anchors: (entry?.anchors ?? 0) + 1 });
  }
  return [...byAddress.values()];
}
