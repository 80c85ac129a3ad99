// Counting this process's TCP connections with `ss` (spec/etcd-connections.spec.ts and
// its long-outage part in spec/e2e/): etcd dials its own client port too, so only
// connections owned by this pid count.
import { execFileSync } from 'node:child_process';

/** Established TCP connections from this process to 127.0.0.1:port. */
export function ourConnections(port: number): number {
  const lines = execFileSync('ss', ['-tnpH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
  return lines.split('\n').filter((line) => line.includes(`pid=${process.pid},`)).length;
}
