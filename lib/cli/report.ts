/**
 * What `status` and `watch` show: per key its address, wanted anchors (N, or N-M for a key
 * that may grow to M when all of its anchors are full), its zone (a ZONE column, shown when
 * any key has one) and (when the anchors were dialled)
 * how many are in each state, how many of the active ones are extra (above N) and, with
 * health checks, what their health checks said; the invalid keys with their reason;
 * the etcd revision and connection; with a subset, why each key is in one client's
 * subset (SUBSET), or how many coordinated clients keep it (CLIENTS) and the clients.
 * Built from a source snapshot or a pool, rendered as a table or as JSON.
 */
import type { AnchorInfo, PoolStats } from '../pool/pool.js';
import type { EndpointSnapshot, SourceStatus } from '../discovery/source.js';

export interface KeyReport {
  key: string;
  addr: string;
  anchors: number;
  /** The most anchors the key may open when all of its are full; absent when it keeps exactly `anchors`. */
  maxAnchors?: number;
  format: string;
  /** The zone its value names; absent when it names none. */
  zone?: string;
  /** Anchors by state, when they were dialled (--connect / watch). */
  states?: { READY: number; CONNECTING: number; IDLE: number; TRANSIENT_FAILURE: number; DRAINING: number };
  /** Active anchors opened above `anchors` for load, when they were dialled. */
  extra?: number;
  /** Its READY anchors by health, when health was checked (--health). */
  health?: { SERVING: number; NOT_SERVING: number; SERVICE_UNKNOWN: number; UNKNOWN: number; UNCHECKED: number };
  /** With --subset-size --client-id: whether this client keeps anchors to it, and why ('-': not in its subset). */
  subset?: string;
  /** With --subset-mode coordinated and no --client-id: how many of the registered clients keep it in their subset. */
  clients?: number;
}

/** A client registered under the clients prefix (coordinated subsets), with its place and its subset. */
export interface ClientReport {
  clientId: string;
  /** What its value says (null when it does not say). */
  host: string | null;
  pid: number | null;
  since: string | null;
  /** Its place among the sorted ids, from 0. */
  rank: number;
  /** The keys of its subset, every key counted as serving (status dials nothing). */
  keys: readonly string[];
}

/**
 * With --subset-size: the subset shown. Rendezvous, or coordinated for one client:
 * `clientId` and `keys` (how many keys it keeps; the SUBSET column says which).
 * Coordinated: `clientsPrefix` and `clients` (the count the ring is divided by), and for
 * one client its `rank` and whether it is `registered` (counted at its sorted place when
 * not). Coordinated without a client: no `clientId`, a CLIENTS column, and the report's
 * `clients` lists them.
 */
export interface SubsetSummary {
  size: number;
  mode: 'rendezvous' | 'coordinated';
  clientId?: string;
  keys?: number;
  clientsPrefix?: string;
  rank?: number;
  clients?: number;
  registered?: boolean;
}

export interface StatusReport {
  target: string;
  revision: number;
  etcd: {
    connected: boolean;
    disconnectedSince: string | null;
    lastError: string | null;
    /** The hosts the client dials now; they differ from the target's when auto-sync followed the member list. Null for pass:///. */
    hosts: string[] | null;
    /** The latest re-listing after the first, and why (reconnect, no-leader, members-changed, watchdog, …). */
    lastResync: { reason: string; at: string } | null;
  };
  endpoints: KeyReport[];
  invalid: { key: string; reason: string; keptPrevious: boolean }[];
  /** Keys with no READY anchor after dialling. */
  unreachable: string[];
  /** Keys with READY anchors of which none is healthy (SERVING, or without a health service), when health was checked. */
  unhealthy: string[];
  /** With --subset-size: which subset is shown (see SubsetSummary). */
  subset?: SubsetSummary;
  /** With --subset-mode coordinated and no --client-id: the registered clients, by rank. */
  clients?: ClientReport[];
}

