// What the chart shows, sampled about 4 times a second: per anchor its zone, its state, its health
// (what the pool's grpc.health.v1 Watch last heard), whether outlier detection ejected it,
// whether it is an extra anchor (opened above its key's N for load), and the leases per
// second handed out on it (deltas of pool.anchors()[i].acquired), per backend its zone and
// the connections and calls its server counts, per zone the pool's routing (its anchors in
// rotation, its share now) and the leases granted in it per second (deltas of
// pool.stats().zones picks), and the totals. Rates are taken over the
// last second of samples, so bars move smoothly yet follow a change within a second. An
// anchor that just closed stays one more moment as a CLOSED row, so the eye sees it go.
import type { AnchorInfo, AnchorPool, AnchorState, PoolStats } from '../../lib/index.js';
import type { Backend, BackendStats } from '../../testkit/echo/backend.js';
import type { Load } from './load.js';

/** 'SERVING', 'NOT_SERVING', … (lib/index.ts exports the type only as AnchorInfo's field). */
export type AnchorHealth = AnchorInfo['health'];
/** 'local', 'spill', 'panic', 'no-local' or 'none' (see pool.stats().zones). */
export type ZoneMode = NonNullable<PoolStats['zones']>['mode'];

export const RATE_WINDOW_MILLIS = 1000;
const CLOSED_ROW_MILLIS = 1500;
/** A backend that does not answer this fast keeps its last numbers for this frame. */
const STATS_TIMEOUT_MILLIS = 200;

export interface AnchorRow {
  key: string;
  anchor: number;
  address: string;
  /** The zone its key's value names; undefined: none (the key counts as in every zone). */
  zone: string | undefined;
  state: AnchorState | 'CLOSED';
  health: AnchorHealth;
  /** Its key is ejected by outlier detection (no new leases until the pool returns it). */
  ejected: boolean;
  /** Opened above its key's N because every anchor of the key was full (`maxAnchors`); drained back when the load falls. */
  extra: boolean;
  /** May take a lease now (READY, healthy, not ejected, not draining, below its cap). */
  eligible: boolean;
  draining: boolean;
  leased: number;
  /** Leases per second over the last RATE_WINDOW_MILLIS. */
  rate: number;
}

export interface BackendRow {
  name: string;
  address: string;
  /** The zone its anchors' key names (the last one seen, once it has no anchors); undefined: none or not registered yet. */
  zone: string | undefined;
  pid: number | undefined;
  running: boolean;
  /** Active (not draining) anchors of the pool at this address. */
  anchors: number;
  /** TCP connections the server holds; undefined when it could not be asked. */
  connections: number | undefined;
  /** Calls per second counted by the server. */
  rate: number;
  calls: number;
}

export interface Frame {
  /** Milliseconds since the load started. */
  elapsed: number;
  calls: number;
  callRate: number;
  errors: number;
  lastError: string | undefined;
  endpoints: number;
  invalid: readonly { key: string; reason: string }[];
  active: number;
  ready: number;
  /** Active anchors that may take a lease now: READY and healthy. */
  eligible: number;
  draining: number;
  /** Extra anchors open now (pool.stats().extraAnchors.open). */
  extra: number;
  leased: number;
  waiting: number;
  /** Loops of a load burst running now, besides the steady ones. */
  burstLoops: number;
  etcd: { connected: boolean; revision: number; lastError: string | null };
  anchors: AnchorRow[];
  backends: BackendRow[];
  /** Zone-aware routing; undefined when the pool names no zone. */
  zones: ZoneFrame | undefined;
}

export interface ZoneRow {
  zone: string;
  /** Anchor slots of the zone's keys (the sum of their N), and of those the slots in rotation now. */
  total: number;
  healthy: number;
  /** The share of the picks the pool gives the zone now, from 0 to 1. */
  share: number;
  /** Leases granted in the zone since the pool started, and per second over the last second. */
  picks: number;
  rate: number;
}

