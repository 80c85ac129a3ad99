/**
 * The anchored_round_robin load-balancing policy for grpc-js. For every endpoint entry
 * it keeps N subchannels, each with a distinct `anchorpool.anchor` subchannel arg, so
 * they are N connections (round_robin would collapse duplicates of an address into
 * one). The subchannels live in the same AnchorSet as the lease pool's channels: diffed
 * by (key, index) with the same reconcile, so changing N never reconnects the
 * survivors, and picked in the same interleaved schedule, over READY subchannels only.
 * States aggregate as round_robin's: READY if any anchor is, else CONNECTING while any
 * connects, else TRANSIENT_FAILURE. Like round_robin it asks for re-resolution when an
 * anchor leaves READY.
 * `GRPC_TRACE=anchored_round_robin GRPC_VERBOSITY=DEBUG` prints its decisions.
 */
import { connectivityState as State, type ChannelOptions } from '@grpc/grpc-js';
import type { AnchorHealth, AnchorState } from '../anchor.js';
import { AnchorSet } from '../anchor-set.js';
import type { DesiredEntry } from '../reconcile.js';
import { SubchannelAnchor, type SubchannelHealthCheck } from './anchor-subchannel.js';
import type { OutlierDetectionOptions, PickMode, ResolvedAnchorOptions } from '../anchor-options.js';
import { warnOncePerAddress } from '../health-watch.js';
import type { Logger } from '../logger.js';
import { OutlierEjection } from '../outlier-ejection.js';
import {
  PickResultType,
  QueuePicker,
  UnavailablePicker,
  trace,
  type ChannelControlHelper,
  type Endpoint,
  type LoadBalancer,
  type PickResult,
  type Picker,
  type StatusOr,
  type SubchannelAddress,
  type TypedLoadBalancingConfig,
} from './experimental.js';
import { AnchoredRoundRobinConfig, POLICY_NAME, parsePolicyOptions } from './policy-config.js';
import { ReplayingSubchannel } from './refused-stream-replay.js';
import { CallCounts } from './call-counts.js';
import { CHANNEL_ATTRIBUTE, ENTRIES_ATTRIBUTE, type ChannelContext, type ResolvedEntry } from './resolver.js';

/** How long a key's other connections are held out after one of them went away. */
const SIBLING_PAUSE_MILLIS = 250;

const QUEUE: PickResult = { pickResultType: PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null };
/** Holds every pick for a moment (see #settle). */
const QUEUE_PICKER: Picker = { pick: () => QUEUE };

/**
 * The READY picker: a view of the anchor set's schedule, so the round-robin cursor
 * carries on across state changes instead of restarting with every new picker. A pick
 * that finds nothing eligible (an old picker, used between two state updates) queues.
 * It hands out each anchor's replaying view (lib/grpc/refused-stream-replay.ts), which
 * also counts the call on the anchor that runs it.
 */
class AnchoredPicker implements Picker {
  constructor(
    private readonly anchors: AnchorSet<SubchannelAnchor>,
    private readonly viewOf: (anchor: SubchannelAnchor) => ReplayingSubchannel<SubchannelAnchor>,
    private readonly counts: CallCounts<SubchannelAnchor>,
    /** Every anchor that could take the call is at maxStreamsPerAnchor: the call waits. */
    private readonly full: () => void,
  ) {}
  pick(): PickResult {
    const anchor = this.anchors.pick();
    if (anchor === undefined) {
      this.full();
      return QUEUE;
    }
    this.counts.picked(anchor);
    return { pickResultType: PickResultType.COMPLETE, subchannel: this.viewOf(anchor), status: null, onCallStarted: null, onCallEnded: null };
  }
}

