/**
 * AnchorSet: the anchors of one pool or one policy instance, by (key, index). The one
 * slot table both paths share.
 *
 *   desired entries ──► reconcile() plan ──► create / drain anchors ──► schedule ──► pick()
 *
 * It applies reconcile() plans, keeps the active anchors (one per slot) and the draining
 * ones, rebuilds the round-robin schedule when the set changes, and keeps the picker's
 * count of eligible anchors. Anchors are made by a factory, so the pool uses channels,
 * the policy subchannels, and unit specs fakes.
 *
 * Events from an anchor that no longer holds its slot (replaced or draining) never
 * change what can be picked; its state changes are still passed on while the set
 * tracks it, so the owner can show a draining anchor going away. The owner hears:
 *   - state(anchor, …) and health(anchor, …): a tracked anchor's state or health changed;
 *   - eligible(): an active anchor became eligible (waiters may be served now);
 *   - refreshed(old, fresh): a replacement took an anchor's slot at its maximum age
 *     (anchor-refresh.ts); the old one drains;
 *   - extra(anchor, change): a key that may grow (`maxAnchors`) opened an extra anchor for
 *     capacity, or drained one back (anchor-growth.ts). Such a key is scheduled by lanes
 *     (lane.ts), so its share stays by its N;
 *   - connectionLost(anchor, reason, detail): the liveness watch (liveness-watch.ts) dropped
 *     a silent connection, or gave up a connection attempt at its deadline.
 *
 * What a pick weighs besides N lives beside the schedule: each anchor's latency
 * (peak-ewma.ts), each key's zone and slots in rotation (key-weights.ts), the keys whose
 * share ramps up (slow-start-ramps.ts), and, for a caller that names its zone, one
 * schedule per zone drawn by the zones' shares (zone-cursors.ts, zone-shares.ts).
 */
import { Anchor, type AnchorHealth, type AnchorListener, type AnchorSpec, type AnchorState } from './anchor.js';
import { AnchorGrowth, DEFAULT_GROWTH_SETTINGS, type GrowthSettings } from './anchor-growth.js';
import { AnchorRefresher, DEFAULT_REFRESH_SETTINGS, type RefreshSettings } from './anchor-refresh.js';
import { LivenessWatch, type LivenessCounts, type LivenessWatchSettings } from './liveness-watch.js';
import type { PickMode } from './anchor-options.js';
import { KeyWeights } from './key-weights.js';
import { SlowStartRamps } from './slow-start-ramps.js';
import { type CoordinationView, SubsetFilter, type SubsetReport, type SubsetSettings } from './subset-filter.js';
import { Lane } from './lane.js';
import { ScheduleCursor, type Admit } from './schedule-cursor.js';
import { reconcile, type DesiredEntry, type LiveEntry } from './reconcile.js';
import { buildSchedule } from './schedule.js';
import type { SlowStartSettings } from './slow-start.js';
import { ZoneCursors } from './zone-cursors.js';
import { zoneShares, type ZoneMode, type ZoneSettings, type ZoneThresholds } from './zone-shares.js';

export type AnchorFactory<A extends Anchor> = (spec: AnchorSpec, listener: AnchorListener) => A;

export interface AnchorSetOwner<A extends Anchor> {
  state(anchor: A, state: AnchorState, previous: AnchorState): void;
  health?(anchor: A, health: AnchorHealth, previous: AnchorHealth): void;
  eligible(anchor: A): void;
  refreshed?(old: A, fresh: A, ageMillis: number): void;
  extra?(anchor: A, change: 'opened' | 'drained' | 'failed'): void;
  connectionLost?(anchor: A, reason: 'frozen' | 'connect-timeout', detail: string): void;
  /** The zones' shares changed: a zone may take picks it could not (waiters may be served now). */
  sharesChanged?(): void;
  /**
   * The entries about to have anchors, before they are reconciled: every entry offered, or
   * the client's subset of them (which also changes without an apply, as keys fail and
   * return). Outlier ejection counts its share of ejected keys over these.
   */
  applying?(entries: ReadonlyMap<string, DesiredEntry>): void;
}