export function reportFromSnapshot(snapshot: EndpointSnapshot, status: SourceStatus): StatusReport {
  return {
    target: status.target,
    revision: snapshot.revision,
    etcd: {
      connected: status.connected,
      disconnectedSince: status.disconnectedSince?.toISOString() ?? null,
      lastError: status.lastError,
      hosts: status.etcdHosts === undefined ? null : [...status.etcdHosts],
      lastResync: status.lastResync === null ? null : { reason: status.lastResync.reason, at: status.lastResync.at.toISOString() },
    },
    endpoints: [...snapshot.endpoints.values()].map((e) => ({
      key: e.key,
      addr: e.addr,
      anchors: e.anchors,
      ...(e.maxAnchors !== undefined && { maxAnchors: e.maxAnchors }),
      format: e.format,
      ...(e.zone !== undefined && { zone: e.zone }),
    })),
    invalid: [...snapshot.invalid.values()].map((r) => ({ key: r.key, reason: r.reason, keptPrevious: r.keptPrevious })),
    unreachable: [],
    unhealthy: [],
  };
}

/**
 * Marks each key with why it is in the client's subset (`why` of each key in it; '-' for
 * the others). `coordination`: a coordinated client's place among the clients.
 */
export function withSubset(
  report: StatusReport,
  subset: { size: number; mode: 'rendezvous' | 'coordinated'; clientId: string; keys: readonly { key: string; why: string }[] },
  coordination?: { clientsPrefix: string; rank: number; clients: number; registered: boolean },
): StatusReport {
  const why = new Map(subset.keys.map((k) => [k.key, k.why]));
  return {
    ...report,
    endpoints: report.endpoints.map((e) => ({ ...e, subset: why.get(e.key) ?? '-' })),
    subset: { size: subset.size, mode: subset.mode, clientId: subset.clientId, keys: subset.keys.length, ...coordination },
  };
}

/** Coordinated, no client named: per key how many registered clients keep it (`counts`), and the clients. */
export function withFleet(report: StatusReport, subset: { size: number; clientsPrefix: string }, counts: ReadonlyMap<string, number>, clients: ClientReport[]): StatusReport {
  return {
    ...report,
    endpoints: report.endpoints.map((e) => ({ ...e, clients: counts.get(e.key) ?? 0 })),
    subset: { size: subset.size, mode: 'coordinated', clientsPrefix: subset.clientsPrefix, clients: clients.length },
    clients,
  };
}

/** Adds anchor states (and, when `healthChecked`, the READY anchors' health) from a pool to a snapshot report. */
export function withAnchorStates(report: StatusReport, anchors: readonly AnchorInfo[], stats: PoolStats, healthChecked = false): StatusReport {
  const endpoints = report.endpoints.map((entry) => {
    const states = { READY: 0, CONNECTING: 0, IDLE: 0, TRANSIENT_FAILURE: 0, DRAINING: 0 };
    const health = { SERVING: 0, NOT_SERVING: 0, SERVICE_UNKNOWN: 0, UNKNOWN: 0, UNCHECKED: 0 };
    let extra = 0;
    for (const a of anchors) {
      if (a.key !== entry.key) continue;
      if (a.draining) states.DRAINING += 1;
      else if (a.state !== 'SHUTDOWN') states[a.state] += 1;
      if (!a.draining && a.state === 'READY') health[a.health] += 1;
      if (!a.draining && a.extra) extra += 1;
    }
    return healthChecked ? { ...entry, states, extra, health } : { ...entry, states, extra };
  });
  return {
    ...report,
    revision: stats.source.revision,
    endpoints,
    // With a subset, only the keys in it have anchors to reach.
    unreachable: endpoints.filter((e) => e.states.READY === 0 && (e.subset === undefined || e.subset !== '-')).map((e) => e.key),
    unhealthy: endpoints.filter((e) => e.health !== undefined && e.states.READY > 0 && e.health.SERVING + e.health.UNCHECKED === 0).map((e) => e.key),
  };
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}

/** The line above the table that says which subset the SUBSET (or CLIENTS) column shows. */
function subsetLine(subset: SubsetSummary, endpoints: readonly KeyReport[]): string {
  const where = `${subset.clients} client(s) under ${subset.clientsPrefix}`;
  if (subset.clientId === undefined) {
    const counts = endpoints.map((e) => e.clients ?? 0);
    const low = Math.min(...counts);
    const high = Math.max(...counts);
    const spread = counts.length === 0 ? '' : `; each key in ${low === high ? low : `${low} to ${high}`} of their subsets`;
    return `subset: size ${subset.size}, coordinated among ${where}${spread} (CLIENTS column; --client-id ID for one client's keys)`;
  }
  const head = `subset: ${subset.keys} of ${endpoints.length} keys for client ${subset.clientId} (size ${subset.size}, ${subset.mode}`;
  if (subset.mode !== 'coordinated') return `${head})`;
  const absent = subset.registered ? '' : `, counting ${subset.clientId} there although it is not registered`;
  return `${head}: rank ${subset.rank} of ${where}${absent})`;
}

