/**
 * The anchored_round_robin load-balancing policy for grpc-js. For every endpoint entry
 * it keeps N subchannels, each with a distinct `anchorpool.anchor` subchannel arg, so
 * they are N connections (round_robin would collapse duplicates of an address into
 * one). The subchannels live in the same AnchorSet as the lease pool's channels: diffed
 * by (key, index) with the same reconcile, so changing N never reconnects the
 * survivors, and picked in the same interleaved schedule, over READY subchannels only.
 * States aggregate as round_robin's (policy-state.ts). Like round_robin it asks for
 * re-resolution when an anchor leaves READY.
 *
 * The class wires small parts, each with one job: where picked calls run and what their
 * outcomes eject (call-routing.ts), what a lost connection holds back
 * (connection-loss.ts), calls waiting for room under the stream cap (room-wait.ts), and
 * the entries from another resolver (policy-entries.ts). As round_robin, updates pause
 * while a resolution is applied and are reported once at its end.
 * `GRPC_TRACE=anchored_round_robin GRPC_VERBOSITY=DEBUG` prints its decisions.
 */
import { connectivityState as State, type ChannelOptions } from '@grpc/grpc-js';
import type { AnchorState } from '../anchors/anchor.js';
import { livenessSettingsOf, subsetSettingsOf, zoneSettingsOf, type ResolvedAnchorOptions } from '../anchors/anchor-options.js';
import { describeLoss, sameLivenessSettings } from '../anchors/liveness-watch.js';
import { AnchorSet } from '../anchors/anchor-set.js';
import { warnOncePerAddress } from '../anchors/health-watch.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { DesiredEntry } from '../anchors/reconcile.js';
import { SubchannelAnchor, type SubchannelHealthCheck } from './subchannel-anchor.js';
import { CallRouting } from './call-routing.js';
import { ConnectionLoss } from './connection-loss.js';
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
} from '../grpc-js/experimental.js';
import { AnchoredRoundRobinConfig, POLICY_NAME, parsePolicyOptions } from './policy-config.js';
import { entriesFromEndpoints } from './policy-entries.js';
import { censusOf, policyStateOf } from './policy-state.js';
import { CHANNEL_ATTRIBUTE, ENTRIES_ATTRIBUTE, ETCD_SITE_ATTRIBUTE, type ChannelContext, type ResolvedEntry } from './resolver.js';
import { ClientMembership, coordinationSettings, type MembershipOptions, type MembershipView } from '../discovery/client-membership.js';
import type { ResolvedEtcdOptions } from '../discovery/source-options.js';
import { optionsKey } from '../core/options-key.js';
import { RoomWait } from './room-wait.js';

const QUEUE: PickResult = { pickResultType: PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null };
/** Holds every pick for a moment (connection-loss.ts). */
const QUEUE_PICKER: Picker = { pick: () => QUEUE };

const log = (text: string): void => trace(POLICY_NAME, text);

/**
 * The READY picker: a view of the anchor set's schedule, so the round-robin cursor
 * carries on across state changes instead of restarting with every new picker. A pick
 * that finds nothing eligible (every anchor at its cap, or an old picker used between
 * two state updates) queues. It hands out each anchor's replaying view, which also counts
 * the call on the anchor that runs it.
 */