export interface AnchorSetSettings {
  /** How long a draining anchor waits for its leases before it closes anyway. */
  readonly drainTimeoutMillis: number;
  readonly pick?: PickMode;
  /** Make-before-break refresh timing (anchor-refresh.ts); the ages come with the entries. */
  readonly refresh?: RefreshSettings;
  /** Load-driven anchors' timing (anchor-growth.ts); the maxima come with the entries. */
  readonly growth?: GrowthSettings;
  /** Silent connections and hanging attempts (liveness-watch.ts); absent: not watched. */
  readonly liveness?: LivenessWatchSettings;
  /** The caller's zone and when calls leave it (zone-shares.ts); absent: zones are not used. */
  readonly zone?: ZoneSettings | undefined;
  /** Keys coming (back) into rotation ramp up their share (slow-start.ts); absent: off. */
  readonly slowStart?: SlowStartSettings | undefined;
  /** The clock of latency estimates and ramps; default performance.now (specs pass their own). */
  readonly clock?: () => number;
  /** Keep anchors to a subset of the keys only (subset-filter.ts); absent: every key. */
  readonly subset?: SubsetSettings | undefined;
}

/** Where the calls go by zone, for a caller that names its zone. */
export interface ZoneReport {
  readonly local: string;
  readonly mode: ZoneMode;
  readonly zones: readonly { zone: string; total: number; healthy: number; share: number; picks: number }[];
}

type Slot<A extends Anchor> = A | Lane<A>;

/** Slots a peak-ewma pick draws (schedule-cursor.ts says why three). */
const PEAK_EWMA_CHOICES = 3;
/** While keys ramp, zone shares (which weigh the ramps) are computed again at most this often, from the picks. */
const RAMPED_SHARES_MILLIS = 100;

export interface ApplyResult {
  readonly created: number;
  readonly drained: number;
}

export type StateCounts = Record<Exclude<AnchorState, 'SHUTDOWN'>, number>;
export type HealthCounts = Record<AnchorHealth, number>;

const slotOf = (key: string, index: number): string => `${key}#${index}`;

export class AnchorSet<A extends Anchor> {
  readonly #factory: AnchorFactory<A>;
  readonly #owner: AnchorSetOwner<A>;
  readonly #drainTimeoutMillis: number;
  readonly #active = new Map<string, A>();
  readonly #draining = new Set<A>();
  readonly #cursor = new ScheduleCursor<Slot<A>>();
  /** The schedule by zone, when the caller names its zone (then #cursor is unused). */
  #zones: ZoneCursors<Slot<A>> | undefined;
  #zoneThresholds: ZoneThresholds | undefined;
  /** Picks made in each zone group since the set was made. */
  readonly #zonePicks = new Map<string, number>();
  readonly #weights: KeyWeights;
  readonly #ramps: SlowStartRamps;
  /** When the zone shares were last computed, and whether a ramp weighed in then. */
  #sharesAt = 0;
  #sharesRamped = false;
  #mode: PickMode;
  /** The clock's time of the pick under way (peak-ewma costs, slow-start gates). */
  #now = 0;
  readonly #clock: () => number;
  /** The client's subset of the keys, when subsetting is on. */
  #subset: SubsetFilter | undefined;
  /** An evaluation of the subset is queued (one per microtask). */
  #subsetQueued = false;
  #subsetFrozen = false;
  /** The lanes of the keys that may grow past their N (maxAnchors): N per key, anchor i in lane i mod N. */
  readonly #lanes = new Map<string, Lane<A>[]>();
  readonly #listener: AnchorListener;
  #wanted = 0;
  #allClosed: (() => void) | undefined;
  #drained: Promise<void> | undefined;
  /** Keys whose anchors are ejected (outlier ejection); new anchors of such a key start ejected. */
  readonly #ejectedKeys = new Set<string>();
  /** The entries last applied (the schedule and the refresh ages come from them): the subset of those offered, with subsetting. */
  #desired: ReadonlyMap<string, DesiredEntry> = new Map();
  /** Each anchor's generation: a refresh's replacement counts on, so its connection is distinct from the one it replaces. */
  readonly #generations = new WeakMap<A, number>();
  readonly #refresher: AnchorRefresher<A>;
  readonly #growth: AnchorGrowth<A>;
  readonly #liveness: LivenessWatch<A>;
  /** drainAll() or closeAll() ran: no timer starts again. */
  #stopped = false;