export function renderReport(report: StatusReport): string[] {
  const etcd = report.etcd.connected ? 'connected' : `DISCONNECTED${report.etcd.disconnectedSince ? ` since ${report.etcd.disconnectedSince}` : ''}`;
  const lines = [`${report.target}  revision ${report.revision}  (${etcd})`];
  if (!report.etcd.connected && report.etcd.lastError) lines.push(`  last error: ${report.etcd.lastError}`);
  const hosts = report.etcd.hosts;
  if (hosts !== null && !report.target.startsWith(`etcd://${hosts.join(',')}/`)) lines.push(`  etcd members now: ${hosts.join(',')} (auto-sync followed the member list)`);
  if (report.etcd.lastResync) lines.push(`  last resync: ${report.etcd.lastResync.reason} at ${report.etcd.lastResync.at}`);
  const dialled = report.endpoints.some((e) => e.states !== undefined);
  const checked = report.endpoints.some((e) => e.health !== undefined);
  // Only a key with a range can have extra anchors: the column is there when one has.
  const growable = dialled && report.endpoints.some((e) => e.maxAnchors !== undefined);
  // Likewise the ZONE column, when any key names a zone ('-' for the keys that do not).
  const zoned = report.endpoints.some((e) => e.zone !== undefined);
  const subsetted = report.subset?.clientId !== undefined;
  const fleet = report.clients !== undefined;
  const header = [
    'KEY',
    'ADDRESS',
    'ANCHORS',
    'FORMAT',
    ...(zoned ? ['ZONE'] : []),
    ...(dialled ? ['READY', 'CONNECTING', 'FAILED', 'DRAINING'] : []),
    ...(growable ? ['EXTRA'] : []),
    ...(checked ? ['SERVING', 'NOT_SERVING', 'UNKNOWN', 'NO_HEALTH_SVC'] : []),
    ...(subsetted ? ['SUBSET'] : []),
    ...(fleet ? ['CLIENTS'] : []),
  ];
  const rows = report.endpoints.map((e) => [
    e.key,
    e.addr,
    e.maxAnchors === undefined ? String(e.anchors) : `${e.anchors}-${e.maxAnchors}`,
    e.format,
    ...(zoned ? [e.zone ?? '-'] : []),
    ...(e.states ? [String(e.states.READY), String(e.states.CONNECTING + e.states.IDLE), String(e.states.TRANSIENT_FAILURE), String(e.states.DRAINING)] : []),
    ...(growable ? [e.maxAnchors === undefined ? '-' : String(e.extra ?? 0)] : []),
    ...(e.health ? [String(e.health.SERVING), String(e.health.NOT_SERVING + e.health.SERVICE_UNKNOWN), String(e.health.UNKNOWN), String(e.health.UNCHECKED)] : []),
    ...(subsetted ? [e.subset ?? '-'] : []),
    ...(fleet ? [String(e.clients ?? 0)] : []),
  ]);
  lines.push(
    `${report.endpoints.length} endpoint(s), ${report.invalid.length} invalid${dialled ? `, ${report.unreachable.length} unreachable` : ''}${checked ? `, ${report.unhealthy.length} unhealthy` : ''}`,
  );
  if (report.subset) lines.push(subsetLine(report.subset, report.endpoints));
  if (rows.length > 0) lines.push(...table([header, ...rows]));
  for (const r of report.invalid) lines.push(`INVALID ${r.key}: ${r.reason}${r.keptPrevious ? ' (serving its last valid value)' : ''}`);
  for (const key of report.unreachable) lines.push(`UNREACHABLE ${key}: no anchor is READY`);
  for (const key of report.unhealthy) lines.push(`UNHEALTHY ${key}: no READY anchor reports SERVING`);
  if (report.clients !== undefined && report.clients.length > 0) {
    lines.push(...table([['CLIENT', 'HOST', 'PID', 'SINCE'], ...report.clients.map((c) => [c.clientId, c.host ?? '-', c.pid === null ? '-' : String(c.pid), c.since ?? '-'])]));
  }
  return lines;
}
