/**
 * Prometheus metrics for a pool, on prom-client. Gauges and counters are read from the
 * pool's stats() when scraped, so the lease path pays nothing for them; only the
 * acquire-wait histogram is fed as leases are granted (and only once metrics are on).
 *
 *   anchorpool_endpoints                 endpoint entries (valid keys)
 *   anchorpool_invalid_keys              keys whose value is invalid
 *   anchorpool_anchors{state}            anchors by state (IDLE, CONNECTING, READY,
 *                                        TRANSIENT_FAILURE) and state="DRAINING"
 *   anchorpool_anchors_health{health}    active anchors by health (UNCHECKED, UNKNOWN,
 *                                        SERVING, NOT_SERVING, SERVICE_UNKNOWN)
 *   anchorpool_anchors_eligible          active anchors that can take a lease now
 *   anchorpool_anchors_wanted            sum of N over the entries with anchors (the subset, with subset on)
 *   anchorpool_leases_held               leases currently held
 *   anchorpool_leases_acquired_total     leases handed out
 *   anchorpool_acquire_wait_seconds      time from acquire() to a lease (histogram)
 *   anchorpool_waiters                   callers waiting for a lease
 *   anchorpool_acquire_timeouts_total    acquires that timed out
 *   anchorpool_endpoints_ejected         entries ejected by outlier detection now
 *   anchorpool_ejections_total           outlier ejections
 *   anchorpool_anchors_extra             anchors open above their keys' N (maxAnchors)
 *   anchorpool_anchor_refreshes_total    anchors replaced at their maximum age
 *   anchorpool_resyncs_total             re-listings of the etcd prefix
 *   anchorpool_etcd_connected            1 while connected to etcd (static targets: 1)
 */
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import type { Counter, Gauge, Registry } from 'prom-client';
import { ConfigError } from '../core/errors.js';

type PromClient = typeof import('prom-client');

/** prom-client is an optional peer dependency, loaded on first use, not when anchorpool is imported. */
function promClient(): PromClient {
  try {
    return createRequire(import.meta.url)('prom-client') as PromClient;
  } catch (err) {
    throw new ConfigError('metrics need the optional peer dependency prom-client: npm install prom-client', { cause: err });
  }
}

/** What the metrics read from a pool. */
export interface MetricsSource {
  stats(): {
    endpoints: number;
    invalid: readonly unknown[];
    anchors: { wanted: number; draining: number; byState: Record<string, number>; byHealth: Record<string, number>; eligible: number };
    leased: number;
    waiting: number;
    acquired: number;
    timeouts: number;
    ejected: readonly string[];
    ejections: number;
    extraAnchors: { open: number };
    refreshes: { done: number };
    liveness: { pings: number; frozen: number; connectTimeouts: number };
    zones: { zones: readonly { zone: string; healthy: number; share: number; picks: number }[] } | undefined;
    slowStart: readonly { key: string; factor: number }[];
    subset: { keys: readonly unknown[]; offered: number; coordination?: { clients: number } | undefined } | undefined;
    source: { connected: boolean; resyncs: number };
  };
  /** Calls `observer` with the wait of every granted lease, in seconds; returns the unsubscribe function. */
  observeWaits(observer: (seconds: number) => void): () => void;
}

/** A counter that follows a monotonically growing number read at scrape time. */
function followingCounter(prom: PromClient, registry: Registry, name: string, help: string, read: () => number): Counter {
  let seen = 0;
  return new prom.Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read();
      if (now > seen) this.inc(now - seen);
      seen = now;
    },
  });
}