class AnchoredPicker implements Picker {
  /**
   * A pick found no room: every later pick of this picker queues too, behind the calls
   * already waiting. Else a new call, started in the same turn as the call whose end freed
   * a place, takes that place before the waiting calls are picked again (the room-wait
   * picker comes one setImmediate later), and under a closed loop some calls wait for
   * seconds (p99 2.5 s at 512 calls in flight over 4 × 100 places). With it, the next
   * picker serves the queue in order first. No call waits for ever on a latched picker:
   * every change that lets a pick succeed again reports a new one (a freed place through
   * RoomWait, a state, health or ejection change through #update).
   */
  #full = false;
  constructor(
    private readonly anchors: AnchorSet<SubchannelAnchor>,
    private readonly routing: CallRouting,
    /** Every anchor that could take the call is at maxStreamsPerAnchor: the call waits. */
    private readonly full: () => void,
  ) {}
  pick(): PickResult {
    if (this.#full) return QUEUE;
    const anchor = this.anchors.pick();
    if (anchor === undefined) {
      this.#full = true;
      this.full();
      return QUEUE;
    }
    this.routing.counts.picked(anchor);
    return { pickResultType: PickResultType.COMPLETE, subchannel: this.routing.viewOf(anchor), status: null, onCallStarted: null, onCallEnded: null };
  }
}

export class AnchoredRoundRobin implements LoadBalancer {
  readonly #helper: ChannelControlHelper;
  readonly #anchors: AnchorSet<SubchannelAnchor>;
  readonly #routing: CallRouting;
  readonly #connectionLoss: ConnectionLoss;
  readonly #roomWait: RoomWait;
  /** The settings new anchors are made with (existing ones keep theirs until replaced). */
  #settings: ResolvedAnchorOptions | undefined;
  /** Where each key's new subchannels connect, and the args they get; set by updateAddressList. */
  #addresses = new Map<string, SubchannelAddress>();
  #options: ChannelOptions = {};
  #health: SubchannelHealthCheck | undefined;
  /** The channel's logger and own service config, from the resolver (CHANNEL_ATTRIBUTE). */
  #channel: ChannelContext | undefined;
  /** Warns once per address and channel about a backend without a health service. */
  readonly #noHealthService = warnOncePerAddress(() => this.#logger());
  #lastError: string | null = null;
  #state: State = State.IDLE;
  /** A resolution is being applied: one state report at its end instead of one per anchor. */
  #updatesPaused = false;
  #destroyed = false;
  /**
   * Anchors that reported TRANSIENT_FAILURE since they were last READY. Like round_robin's
   * pick_first children, they count as failed (not connecting) while they retry, so the
   * channel stays in TRANSIENT_FAILURE and calls fail fast instead of queueing on every
   * reconnection attempt.
   */
  readonly #failing = new Set<SubchannelAnchor>();
  /** Coordinated subsets: this instance's registration among the clients, what it was made from, and why there is none. */
  #membership: ClientMembership | undefined;
  #membershipKey: string | undefined;
  #coordinationError: string | undefined;

