/**
 * anchorpool's internal entry: for anchorpool's own scripts (bench, faults, demo) and
 * tests; NOT part of the public API, not in the package's `exports` map, and may change
 * at any time. It re-exports exactly what those scripts need beyond the public entry
 * points (index.ts, native/index.ts, pool/metrics.ts), so they never reach into other modules.
 */
export { createEtcdClient, type EtcdConnection } from './etcd/etcd-client.js';
export { DesiredState, type KeyValue } from './discovery/desired-state.js';
export { etcdOptionsSchema } from './discovery/source-options.js';
export { chooseSubset, rendezvousOrder } from './anchors/subset.js';
export { assignSubsets } from './anchors/coordinated-assignment.js';
export { DEFAULT_CLIENT_TTL_SECONDS } from './discovery/client-membership.js';