function gauge(prom: PromClient, registry: Registry, name: string, help: string, read: () => number): Gauge {
  return new prom.Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/**
 * Registers a pool's series in `registry` (a new one when omitted) and returns it. A
 * registry that already holds anchorpool series (of another pool) is refused with a
 * ConfigError: prom-client allows one series per name, so give each pool its own
 * registry (Registry.merge() combines them for one /metrics).
 */
export function registerPoolMetrics(pool: MetricsSource, given?: Registry): Registry {
  const prom = promClient();
  const registry = given ?? new prom.Registry();
  if (registry.getSingleMetric('anchorpool_endpoints') !== undefined) {
    throw new ConfigError('pool.metrics(): this registry already holds anchorpool series of another pool; give each pool its own registry');
  }
  // One stats() per scrape, shared by every series.
  let cached: ReturnType<MetricsSource['stats']> | undefined;
  let cachedAt = -1;
  const stats = () => {
    const now = Date.now();
    if (cached === undefined || now - cachedAt > 50) {
      cached = pool.stats();
      cachedAt = now;
    }
    return cached;
  };
  gauge(prom, registry, 'anchorpool_endpoints', 'Endpoint entries (valid keys) under the watched prefix.', () => stats().endpoints);
  gauge(prom, registry, 'anchorpool_invalid_keys', 'Keys under the prefix whose value is invalid.', () => stats().invalid.length);
  gauge(prom, registry, 'anchorpool_anchors_wanted', 'Sum of the anchor counts of the entries the pool keeps anchors to (its subset, with subset on).', () => stats().anchors.wanted);
  new prom.Gauge({
    name: 'anchorpool_anchors',
    help: 'Anchored connections by state; state="DRAINING" counts anchors being drained.',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const { byState, draining } = stats().anchors;
      for (const [state, count] of Object.entries(byState)) this.set({ state }, count);
      this.set({ state: 'DRAINING' }, draining);
    },
  });
  new prom.Gauge({
    name: 'anchorpool_anchors_health',
    help: 'Active anchors by health: UNCHECKED (no health checks), UNKNOWN (no status yet), SERVING, NOT_SERVING, SERVICE_UNKNOWN.',
    labelNames: ['health'],
    registers: [registry],
    collect() {
      for (const [health, count] of Object.entries(stats().anchors.byHealth)) this.set({ health }, count);
    },
  });
  gauge(prom, registry, 'anchorpool_anchors_eligible', 'Active anchors that can take a lease now (READY, healthy, below their capacity).', () => stats().anchors.eligible);
  gauge(prom, registry, 'anchorpool_leases_held', 'Leases currently held.', () => stats().leased);
  followingCounter(prom, registry, 'anchorpool_leases_acquired_total', 'Leases handed out.', () => stats().acquired);
  gauge(prom, registry, 'anchorpool_waiters', 'Callers waiting for a lease.', () => stats().waiting);
  followingCounter(prom, registry, 'anchorpool_acquire_timeouts_total', 'Acquires that timed out.', () => stats().timeouts);
  gauge(prom, registry, 'anchorpool_endpoints_ejected', 'Endpoint entries ejected by outlier detection now.', () => stats().ejected.length);
  followingCounter(prom, registry, 'anchorpool_ejections_total', 'Outlier ejections since the pool started.', () => stats().ejections);
  gauge(prom, registry, 'anchorpool_anchors_extra', "Anchors open above their keys' N, for capacity (maxAnchors).", () => stats().extraAnchors.open);
  followingCounter(prom, registry, 'anchorpool_anchor_refreshes_total', 'Anchors replaced by a new connection at their maximum age.', () => stats().refreshes.done);
  followingCounter(prom, registry, 'anchorpool_liveness_pings_total', 'HTTP/2 pings sent to connections that went silent while streams waited.', () => stats().liveness.pings);
  followingCounter(prom, registry, 'anchorpool_connections_frozen_total', 'Connections dropped because a ping went unanswered (a frozen or black-holed backend).', () => stats().liveness.frozen);
  followingCounter(prom, registry, 'anchorpool_connect_timeouts_total', 'Connection attempts given up at connectTimeoutMillis.', () => stats().liveness.connectTimeouts);
  const seenByZone = new Map<string, number>();
  new prom.Counter({
    name: 'anchorpool_leases_by_zone_total',
    help: "Leases granted per zone (zone-aware routing, with the pool's zone set; keys without a zone count in the pool's own).",
    labelNames: ['zone'],
    registers: [registry],
    collect() {
      for (const { zone, picks } of stats().zones?.zones ?? []) {
        const seen = seenByZone.get(zone) ?? 0;
        if (picks > seen) this.inc({ zone }, picks - seen);
        seenByZone.set(zone, picks);
      }
    },
  });
  new prom.Gauge({
    name: 'anchorpool_zone_share',
    help: "The share of new leases each zone gets now, from 0 to 1 (zone-aware routing, with the pool's zone set).",
    labelNames: ['zone'],
    registers: [registry],
    collect() {
      for (const { zone, share } of stats().zones?.zones ?? []) this.set({ zone }, share);
    },
  });
  gauge(prom, registry, 'anchorpool_subset_clients', 'Coordinated subsets: the clients this pool counts under its clients prefix in etcd, itself included (0 otherwise).', () => stats().subset?.coordination?.clients ?? 0);
  gauge(prom, registry, 'anchorpool_subset_keys', "Keys this pool keeps anchors to (subset on; every key's count otherwise: anchorpool_endpoints).", () => stats().subset?.keys.length ?? stats().endpoints);
  gauge(prom, registry, 'anchorpool_slow_start_keys', 'Keys whose share is ramping up now (slowStart).', () => stats().slowStart.length);
  followingCounter(prom, registry, 'anchorpool_resyncs_total', 'Re-listings of the etcd prefix after a watch break.', () => stats().source.resyncs);
  gauge(prom, registry, 'anchorpool_etcd_connected', '1 while connected to etcd, 0 while not.', () => (stats().source.connected ? 1 : 0));
  const wait = new prom.Histogram({
    name: 'anchorpool_acquire_wait_seconds',
    help: 'Time from acquire() to a granted lease.',
    buckets: [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  pool.observeWaits((seconds) => wait.observe(seconds));
  return registry;
}

/** Serves `registry` at http://host:port/metrics. Resolves once listening. */
export async function serveMetrics(registry: Registry, port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404).end('not found; metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (body) => response.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (err: unknown) => response.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