function addressKey(address: SubchannelAddress): string {
  return 'path' in address ? `unix:${address.path}` : address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** Without our resolver's attribute (another resolver chose this policy), duplicates of an address are its anchors. */
function entriesFromEndpoints(endpoints: readonly Endpoint[]): ResolvedEntry[] {
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

const log = (text: string): void => trace(POLICY_NAME, text);

export class AnchoredRoundRobin implements LoadBalancer {
  readonly #helper: ChannelControlHelper;
  readonly #anchors: AnchorSet<SubchannelAnchor>;
  #maxAgeMillis = 0;
  /** Picks queue until the next setImmediate (#settle). */
  #settling = false;
  #destroyed = false;
  /** Where each key's new subchannels connect, and the args they get; set by updateAddressList. */
  #addresses = new Map<string, SubchannelAddress>();
  #options: ChannelOptions = {};
  #health: SubchannelHealthCheck | undefined;
  #lastError: string | null = null;
  #state: State = State.IDLE;
  /** Inside #apply or an ejection: one state report at its end instead of one per anchor. */
  #applying = false;
  /**
   * Anchors that reported TRANSIENT_FAILURE since they were last READY. Like round_robin's
   * pick_first children, they count as failed (not connecting) while they retry, so the
   * channel stays in TRANSIENT_FAILURE and calls fail fast instead of queueing on every
   * reconnection attempt.
   */
  readonly #failing = new Set<SubchannelAnchor>();
  #outliers: { ejection: OutlierEjection<SubchannelAnchor>; settings: string } | undefined;
  /** The pick mode the views were made for. */
  #pick: PickMode | undefined;
  /** The stream cap of new anchors (maxStreamsPerAnchor). */
  #maxStreams = 0;
  /** The channel's logger and own service config, from the resolver (CHANNEL_ATTRIBUTE). */
  #channel: ChannelContext | undefined;
  /** Warns once per address and channel about a backend without a health service. */
  readonly #noHealthService = warnOncePerAddress(() => this.#channel?.logger);
  /** A pick found every anchor at its cap: the next anchor that frees a place lets the queued calls pick again. */
  #waitingForRoom = false;
  #roomScheduled = false;
  /**
   * Each anchor's replaying view for the current settings, and the placement its calls
   * report to; made anew when the settings change, so a call counts off where it counted on.
   */
  #views = new WeakMap<SubchannelAnchor, ReplayingSubchannel<SubchannelAnchor>>();
  #counts = this.#newCounts();
  readonly #viewOf = (anchor: SubchannelAnchor): ReplayingSubchannel<SubchannelAnchor> => {
    let view = this.#views.get(anchor);
    if (view === undefined) {
      view = new ReplayingSubchannel(anchor.subchannel, anchor, this.#counts);
      this.#views.set(anchor, view);
    }
    return view;
  };

  constructor(helper: ChannelControlHelper) {
    this.#helper = helper;
    this.#anchors = new AnchorSet<SubchannelAnchor>(
      (spec, listener) =>
        new SubchannelAnchor(spec, helper, this.#addresses.get(spec.key)!, this.#options, listener, this.#maxStreams, this.#health, (anchor) => {
          // A parent policy (grpc-js outlier_detection) ejected or returned it: the channel's state follows.
          log(`${anchor.key}#${anchor.index} (${anchor.address}): ${anchor.eligible ? 'returned' : 'held out'} by a parent policy`);
          if (!anchor.draining && !this.#applying) this.#update();
        }),
      {
        state: (anchor, state, previous) => this.#onAnchorState(anchor, state, previous),
        health: (anchor, health, previous) => {
          log(`${anchor.key}#${anchor.index} (${anchor.address}): health ${previous} -> ${health}${anchor.healthDetail ? ` (${anchor.healthDetail})` : ''}`);
          if (!anchor.draining) this.#update();
        },
        eligible: () => this.#roomFreed(),
        extra: (anchor, change) => {
          log(`${anchor.key}#${anchor.index} (${anchor.address}): extra anchor ${change} (${this.#anchors.extraCounts().open} open)`);
          this.#logger()?.info({ key: anchor.key, index: anchor.index, address: anchor.address, change }, `anchored_round_robin: extra anchor ${change} for ${anchor.key}`);
        },
      },
      // Nothing to wait for: calls in flight keep their own reference to the subchannel.
      { drainTimeoutMillis: 0 },
    );
  }

  updateAddressList(endpointList: StatusOr<Endpoint[]>, config: TypedLoadBalancingConfig, options: ChannelOptions): boolean {
    if (!(config instanceof AnchoredRoundRobinConfig)) return false;
    this.#channel = options[CHANNEL_ATTRIBUTE] as ChannelContext | undefined;
    const settings = this.#withChannelHealthCheck(config);
    // New anchors get the current health settings; existing ones keep theirs until replaced.
    const health = settings.healthCheck;
    this.#health = health === undefined ? undefined : { ...health, unimplemented: (anchor, detail) => this.#unimplemented(anchor, detail) };
    this.#configureOutliers(settings.outlierDetection);
    this.#maxAgeMillis = settings.anchorMaxAgeMillis;
    this.#anchors.setExtraIdleMillis(settings.extraAnchorIdleMillis);
    if (this.#pick !== settings.pick || this.#maxStreams !== settings.maxStreamsPerAnchor) {
      // Anchors made from now on get the new cap; the ones there keep theirs until replaced.
      this.#pick = settings.pick;
      this.#maxStreams = settings.maxStreamsPerAnchor;
      this.#anchors.setPickMode(settings.pick);
      this.#newViews();
    }
    const attribute = options[ENTRIES_ATTRIBUTE] as ResolvedEntry[] | undefined;
    if (!endpointList.ok) {
      this.#lastError = endpointList.error.details;
      log(`resolution failed: ${endpointList.error.details}`);
      // An empty set from our resolver removes every backend; a failed resolution keeps what works.
      if (attribute !== undefined && attribute.length === 0) this.#apply([], options);
      if (this.#anchors.activeCount === 0) this.#report(State.TRANSIENT_FAILURE, new UnavailablePicker(endpointList.error), endpointList.error.details);
      return true;
    }
    this.#apply(attribute ?? entriesFromEndpoints(endpointList.value), options);
    return true;
  }

  exitIdle(): void {
    for (const anchor of this.#anchors.active()) anchor.exitIdle();
  }

  resetBackoff(): void {}

  destroy(): void {
    this.#destroyed = true;
    log(`destroy: closing ${this.#anchors.activeCount} subchannel(s)`);
    this.#configureOutliers(undefined);
    this.#anchors.closeAll();
  }

  getTypeName(): string {
    return POLICY_NAME;
  }

  /**
   * The policy's options, with the health check of a top-level `healthCheckConfig` in the
   * channel's own service config when the policy's config names none (the policy's wins).
   */
  #withChannelHealthCheck(config: AnchoredRoundRobinConfig): ResolvedAnchorOptions {
    const fromServiceConfig = this.#channel?.serviceConfigHealthCheck;
    if (config.options.healthCheck !== undefined || fromServiceConfig === undefined) return config.options;
    try {
      return parsePolicyOptions({ ...config.given, healthCheck: fromServiceConfig });
    } catch (error) {
      this.#logger()?.warn({ healthCheckConfig: fromServiceConfig }, `${(error as Error).message}; the service config's healthCheckConfig is not used`);
      return config.options;
    }
  }

  #unimplemented(anchor: SubchannelAnchor, detail: string): void {
    log(`${anchor.address} has no grpc.health.v1 service: its anchors count as healthy`);
    this.#noHealthService(anchor, detail);
  }

  #logger(): Logger | undefined {
    return this.#channel?.logger;
  }

  #apply(entries: readonly ResolvedEntry[], options: ChannelOptions): void {
    this.#addresses = new Map(entries.map((e) => [e.key, e.address]));
    this.#options = options;
    const desired = new Map<string, DesiredEntry>(
      entries.map((e) => {
        // A key's own maxAgeSeconds wins over the config's anchorMaxAgeMillis (0 turns it off for the key).
        const maxAgeMillis = e.maxAgeSeconds !== undefined ? e.maxAgeSeconds * 1000 : this.#maxAgeMillis;
        const entry: DesiredEntry = { addr: e.addr, anchors: e.anchors, ...(maxAgeMillis > 0 && { maxAgeMillis }), ...(e.maxAnchors !== undefined && { maxAnchors: e.maxAnchors }) };
        return [e.key, entry];
      }),
    );
    this.#applying = true;
    let result: { created: number; drained: number };
    try {
      result = this.#anchors.apply(desired);
    } finally {
      this.#applying = false;
    }
    const { created, drained } = result;
    this.#outliers?.ejection.setEntries(new Map([...desired].map(([key, entry]) => [key, entry.addr])));
    log(`${entries.length} entries, ${this.#anchors.wanted} anchors wanted: created ${created}, closed ${drained}`);
    this.#update();
  }

  #onAnchorState(anchor: SubchannelAnchor, state: AnchorState, previous: AnchorState): void {
    if (state === 'TRANSIENT_FAILURE') this.#failing.add(anchor);
    else if (state === 'READY' || state === 'SHUTDOWN') this.#failing.delete(anchor);
    log(`${anchor.key}#${anchor.index} (${anchor.address}): ${previous} -> ${state}${anchor.lastError ? ` (${anchor.lastError})` : ''}`);
    if (!anchor.draining && anchor.lastError !== undefined) this.#lastError = anchor.lastError;
    if (previous === 'READY' && state !== 'READY' && !anchor.draining) {
      log('an anchor left READY: requesting re-resolution');
      this.#helper.requestReresolution();
      this.#pauseSiblings(anchor);
      // With nothing else to pick, the state change is reported at once (CONNECTING or TRANSIENT_FAILURE).
      if (this.#anchors.eligibleSlots > 0) this.#settle();
    }
    if (!anchor.draining) this.#update();
  }

  /**
   * One connection of a key went away (GOAWAY, a close): its other connections take no
   * calls for SIBLING_PAUSE_MILLIS, if other keys can take them meanwhile. A server that
   * shuts down sends GOAWAY on every connection; grpc-js retries a refused stream once,
   * at once, and that retry must not meet the same server's next GOAWAY (the graceful
   * shutdown scenario failed 1 call in about 1,100 that way).
   */
  #pauseSiblings(gone: SubchannelAnchor): void {
    const siblings = [...this.#anchors.active()].filter((a) => a.key === gone.key && a !== gone && a.state === 'READY' && !a.draining);
    if (siblings.length === 0) return;
    const elsewhere = [...this.#anchors.active()].some((a) => a.key !== gone.key && a.eligible);
    if (!elsewhere) return;
    log(`${gone.key}: a connection went away; its ${siblings.length} other(s) take no calls for ${SIBLING_PAUSE_MILLIS} ms`);
    for (const sibling of siblings) sibling.pause(SIBLING_PAUSE_MILLIS, () => this.#update());
  }

  /**
   * A connection went away: until the I/O already received has been read (the next
   * setImmediate), picks queue instead of choosing. grpc-js retries a stream a GOAWAY
   * refused once, at once; other connections may have a GOAWAY of their own waiting in
   * their sockets (servers with max_connection_age cycle many at about the same time), and
   * the retry must not be placed on one of them before it is read.
   */
  #settle(): void {
    if (this.#settling) return;
    this.#settling = true;
    if (this.#state === State.READY) this.#helper.updateState(State.READY, QUEUE_PICKER, null);
    setImmediate(() => {
      this.#settling = false;
      if (!this.#destroyed) this.#update();
    });
  }

  #update(): void {
    if (this.#settling || this.#destroyed) return;
    if (this.#anchors.eligibleSlots > 0) {
      this.#report(State.READY, this.#picker(), null);
      return;
    }
    // Every READY anchor is at its stream cap: still READY, and calls wait for a place.
    if (this.#fullAnchors() > 0) {
      this.#report(State.READY, this.#picker(), null);
      return;
    }
    const health = this.#readyHealth();
    // A READY anchor still waiting for its first health status counts as connecting (A17).
    if (this.#connecting() || health.UNKNOWN > 0) {
      this.#report(State.CONNECTING, new QueuePicker(this), null);
      return;
    }
    const unhealthy = health.NOT_SERVING + health.SERVICE_UNKNOWN;
    let ejected = 0;
    for (const anchor of this.#anchors.active()) if (anchor.ejected && anchor.state === 'READY') ejected += 1;
    const details =
      ejected > 0 && unhealthy === 0
        ? `${POLICY_NAME}: every connected backend is ejected by outlier detection (${ejected} anchor(s)); they return when their ejection time ends`
        : unhealthy > 0
        ? `${POLICY_NAME}: no healthy backend: ${unhealthy} connected anchor(s) report ${[health.NOT_SERVING > 0 ? 'NOT_SERVING' : '', health.SERVICE_UNKNOWN > 0 ? 'SERVICE_UNKNOWN' : ''].filter(Boolean).join(' or ')}`
        : `${POLICY_NAME}: no connection established${this.#lastError ? `; last error: ${this.#lastError}` : ''}`;
    this.#report(State.TRANSIENT_FAILURE, new UnavailablePicker({ details }), details);
  }

  /** Some active anchor is connecting for the first time since it was READY or created (not retrying after a failure). */
  #connecting(): boolean {
    for (const anchor of this.#anchors.active()) {
      if ((anchor.state === 'CONNECTING' || anchor.state === 'IDLE') && !this.#failing.has(anchor)) return true;
    }
    return false;
  }

  /** Starts, changes or stops outlier ejection to match the config (a new config restarts it). */
  #configureOutliers(settings: Required<OutlierDetectionOptions> | undefined): void {
    const fingerprint = settings === undefined ? '' : JSON.stringify(settings);
    if ((this.#outliers?.settings ?? '') === fingerprint) return;
    this.#applying = true;
    this.#outliers?.ejection.close();
    this.#applying = false;
    this.#outliers = undefined;
    if (settings === undefined) return this.#newViews();
    const ejection = new OutlierEjection(settings, this.#anchors, {
      ejected: (e) => {
        log(`${e.key} ejected until ${new Date(e.until).toISOString()}: ${e.reason}, ejection ${e.times}`);
        this.#update();
      },
      returned: (key) => {
        log(`${key} back in rotation after its ejection`);
        this.#update();
      },
    });
    ejection.setEntries(new Map([...this.#anchors.active()].map((a) => [a.key, a.address])));
    this.#outliers = { ejection, settings: fingerprint };
    this.#newViews();
  }

  /** Calls take their settings from the views that started them. */
  #newViews(): void {
    this.#views = new WeakMap();
    this.#counts = this.#newCounts();
  }

  #newCounts(): CallCounts<SubchannelAnchor> {
    const ejection = this.#outliers?.ejection;
    return new CallCounts<SubchannelAnchor>({
      ...(ejection !== undefined && { outcome: (anchor, code) => ejection.record(anchor, code) }),
      moved: (from, to) => log(`${from.key}#${from.index} refused a stream: it runs again on ${to.key}#${to.index}`),
      // Two picks at most: the schedule's next anchor may be the refused one, if it is still READY.
      another: (refused) => {
        if (this.#destroyed) return undefined;
        const first = this.#anchors.pick();
        return first !== refused ? first : this.#anchors.pick();
      },
    });
  }

  #picker(): AnchoredPicker {
    return new AnchoredPicker(this.#anchors, this.#viewOf, this.#counts, () => {
      // A key that may grow (maxAnchors) and whose anchors are all full opens one more.
      this.#waitingForRoom = true;
      this.#anchors.starved();
    });
  }

  /**
   * An anchor can take calls again. When calls wait for room, a new picker lets grpc-js
   * pick for them again; on the next microtask, not from inside the call's end that freed
   * the place (that runs within grpc-js's own status handling).
   */
  #roomFreed(): void {
    if (!this.#waitingForRoom || this.#roomScheduled) return;
    this.#roomScheduled = true;
    queueMicrotask(() => {
      this.#roomScheduled = false;
      if (!this.#waitingForRoom || this.#destroyed) return;
      this.#waitingForRoom = false;
      this.#update();
    });
  }

  /** READY active anchors at their call cap. */
  #fullAnchors(): number {
    let full = 0;
    for (const anchor of this.#anchors.active()) if (anchor.state === 'READY' && !anchor.draining && anchor.streams >= anchor.capacity) full += 1;
    return full;
  }

  /** The health of the READY active anchors. */
  #readyHealth(): Record<AnchorHealth, number> {
    const counts: Record<AnchorHealth, number> = { UNCHECKED: 0, UNKNOWN: 0, SERVING: 0, NOT_SERVING: 0, SERVICE_UNKNOWN: 0 };
    for (const anchor of this.#anchors.active()) if (anchor.state === 'READY') counts[anchor.health] += 1;
    return counts;
  }

  #report(state: State, picker: Picker, error: string | null): void {
    if (state !== this.#state) log(`state ${State[this.#state]} -> ${State[state]}`);
    this.#state = state;
    this.#helper.updateState(state, picker, error);
  }
}
