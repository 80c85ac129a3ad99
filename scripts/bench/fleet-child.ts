// One process of the fleet benchmark: a pool on the fleet's prefix. For every key the
// parent puts, it reports (over IPC) the wall-clock times the key arrived (the watch) and
// its first lease on that key was granted (after its new anchor connected); the parent
// subtracts the time of the put.
//
//   node build/scripts/bench/fleet-child.js <etcd host,…> <prefix> [leaderCheckMillis]
import { createPool, silentLogger } from '../../lib/index.js';

const [hosts, prefix, leaderCheck] = process.argv.slice(2) as [string, string, string | undefined];
const send = (message: object): void => void process.send?.(message);

const pool = createPool({ target: `etcd:///${prefix}`, etcd: { hosts: hosts.split(','), ...(leaderCheck === undefined ? {} : { leaderCheckMillis: Number(leaderCheck) }) }, logger: silentLogger, maxStreamsPerAnchor: 1000 });
/** Keys whose first lease was reported (the seed key never is). */
const reported = new Set<string>([`${prefix}seed`]);
const now = (): number => performance.timeOrigin + performance.now();

/** Leases until one lands on `key` (round robin over a few keys), then reports when. */
function leaseOn(key: string): void {
  for (let i = 0; i < 64; i++) {
    const lease = pool.tryAcquire();
    if (lease === undefined) break;
    const hit = lease.key === key;
    lease.release();
    if (hit) {
      reported.add(key);
      send({ type: 'leased', key, at: now() });
      return;
    }
  }
}

// When the watch delivered the key (discovery alone), apart from when its connection was up.
pool.on('endpoint-added', (endpoint) => send({ type: 'seen', key: endpoint.key, at: now() }));
pool.on('anchor-state', (event) => {
  if (event.state === 'READY' && !reported.has(event.key)) leaseOn(event.key);
});
process.on('message', (message: { type: string }) => {
  if (message.type === 'stop') void pool.close().then(() => process.exit(0));
});
await pool.ready({ timeoutMillis: 60_000 });
send({ type: 'ready' });