export interface ZoneFrame {
  /** The pool's own zone. */
  local: string;
  mode: ZoneMode;
  /** The pool's zone first, then by name; a zone whose keys are gone stays while its rate falls to 0. */
  rows: ZoneRow[];
}

/** Counter samples over a sliding window; a counter that went down started over. */
class Rate {
  #points: { t: number; n: number }[] = [];

  add(t: number, n: number): void {
    const last = this.#points.at(-1);
    if (last !== undefined && n < last.n) this.#points = [];
    this.#points.push({ t, n });
    // Keep one point at or before the window's start, so the span covers the whole window.
    while (this.#points.length > 2 && this.#points[1]!.t <= t - RATE_WINDOW_MILLIS) this.#points.shift();
  }

  get perSecond(): number {
    const first = this.#points[0];
    const last = this.#points.at(-1);
    if (first === undefined || last === undefined || last.t <= first.t) return 0;
    return ((last.n - first.n) * 1000) / (last.t - first.t);
  }
}

const byKeyThenIndex = (a: AnchorRow, b: AnchorRow): number =>
  a.key !== b.key ? (a.key < b.key ? -1 : 1) : a.anchor - b.anchor || Number(a.state === 'CLOSED') - Number(b.state === 'CLOSED') || Number(a.draining) - Number(b.draining);

export class Sampler {
  readonly #pool: AnchorPool;
  readonly #backends: () => readonly Backend[];
  readonly #load: Load;
  readonly #startedAt: number;
  readonly #anchorRates = new Map<string, Rate>();
  readonly #backendRates = new Map<string, Rate>();
  readonly #backendStats = new Map<string, BackendStats>();
  readonly #callRate = new Rate();
  readonly #zoneRates = new Map<string, Rate>();
  /** Every zone's leases granted so far, kept once its keys are gone (the pool then no longer reports it). */
  readonly #zonePicks = new Map<string, number>();
  /** Each backend's zone, by address, as its anchors last showed it. */
  readonly #backendZones = new Map<string, string | undefined>();
  #previous = new Map<string, AnchorRow>();
  readonly #closed = new Map<string, { row: AnchorRow; since: number }>();

  constructor(pool: AnchorPool, backends: () => readonly Backend[], load: Load, startedAt: number) {
    this.#pool = pool;
    this.#backends = backends;
    this.#load = load;
    this.#startedAt = startedAt;
  }