  constructor(factory: AnchorFactory<A>, owner: AnchorSetOwner<A>, settings: AnchorSetSettings) {
    this.#factory = factory;
    this.#owner = owner;
    this.#drainTimeoutMillis = settings.drainTimeoutMillis;
    this.#mode = settings.pick ?? 'round-robin';
    this.#clock = settings.clock ?? (() => performance.now());
    this.#ramps = new SlowStartRamps(settings.slowStart);
    this.#weights = new KeyWeights(settings.zone?.local);
    this.#configureZones(settings.zone);
    this.#subset = settings.subset === undefined ? undefined : this.#newSubset(settings.subset);
    this.#refresher = new AnchorRefresher(settings.refresh ?? DEFAULT_REFRESH_SETTINGS, {
      holdsSlot: (anchor) => this.#holdsSlot(anchor),
      replacement: (old) => this.#create(old.key, old.index, old.address, (this.#generations.get(old) ?? 0) + 1),
      swap: (old, fresh, ageMillis) => this.#swap(old, fresh, ageMillis),
      discard: (fresh) => fresh.close(),
    });
    this.#growth = new AnchorGrowth(settings.growth ?? DEFAULT_GROWTH_SETTINGS, {
      open: (key) => this.#openExtra(key),
      discard: (anchor) => this.#dropExtra(anchor, 'failed'),
      shrink: (key) => this.#shrink(key),
      load: (key) => this.#loadOf(key),
    });
    this.#liveness = new LivenessWatch<A>(settings.liveness ?? { liveness: undefined, connectTimeoutMillis: 0 }, {
      anchors: () => this.#watched(),
      frozen: (anchor, detail) => {
        if (this.#tracks(anchor)) this.#owner.connectionLost?.(anchor, 'frozen', detail);
      },
      connectTimedOut: (anchor, detail) => {
        if (this.#tracks(anchor)) this.#owner.connectionLost?.(anchor, 'connect-timeout', detail);
      },
    });
    this.#listener = {
      state: (anchor, state, previous) => {
        if (state === 'TRANSIENT_FAILURE' && this.#growth.isPending(anchor as A)) return this.#growth.failed(anchor as A);
        if (state === 'TRANSIENT_FAILURE' && this.#holdsSlot(anchor as A)) this.#subsetFailed(anchor.key);
        if (this.#tracks(anchor as A)) this.#owner.state(anchor as A, state, previous);
      },
      health: (anchor, health, previous) => {
        if ((health === 'NOT_SERVING' || health === 'SERVICE_UNKNOWN') && this.#holdsSlot(anchor as A)) this.#subsetFailed(anchor.key);
        if (this.#tracks(anchor as A)) this.#owner.health?.(anchor as A, health, previous);
      },
      eligibility: (anchor, eligible) => {
        if (eligible && this.#refresher.isPending(anchor as A)) return this.#refresher.ready(anchor as A);
        if (!this.#holdsSlot(anchor as A)) return;
        const lane = this.#laneOf(anchor as A);
        if (lane === undefined) this.#slotEligibilityChanged(anchor.key, eligible);
        else this.#laneChanged(anchor.key, lane.eligibilityChanged(eligible));
        if (eligible) {
          this.#growth.ready(anchor as A);
          this.#owner.eligible(anchor as A);
        }
      },
      rotation: (anchor) => {
        if (this.#holdsSlot(anchor as A) || this.#draining.has(anchor as A)) this.#recount(anchor.key);
      },
      closed: (anchor) => {
        if (!this.#draining.delete(anchor as A)) return;
        if (this.#draining.size === 0) this.#allClosed?.();
      },
    };
  }

  /** Sum of the wanted anchor counts of the entries last applied. */
  get wanted(): number {
    return this.#wanted;
  }
  get activeCount(): number {
    return this.#active.size;
  }
  get drainingCount(): number {
    return this.#draining.size;
  }
  /** Places in the schedule that can take a stream now (a growable key's lane is one place, however many anchors it has). */
  get eligibleSlots(): number {
    return this.#zones?.eligibleSlots ?? this.#cursor.eligibleSlots;
  }
  /** Active anchors that can take a stream now (each anchor of a lane counts). */
  eligibleAnchorCount(): number {
    if (this.#lanes.size === 0) return this.eligibleSlots;
    let eligible = 0;
    for (const anchor of this.#active.values()) if (anchor.eligible) eligible += 1;
    return eligible;
  }
  /** Anchors replaced at their maximum age so far, replacements that failed, and keys with one connecting now. */
  refreshCounts(): { done: number; failed: number; connecting: number } {
    return { done: this.#refresher.refreshes, failed: this.#refresher.failures, connecting: this.#refresher.replacing };
  }

  /** Pings sent, silent connections dropped and connection attempts given up so far. */
  livenessCounts(): LivenessCounts {
    return this.#liveness.counts();
  }

  /** New liveness settings (the native policy's config can change them). */
  setLiveness(settings: LivenessWatchSettings): void {
    this.#liveness.configure(settings);
  }

  /** Changes how later picks choose (the native policy's config can change it). */
  setPickMode(mode: PickMode): void {
    this.#mode = mode;
  }

  /** Names the caller's zone, or stops using zones (the native policy's config can change it). */
  setZone(zone: ZoneSettings | undefined): void {
    this.#weights.setLocal(zone?.local);
    this.#configureZones(zone);
    this.#reschedule(this.#desired);
  }

  /** Turns slow start on, changes it or turns it off (the native policy's config can change it). */
  setSlowStart(settings: SlowStartSettings | undefined): void {
    this.#ramps.configure(settings);
    this.#updateShares();
  }

  /** Where picks go by zone now, or undefined when the caller names no zone. */
  zoneReport(): ZoneReport | undefined {
    const local = this.#weights.local;
    if (local === undefined || this.#zones === undefined) return undefined;
    const shares = this.#zones.shares;
    const zones = this.#weights.zoneLoads().map((load) => ({
      ...load,
      share: shares?.shares.get(load.zone) ?? 0,
      picks: this.#zonePicks.get(load.zone) ?? 0,
    }));
    return { local, mode: shares?.mode ?? 'none', zones: zones.sort((a, b) => (a.zone === local ? -1 : b.zone === local ? 1 : a.zone.localeCompare(b.zone))) };
  }

  /** The zone a key's value names, if any. */
  zoneOf(key: string): string | undefined {
    return this.#weights.zoneOf(key);
  }

  /** Keys whose share is ramping up (slow start) now, with their factor from 0 to 1. */
  slowStartRamps(): { key: string; factor: number }[] {
    return this.#ramps.list(this.#clock());
  }
  /** How long a key's extra anchors must stay lightly loaded before one drains (the native policy's config can change it). */
  setExtraIdleMillis(idleMillis: number): void {
    this.#growth.setIdleMillis(idleMillis);
  }

  /** Extra anchors opened for capacity, drained back, and attempts that failed, so far; and how many are open now. */
  extraCounts(): { open: number; opened: number; drained: number; failed: number } {
    let open = 0;
    for (const anchor of this.#active.values()) if (this.isExtra(anchor)) open += 1;
    return { open, ...this.#growth.counts() };
  }

  /** An anchor above its key's N, opened for capacity (only keys with maxAnchors have them). */
  isExtra(anchor: A): boolean {
    const entry = this.#desired.get(anchor.key);
    return entry?.maxAnchors !== undefined && anchor.index >= entry.anchors;
  }

  /**
   * The next eligible anchor (round robin; the less loaded of two drawn; or the cheapest
   * of three by latency × (streams + 1)), in a zone drawn by the zones' shares when the
   * caller names its zone; undefined when none is eligible. `counted`: counts in the picks
   * by zone (not for a refused stream's second placement).
   */
  pick(counted = true): A | undefined {
    const slowStart = this.#ramps.settings !== undefined;
    if (this.#mode === 'peak-ewma' || slowStart) this.#now = this.#clock();
    let slot: Slot<A> | undefined;
    if (this.#zones === undefined) {
      slot = this.#pickIn(this.#cursor);
    } else {
      if (slowStart && (this.#sharesRamped || this.#ramps.ramping(this.#now)) && this.#now - this.#sharesAt >= RAMPED_SHARES_MILLIS) this.#updateShares();
      const picked = this.#zones.pick(this.#pickIn);
      if (picked !== undefined && counted) this.#zonePicks.set(picked.zone, (this.#zonePicks.get(picked.zone) ?? 0) + 1);
      slot = picked?.slot;
    }
    if (!(slot instanceof Lane)) return slot;
    return this.#mode === 'peak-ewma' ? slot.pick(this.#anchorCost) : slot.pick();
  }

  readonly #pickIn = (cursor: ScheduleCursor<Slot<A>>): Slot<A> | undefined => {
    const admit = this.#ramps.settings !== undefined && this.#ramps.ramping(this.#now) ? (this.#mode === 'round-robin' ? this.#admitInTurn : this.#admitAtRandom) : undefined;
    if (this.#mode === 'round-robin') return cursor.pick(admit);
    if (this.#mode === 'least-loaded') return cursor.pickLeastLoaded(Math.random, admit);
    return cursor.pickBest(this.#slotCost, PEAK_EWMA_CHOICES, Math.random, admit);
  };
  readonly #admitInTurn: Admit<Slot<A>> = (slot) => this.#ramps.admitInTurn(slot.key, this.#now);
  readonly #admitAtRandom: Admit<Slot<A>> = (slot) => this.#ramps.admitAtRandom(slot.key, this.#now, Math.random);
  readonly #anchorCost = (anchor: A): number => anchor.latency.cost(anchor.streams, this.#now);
  readonly #slotCost = (slot: Slot<A>): number => (slot instanceof Lane ? slot.cost(this.#anchorCost) : this.#anchorCost(slot));

  /**
   * Callers wait and nothing can take them: every key that may grow and whose anchors are
   * all full (READY, healthy, at their lease cap) opens one more, one at a time per key.
   */
  starved(): void {
    for (const [key, lanes] of this.#lanes) {
      if (lanes.some((lane) => lane.eligible)) continue;
      const full = lanes.some((lane) => lane.anchors().some((a) => a.state === 'READY' && !a.draining && a.streams >= a.capacity));
      if (full) this.#growth.want(key);
    }
  }

  /** The active anchor of a slot. */
  get(key: string, index: number): A | undefined {
    return this.#active.get(slotOf(key, index));
  }

  active(): IterableIterator<A> {
    return this.#active.values();
  }

  draining(): IterableIterator<A> {
    return this.#draining.values();
  }

  /** Some active anchor is READY and healthy (SERVING or UNCHECKED), whether or not it has a free slot. */
  hasReady(): boolean {
    for (const anchor of this.#active.values()) {
      if (anchor.state === 'READY' && (anchor.health === 'SERVING' || anchor.health === 'UNCHECKED')) return true;
    }
    return false;
  }

  /** Active anchors by state. */
  byState(): StateCounts {
    const counts: StateCounts = { IDLE: 0, CONNECTING: 0, READY: 0, TRANSIENT_FAILURE: 0 };
    for (const anchor of this.#active.values()) if (anchor.state !== 'SHUTDOWN') counts[anchor.state] += 1;
    return counts;
  }

  /** Takes every anchor of `key` out of rotation (outlier ejection), or puts them back. */
  setEjected(key: string, ejected: boolean): void {
    if (ejected) this.#ejectedKeys.add(key);
    else this.#ejectedKeys.delete(key);
    for (const anchor of this.#active.values()) if (anchor.key === key) anchor.setEjected(ejected);
    if (ejected) this.#subsetFailed(key);
  }

  /**
   * Turns subsetting on, changes it or turns it off (the native policy's config can change
   * it); it takes effect with the next apply(). A change keeps what the subset applied and
   * which keys failed, so the next apply moves only what the change moves.
   */
  setSubset(settings: SubsetSettings | undefined): void {
    if (settings === undefined) this.#subset = undefined;
    else if (this.#subset === undefined) this.#subset = this.#newSubset(settings);
    else this.#subset.reconfigure(settings);
  }

  /**
   * The ids of a coordinated client's fleet changed (the owner follows them in etcd): the
   * subset moves to the client's share of the new assignment at once, make before break.
   * Undefined: the ids could not be learnt in time; the subset starts from the rendezvous
   * order.
   */
  placeSubset(place: CoordinationView | undefined): void {
    if (this.#stopped || this.#subsetFrozen || this.#subset === undefined) return;
    const next = this.#subset.place(place);
    if (next !== undefined) this.#applyEntries(next);
  }

  /** No more subset changes (the owner is shutting down): a key failing now must not open anchors to another. */
  freezeSubset(): void {
    this.#subsetFrozen = true;
  }

  /** A coordinated subset waits to hear the client's place: no anchors yet, and none failed. */
  subsetAwaitingPlace(): boolean {
    return this.#subset?.awaitingPlace === true;
  }

  /** The client's subset now, or undefined when subsetting is off. */
  subsetReport(): SubsetReport | undefined {
    return this.#subset?.report();
  }

  /** Active anchors by health. */
  byHealth(): HealthCounts {
    const counts: HealthCounts = { UNCHECKED: 0, UNKNOWN: 0, SERVING: 0, NOT_SERVING: 0, SERVICE_UNKNOWN: 0 };
    for (const anchor of this.#active.values()) counts[anchor.health] += 1;
    return counts;
  }

  /**
   * Makes the set match `desired` (key → address and anchor count): drains what is gone,
   * creates what is missing, rebuilds the schedule, then starts the new anchors (so their
   * first state changes find them scheduled).
   */
  apply(desired: ReadonlyMap<string, DesiredEntry>): ApplyResult {
    return this.#applyEntries(this.#subset === undefined ? desired : this.#subset.offer(desired));
  }

  #applyEntries(desired: ReadonlyMap<string, DesiredEntry>): ApplyResult {
    this.#owner.applying?.(desired);
    // Its timer runs from the first entries on (a set never applied holds nothing to watch).
    if (!this.#stopped) this.#liveness.start();
    let wanted = 0;
    for (const entry of desired.values()) wanted += entry.anchors;
    this.#wanted = wanted;
    // A key that is gone and comes back, or that moved to another address, starts in rotation.
    for (const key of this.#ejectedKeys) {
      const wantedAddr = desired.get(key)?.addr;
      const liveAddr = this.#active.get(slotOf(key, 0))?.address;
      if (wantedAddr === undefined || (liveAddr !== undefined && wantedAddr !== liveAddr)) this.#ejectedKeys.delete(key);
    }
    const previous = this.#desired;
    // A growable key whose entry changed drains its extra anchors first: reconcile and the
    // lanes start again from its N.
    for (const [key, before] of previous) {
      const after = desired.get(key);
      if (after !== undefined && after.addr === before.addr && after.anchors === before.anchors && after.maxAnchors === before.maxAnchors) continue;
      for (let index = before.anchors; this.#active.has(slotOf(key, index)); index++) this.#drainSlot(key, index);
      this.#growth.forget(key);
    }
    // Extra anchors (above the N last applied) are the growth's, not reconcile's.
    const live = new Map<string, LiveEntry>();
    for (const anchor of this.#active.values()) {
      if (anchor.index >= (previous.get(anchor.key)?.anchors ?? Infinity)) continue;
      live.set(anchor.key, { addr: anchor.address, count: (live.get(anchor.key)?.count ?? 0) + 1 });
    }
    this.#desired = desired;
    const zonesMoved = [...desired].some(([key, entry]) => previous.has(key) && previous.get(key)!.zone !== entry.zone);
    for (const key of this.#weights.setEntries(desired, this.#clock())) this.#ramps.forget(key);
    // A key whose N changed weighs its anchors in rotation against the new N.
    for (const [key, entry] of desired) if (previous.has(key) && previous.get(key)!.anchors !== entry.anchors) this.#recount(key);
    // A key whose maximum age changed starts its anchors' clocks again with the new one.
    for (const anchor of this.#active.values()) {
      const age = desired.get(anchor.key)?.maxAgeMillis;
      if (desired.has(anchor.key) && age !== previous.get(anchor.key)?.maxAgeMillis) this.#refresher.track(anchor, age);
    }
    const plan = reconcile(desired, live);
    if (plan.drain.length === 0 && plan.create.length === 0) {
      // The lanes are made anew (an extra anchor may have been drained above): the schedule must hold the new ones.
      const hadLanes = this.#lanes.size > 0;
      if (this.#relane(desired) || hadLanes || zonesMoved) this.#reschedule(desired);
      return { created: 0, drained: 0 };
    }
    const drained: A[] = [];
    for (const { key, index } of plan.drain) {
      const slot = slotOf(key, index);
      const anchor = this.#active.get(slot)!;
      this.#active.delete(slot);
      this.#draining.add(anchor);
      this.#refresher.untrack(anchor);
      drained.push(anchor);
    }
    const created: A[] = [];
    for (const { key, index, addr } of plan.create) {
      const anchor = this.#create(key, index, addr);
      this.#active.set(slotOf(key, index), anchor);
      this.#refresher.track(anchor, desired.get(key)?.maxAgeMillis);
      created.push(anchor);
    }
    this.#relane(desired);
    this.#reschedule(desired);
    for (const anchor of drained) anchor.drain(this.#drainTimeoutMillis);
    // An owner callback of a drain above may have closed the set (closeAll, drainAll).
    for (const anchor of created) if (!anchor.closed) anchor.start();
    return { created: created.length, drained: drained.length };
  }

  /**
   * Drains every anchor (each closes with its last lease, or after drainTimeoutMillis)
   * and resolves when all have closed. Nothing can be picked from then on.
   */
  drainAll(): Promise<void> {
    this.#drained ??= this.#drainAll();
    return this.#drained;
  }

  #drainAll(): Promise<void> {
    this.#stopped = true;
    this.#refresher.stop();
    this.#liveness.stop();
    this.#growth.stop();
    this.#lanes.clear();
    this.#wanted = 0;
    const all = [...this.#active.values()];
    this.#active.clear();
    this.#cursor.setSchedule([]);
    this.#zones?.setSchedule([]);
    for (const anchor of all) this.#draining.add(anchor);
    const done = new Promise<void>((resolve) => (this.#allClosed = resolve));
    for (const anchor of [...this.#draining]) anchor.drain(this.#drainTimeoutMillis);
    if (this.#draining.size === 0) this.#allClosed?.();
    return done;
  }

  /** Closes every anchor now, without draining (a destroyed policy). */
  closeAll(): void {
    this.#stopped = true;
    this.#refresher.stop();
    this.#liveness.stop();
    this.#growth.stop();
    this.#lanes.clear();
    const all = [...this.#active.values(), ...this.#draining];
    this.#wanted = 0;
    this.#active.clear();
    this.#cursor.setSchedule([]);
    this.#zones?.setSchedule([]);
    for (const anchor of all) {
      this.#draining.add(anchor);
      anchor.close();
    }
  }

  #create(key: string, index: number, address: string, generation = 0): A {
    const anchor = this.#factory({ key, index, address, generation }, this.#listener);
    this.#generations.set(anchor, generation);
    if (this.#ejectedKeys.has(key)) anchor.setEjected(true);
    return anchor;
  }

  /** A replacement takes its slot (make before break): it joins the schedule, the old anchor drains. */
  #swap(old: A, fresh: A, ageMillis: number): void {
    this.#active.set(slotOf(old.key, old.index), fresh);
    this.#draining.add(old);
    this.#refresher.untrack(old);
    this.#refresher.track(fresh, this.#desired.get(fresh.key)?.maxAgeMillis);
    const lane = this.#laneOf(old);
    if (lane !== undefined) this.#laneChanged(old.key, lane.replace(old, fresh));
    else this.#reschedule(this.#desired);
    this.#recount(old.key);
    old.drain(this.#drainTimeoutMillis);
    this.#owner.refreshed?.(old, fresh, ageMillis);
    if (fresh.eligible) this.#owner.eligible(fresh);
  }

  #reschedule(desired: ReadonlyMap<string, DesiredEntry>): void {
    const entries = [...desired].map(([key, entry]) => ({
      key,
      group: this.#weights.groupOf(key) ?? '',
      anchors: this.#lanes.get(key) ?? Array.from({ length: entry.anchors }, (_, i) => this.#active.get(slotOf(key, i))!),
    }));
    if (this.#zones === undefined) {
      this.#cursor.setSchedule(buildSchedule<Slot<A>>(entries));
    } else {
      this.#zones.setSchedule(entries);
      this.#updateShares();
    }
  }

  #configureZones(zone: ZoneSettings | undefined): void {
    this.#zoneThresholds = zone;
    if (zone === undefined) {
      if (this.#zones !== undefined) this.#cursor.setSchedule([]);
      this.#zones = undefined;
    } else {
      this.#zones ??= new ZoneCursors<Slot<A>>();
    }
  }

  /**
   * Recounts a key's anchors in rotation. A key back in rotation after none of its anchors
   * was starts its slow-start ramp, unless it is a key of the first entries coming up
   * within one window of them (the whole fleet is new then).
   */
  #recount(key: string): void {
    const anchors: A[] = [];
    for (let index = 0; this.#active.has(slotOf(key, index)); index++) anchors.push(this.#active.get(slotOf(key, index))!);
    const { healthyChanged, cameBack, wentOut } = this.#weights.recount(key, anchors);
    if (this.#subset !== undefined) {
      if (cameBack !== false) this.#subset.served(key);
      // Out of rotation after serving, whatever the reason (unhealthy, ejected, held out by a parent policy, disconnected).
      if (wentOut) this.#subset.failed(key);
      this.#queueSubset();
    }
    if (cameBack !== false) {
      const now = this.#clock();
      const window = this.#ramps.settings?.windowMillis ?? 0;
      const withTheFleet = cameBack.first && now - (this.#weights.firstAppliedAt ?? now) < window;
      if (!withTheFleet) this.#ramps.start(key, now);
    }
    if (healthyChanged || cameBack !== false) this.#updateShares();
  }

  #newSubset(settings: SubsetSettings): SubsetFilter {
    return new SubsetFilter(settings, (key) => this.#weights.inRotation(key));
  }

  /** A key of the subset failed: it stops counting toward the subset's size (evaluated on the next microtask). */
  #subsetFailed(key: string): void {
    if (this.#subset === undefined) return;
    this.#subset.failed(key);
    this.#queueSubset();
  }

  /** Evaluates the subset once, after the events of this turn: never from inside an anchor's own state change. */
  #queueSubset(): void {
    if (this.#subsetQueued || this.#stopped || this.#subsetFrozen) return;
    this.#subsetQueued = true;
    queueMicrotask(() => {
      this.#subsetQueued = false;
      if (this.#stopped || this.#subsetFrozen || this.#subset === undefined) return;
      const next = this.#subset.reevaluate();
      if (next !== undefined) this.#applyEntries(next);
    });
  }

  /** Zone shares from the keys in rotation, each weighed by its slow-start ramp; the owner hears when they changed. */
  #updateShares(): void {
    if (this.#zones === undefined) return;
    const now = this.#clock();
    const ramped = this.#ramps.settings !== undefined && this.#ramps.ramping(now);
    this.#sharesAt = now;
    this.#sharesRamped = ramped;
    const loads = this.#weights.zoneLoads(ramped ? (key) => this.#ramps.factor(key, now) : undefined);
    if (this.#zones.setShares(zoneShares(this.#weights.local!, loads, this.#zoneThresholds!))) this.#owner.sharesChanged?.();
  }

  /** A scheduled place (an anchor, or a lane) of `key` became eligible or stopped being. */
  #slotEligibilityChanged(key: string, eligible: boolean): void {
    if (this.#zones === undefined) this.#cursor.eligibilityChanged(eligible);
    else this.#zones.eligibilityChanged(key, eligible);
  }

  /** Rebuilds the lanes of the growable keys from their active anchors; returns whether any key has lanes. */
  #relane(desired: ReadonlyMap<string, DesiredEntry>): boolean {
    this.#lanes.clear();
    for (const [key, entry] of desired) {
      if (entry.maxAnchors === undefined || entry.maxAnchors <= entry.anchors) continue;
      const lanes = Array.from({ length: entry.anchors }, () => new Lane<A>(key));
      for (let index = 0; this.#active.has(slotOf(key, index)); index++) lanes[index % entry.anchors]!.add(this.#active.get(slotOf(key, index))!);
      this.#lanes.set(key, lanes);
    }
    return this.#lanes.size > 0;
  }

  #laneOf(anchor: A): Lane<A> | undefined {
    const lanes = this.#lanes.get(anchor.key);
    return lanes?.[anchor.index % lanes.length];
  }

  /** A lane's eligibility moved by `change` (+1, -1, 0): the picker's count follows. */
  #laneChanged(key: string, change: number): void {
    if (change !== 0) this.#slotEligibilityChanged(key, change > 0);
  }

  /** The next anchor of a growable key, in its lane and started; undefined at its maximum. */
  #openExtra(key: string): A | undefined {
    const entry = this.#desired.get(key);
    const lanes = this.#lanes.get(key);
    if (entry === undefined || lanes === undefined) return undefined;
    let index = 0;
    while (this.#active.has(slotOf(key, index))) index++;
    if (index >= (entry.maxAnchors ?? entry.anchors)) return undefined;
    const anchor = this.#create(key, index, entry.addr);
    this.#active.set(slotOf(key, index), anchor);
    this.#laneChanged(key, lanes[index % lanes.length]!.add(anchor) ? 1 : 0);
    this.#owner.extra?.(anchor, 'opened');
    anchor.start();
    return anchor;
  }

  /** An extra anchor leaves its lane and slot and drains. */
  #dropExtra(anchor: A, change: 'drained' | 'failed'): void {
    if (!this.#holdsSlot(anchor)) return;
    this.#drainSlot(anchor.key, anchor.index);
    this.#owner.extra?.(anchor, change);
  }

  /** Drains the newest extra anchor of `key`. */
  #shrink(key: string): void {
    let index = 0;
    while (this.#active.has(slotOf(key, index + 1))) index++;
    const anchor = this.#active.get(slotOf(key, index));
    if (anchor !== undefined && this.isExtra(anchor)) this.#dropExtra(anchor, 'drained');
  }

  #drainSlot(key: string, index: number): void {
    const slot = slotOf(key, index);
    const anchor = this.#active.get(slot);
    if (anchor === undefined) return;
    const lane = this.#laneOf(anchor);
    if (lane !== undefined) this.#laneChanged(key, lane.remove(anchor) ? -1 : 0);
    this.#active.delete(slot);
    this.#draining.add(anchor);
    this.#refresher.untrack(anchor);
    anchor.drain(this.#drainTimeoutMillis);
  }

  #loadOf(key: string): { count: number; floor: number; streams: number; capacity: number } | undefined {
    const entry = this.#desired.get(key);
    if (entry === undefined) return undefined;
    let count = 0;
    let streams = 0;
    let capacity = 0;
    for (let index = 0; this.#active.has(slotOf(key, index)); index++) {
      const anchor = this.#active.get(slotOf(key, index))!;
      count += 1;
      streams += anchor.streams;
      capacity = anchor.capacity;
    }
    return { count, floor: entry.anchors, streams, capacity };
  }

  /** Every anchor the set tracks: the active ones and the draining ones. */
  *#watched(): Iterable<A> {
    yield* this.#active.values();
    yield* this.#draining;
  }

  #holdsSlot(anchor: A): boolean {
    return this.#active.get(slotOf(anchor.key, anchor.index)) === anchor;
  }

  #tracks(anchor: A): boolean {
    return this.#holdsSlot(anchor) || this.#draining.has(anchor);
  }
}