  constructor(helper: ChannelControlHelper) {
    this.#helper = helper;
    this.#anchors = new AnchorSet<SubchannelAnchor>(
      (spec, listener) =>
        new SubchannelAnchor(spec, helper, this.#addresses.get(spec.key)!, this.#options, listener, this.#settings!.maxStreamsPerAnchor, this.#health, (anchor) => {
          // A parent policy (grpc-js outlier_detection) ejected or returned it: the channel's state follows.
          log(`${anchor.key}#${anchor.index} (${anchor.address}): ${anchor.eligible ? 'returned' : 'held out'} by a parent policy`);
          if (!anchor.draining) this.#update();
        }),
      {
        state: (anchor, state, previous) => this.#onAnchorState(anchor, state, previous),
        health: (anchor, health, previous) => {
          log(`${anchor.key}#${anchor.index} (${anchor.address}): health ${previous} -> ${health}${anchor.healthDetail ? ` (${anchor.healthDetail})` : ''}`);
          if (!anchor.draining) this.#update();
        },
        eligible: () => this.#roomWait.roomFreed(),
        // Another zone may take calls now: a latched picker must give way to a new one.
        sharesChanged: () => this.#roomWait.roomFreed(),
        // Over the keys with anchors (the subset, with subsetting): maxEjectionPercent is a share of those.
        applying: (entries) => this.#routing.setEntries(new Map([...entries].map(([key, entry]) => [key, entry.addr]))),
        connectionLost: (anchor, reason, detail) => {
          log(`${anchor.key}#${anchor.index} (${anchor.address}): ${detail}`);
          this.#logger()?.warn({ key: anchor.key, index: anchor.index, address: anchor.address, reason }, `anchored_round_robin: ${anchor.key}#${anchor.index}: ${describeLoss(reason, detail)}`);
        },
        extra: (anchor, change) => {
          log(`${anchor.key}#${anchor.index} (${anchor.address}): extra anchor ${change} (${this.#anchors.extraCounts().open} open)`);
          this.#logger()?.info({ key: anchor.key, index: anchor.index, address: anchor.address, change }, `anchored_round_robin: extra anchor ${change} for ${anchor.key}`);
        },
      },
      // Nothing to wait for: calls in flight keep their own reference to the subchannel.
      { drainTimeoutMillis: 0 },
    );
    this.#routing = new CallRouting(this.#anchors, {
      ejectionChanged: () => this.#update(),
      // Two picks at most: the schedule's next anchor may be the refused one, if it is still READY.
      another: (refused) => {
        if (this.#destroyed) return undefined;
        // Not counted as picks by zone: the call was counted where it was first placed.
        const first = this.#anchors.pick(false);
        return first !== refused ? first : this.#anchors.pick(false);
      },
      trace: log,
    });
    this.#connectionLoss = new ConnectionLoss(this.#anchors, {
      hold: () => {
        if (this.#state === State.READY) this.#helper.updateState(State.READY, QUEUE_PICKER, null);
      },
      resume: () => this.#update(),
      trace: log,
    });
    this.#roomWait = new RoomWait(() => this.#update());
  }

  updateAddressList(endpointList: StatusOr<Endpoint[]>, config: TypedLoadBalancingConfig, options: ChannelOptions): boolean {
    if (!(config instanceof AnchoredRoundRobinConfig)) return false;
    this.#updatesPaused = true;
    try {
      this.#configure(config, options);
      const attribute = options[ENTRIES_ATTRIBUTE] as ResolvedEntry[] | undefined;
      if (!endpointList.ok) {
        this.#lastError = endpointList.error.details;
        log(`resolution failed: ${endpointList.error.details}`);
        // An empty set from our resolver removes every backend; a failed resolution keeps what works (and reports nothing).
        if (attribute !== undefined && attribute.length === 0) this.#apply([], options);
        if (this.#anchors.activeCount === 0) this.#report(State.TRANSIENT_FAILURE, new UnavailablePicker(endpointList.error), endpointList.error.details);
        return true;
      }
      this.#apply(attribute ?? entriesFromEndpoints(endpointList.value), options);
    } finally {
      this.#updatesPaused = false;
    }
    this.#update();
    return true;
  }

  exitIdle(): void {
    for (const anchor of this.#anchors.active()) anchor.exitIdle();
  }

  resetBackoff(): void {}

  destroy(): void {
    this.#destroyed = true;
    void this.#membership?.close();
    this.#membership = undefined;
    this.#connectionLoss.destroy();
    this.#roomWait.destroy();
    log(`destroy: closing ${this.#anchors.activeCount} subchannel(s)`);
    this.#routing.close();
    this.#anchors.closeAll();
  }

  getTypeName(): string {
    return POLICY_NAME;
  }

  /** Takes the config's settings: anchors made from now on get them; the ones there keep theirs until replaced. */
  #configure(config: AnchoredRoundRobinConfig, options: ChannelOptions): void {
    this.#channel = options[CHANNEL_ATTRIBUTE] as ChannelContext | undefined;
    const settings = this.#withChannelHealthCheck(config);
    const health = settings.healthCheck;
    this.#health = health === undefined ? undefined : { ...health, unimplemented: (anchor, detail) => this.#unimplemented(anchor, detail) };
    this.#routing.configureEjection(settings.outlierDetection);
    this.#anchors.setExtraIdleMillis(settings.extraAnchorIdleMillis);
    // Every resolution brings a config; the watch's timer restarts only when its settings change.
    const liveness = livenessSettingsOf(settings);
    if (this.#settings === undefined || !sameLivenessSettings(livenessSettingsOf(this.#settings), liveness)) {
      this.#anchors.setLiveness(liveness);
    }
    const previous: Partial<ResolvedAnchorOptions> = this.#settings ?? {};
    if (previous.pick !== settings.pick || previous.maxStreamsPerAnchor !== settings.maxStreamsPerAnchor) {
      this.#anchors.setPickMode(settings.pick);
      this.#routing.setTimed(settings.pick === 'peak-ewma');
      this.#routing.renew();
    }
    if (previous.zone !== settings.zone || JSON.stringify(previous.zoneRouting) !== JSON.stringify(settings.zoneRouting)) {
      this.#anchors.setZone(zoneSettingsOf(settings));
    }
    if (JSON.stringify(previous.slowStart) !== JSON.stringify(settings.slowStart)) this.#anchors.setSlowStart(settings.slowStart);
    // Applied by the #apply that follows; a config without a clientId keeps the one in use.
    if (JSON.stringify(previous.subset) !== JSON.stringify(settings.subset)) this.#anchors.setSubset(subsetSettingsOf(settings, this.#anchors.subsetReport()?.clientId));
    this.#coordinate(settings, options);
    this.#settings = settings;
  }

  /**
   * Coordinated subsets: this policy instance registers as a client at the target's etcd
   * and follows its place among the clients. A config that cannot coordinate (a pass:///
   * target, a clients prefix overlapping the backends') fails the channel's calls with
   * the reason, as an invalid config does: never a silent fallback.
   */
  #coordinate(settings: ResolvedAnchorOptions, options: ChannelOptions): void {
    const subset = settings.subset;
    const clientId = this.#anchors.subsetReport()?.clientId;
    let wanted: MembershipOptions | undefined;
    this.#coordinationError = undefined;
    if (subset?.mode === 'coordinated' && clientId !== undefined) {
      const coordination = coordinationSettings(options[ETCD_SITE_ATTRIBUTE] as ResolvedEtcdOptions | undefined, subset);
      if ('error' in coordination) {
        this.#coordinationError = `anchored_round_robin: invalid config: ${coordination.error}`;
      } else {
        wanted = { ...coordination, clientId, logger: this.#logger() ?? silentLogger };
      }
    }
    const key = wanted === undefined ? this.#coordinationError : optionsKey({ ...wanted, logger: undefined });
    if (key === this.#membershipKey) return;
    this.#membershipKey = key;
    if (this.#coordinationError !== undefined) this.#logger()?.error({}, this.#coordinationError);
    void this.#membership?.close();
    this.#membership = undefined;
    if (wanted === undefined) return;
    const membership = new ClientMembership(wanted);
    const place = (view: MembershipView | undefined): void => {
      if (this.#membership !== membership || this.#destroyed) return;
      this.#anchors.placeSubset(view);
      this.#update();
    };
    membership.on('view', place);
    membership.on('late', () => place(undefined));
    this.#membership = membership;
    membership.start();
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

  #apply(entries: readonly ResolvedEntry[], options: ChannelOptions): void {
    this.#addresses = new Map(entries.map((e) => [e.key, e.address]));
    this.#options = options;
    const defaultMaxAge = this.#settings!.anchorMaxAgeMillis;
    const desired = new Map<string, DesiredEntry>(
      entries.map((e) => {
        // A key's own maxAgeSeconds wins over the config's anchorMaxAgeMillis (0 turns it off for the key).
        const maxAgeMillis = e.maxAgeSeconds !== undefined ? e.maxAgeSeconds * 1000 : defaultMaxAge;
        const entry: DesiredEntry = {
          addr: e.addr,
          anchors: e.anchors,
          ...(maxAgeMillis > 0 && { maxAgeMillis }),
          ...(e.maxAnchors !== undefined && { maxAnchors: e.maxAnchors }),
          ...(e.zone !== undefined && { zone: e.zone }),
        };
        return [e.key, entry];
      }),
    );
    const { created, drained } = this.#anchors.apply(desired);
    log(`${entries.length} entries, ${this.#anchors.wanted} anchors wanted: created ${created}, closed ${drained}`);
  }

  #onAnchorState(anchor: SubchannelAnchor, state: AnchorState, previous: AnchorState): void {
    if (state === 'TRANSIENT_FAILURE') this.#failing.add(anchor);
    else if (state === 'READY' || state === 'SHUTDOWN') this.#failing.delete(anchor);
    log(`${anchor.key}#${anchor.index} (${anchor.address}): ${previous} -> ${state}${anchor.lastError ? ` (${anchor.lastError})` : ''}`);
    if (!anchor.draining && anchor.lastError !== undefined) this.#lastError = anchor.lastError;
    if (previous === 'READY' && state !== 'READY' && !anchor.draining) {
      log('an anchor left READY: requesting re-resolution');
      this.#helper.requestReresolution();
      this.#connectionLoss.lost(anchor);
    }
    if (!anchor.draining) this.#update();
  }

  #update(): void {
    if (this.#updatesPaused || this.#connectionLoss.settling || this.#destroyed) return;
    const census = censusOf(this.#anchors.active(), this.#anchors.eligibleSlots, this.#failing);
    if (this.#coordinationError !== undefined) {
      this.#report(State.TRANSIENT_FAILURE, new UnavailablePicker({ details: this.#coordinationError }), this.#coordinationError);
      return;
    }
    // A coordinated subset learning its place among the clients (one etcd listing): calls wait.
    if (this.#anchors.subsetAwaitingPlace()) {
      this.#report(State.CONNECTING, new QueuePicker(this), null);
      return;
    }
    const next = policyStateOf(census, POLICY_NAME, this.#lastError);
    if (next.state === 'READY') this.#report(State.READY, this.#picker(), null);
    else if (next.state === 'CONNECTING') this.#report(State.CONNECTING, new QueuePicker(this), null);
    else this.#report(State.TRANSIENT_FAILURE, new UnavailablePicker({ details: next.details }), next.details);
  }

  #picker(): AnchoredPicker {
    return new AnchoredPicker(this.#anchors, this.#routing, () => {
      this.#roomWait.waiting();
      // A key that may grow (maxAnchors) and whose anchors are all full opens one more.
      this.#anchors.starved();
    });
  }

  #unimplemented(anchor: SubchannelAnchor, detail: string): void {
    log(`${anchor.address} has no grpc.health.v1 service: its anchors count as healthy`);
    this.#noHealthService(anchor, detail);
  }

  #logger(): Logger | undefined {
    return this.#channel?.logger;
  }

  #report(state: State, picker: Picker, error: string | null): void {
    if (state !== this.#state) log(`state ${State[this.#state]} -> ${State[state]}`);
    this.#state = state;
    this.#helper.updateState(state, picker, error);
  }
}