  async sample(): Promise<Frame> {
    const backends = this.#backends();
    // Ask the servers first (IPC), then read the pool, so the two are as close in time as possible.
    const stats = await Promise.all(backends.map((b) => this.#statsOf(b)));
    const now = Date.now();
    const poolStats = this.#pool.stats();
    const anchors = this.#anchorRows(now);
    this.#callRate.add(now, this.#load.calls);
    for (const a of anchors) if (a.state !== 'CLOSED' && !a.draining) this.#backendZones.set(a.address, a.zone);

    const backendRows = backends.map((b, i): BackendRow => {
      const s = stats[i];
      if (s !== undefined) this.#backendStats.set(b.name, s);
      const known = this.#backendStats.get(b.name);
      let rate = this.#backendRates.get(b.name);
      if (rate === undefined) this.#backendRates.set(b.name, (rate = new Rate()));
      if (known !== undefined) rate.add(now, known.calls);
      return {
        name: b.name,
        address: b.address,
        zone: this.#backendZones.get(b.address),
        pid: b.pid,
        running: b.running,
        anchors: anchors.filter((a) => a.address === b.address && a.state !== 'CLOSED' && !a.draining).length,
        connections: b.running ? known?.connections.length : undefined,
        rate: b.running ? rate.perSecond : 0,
        calls: known?.calls ?? 0,
      };
    });

    return {
      elapsed: now - this.#startedAt,
      calls: this.#load.calls,
      callRate: this.#callRate.perSecond,
      errors: this.#load.errors,
      lastError: this.#load.lastError,
      endpoints: poolStats.endpoints,
      invalid: poolStats.invalid,
      active: poolStats.anchors.active,
      ready: poolStats.anchors.byState.READY,
      eligible: poolStats.anchors.eligible,
      draining: poolStats.anchors.draining,
      extra: poolStats.extraAnchors.open,
      leased: poolStats.leased,
      waiting: poolStats.waiting,
      burstLoops: this.#load.burstLoops,
      etcd: { connected: poolStats.source.connected, revision: poolStats.source.revision, lastError: poolStats.source.lastError },
      anchors,
      backends: backendRows,
      zones: this.#zoneFrame(poolStats.zones, now),
    };
  }

  /** Leases granted in each zone over the whole run so far (from the last sample). */
  zoneTotals(): { zone: string; picks: number }[] {
    return [...this.#zonePicks].map(([zone, picks]) => ({ zone, picks }));
  }

  #zoneFrame(report: PoolStats['zones'], now: number): ZoneFrame | undefined {
    if (report === undefined) return undefined;
    const rows: ZoneRow[] = [];
    const reported = new Set<string>();
    for (const z of report.zones) {
      reported.add(z.zone);
      this.#zonePicks.set(z.zone, z.picks);
      let rate = this.#zoneRates.get(z.zone);
      if (rate === undefined) this.#zoneRates.set(z.zone, (rate = new Rate()));
      rate.add(now, z.picks);
      rows.push({ zone: z.zone, total: z.total, healthy: z.healthy, share: z.share, picks: z.picks, rate: rate.perSecond });
    }
    // A zone whose keys were deleted: no picks any more; shown until its rate is 0.
    for (const [zone, rate] of this.#zoneRates) {
      if (reported.has(zone)) continue;
      rate.add(now, this.#zonePicks.get(zone) ?? 0);
      if (rate.perSecond > 0) rows.push({ zone, total: 0, healthy: 0, share: 0, picks: this.#zonePicks.get(zone) ?? 0, rate: rate.perSecond });
    }
    const local = report.local;
    rows.sort((a, b) => (a.zone === local ? -1 : b.zone === local ? 1 : a.zone.localeCompare(b.zone)));
    return { local, mode: report.mode, rows };
  }

  #anchorRows(now: number): AnchorRow[] {
    const current = new Map<string, AnchorRow>();
    for (const info of this.#pool.anchors()) {
      // An anchor and its drained predecessor can share a slot and address for a moment.
      let id = `${info.key}#${info.anchor}@${info.address}`;
      if (current.has(id)) id += '~draining';
      let rate = this.#anchorRates.get(id);
      if (rate === undefined) this.#anchorRates.set(id, (rate = new Rate()));
      rate.add(now, info.acquired);
      current.set(id, {
        key: info.key,
        anchor: info.anchor,
        address: info.address,
        zone: info.zone,
        state: info.state,
        health: info.health,
        ejected: info.ejected,
        extra: info.extra,
        eligible: info.eligible,
        draining: info.draining,
        leased: info.leased,
        rate: rate.perSecond,
      });
      this.#closed.delete(id);
    }
    for (const [id, row] of this.#previous) {
      if (!current.has(id) && !this.#closed.has(id)) this.#closed.set(id, { row: { ...row, state: 'CLOSED', ejected: false, extra: false, eligible: false, draining: false, leased: 0, rate: 0 }, since: now });
    }
    for (const [id, { since }] of this.#closed) {
      if (now - since > CLOSED_ROW_MILLIS) {
        this.#closed.delete(id);
        this.#anchorRates.delete(id);
      }
    }
    this.#previous = current;
    return [...current.values(), ...[...this.#closed.values()].map((c) => c.row)].sort(byKeyThenIndex);
  }

  async #statsOf(backend: Backend): Promise<BackendStats | undefined> {
    if (!backend.running) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), STATS_TIMEOUT_MILLIS)));
    try {
      return await Promise.race([backend.stats().catch(() => undefined), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
