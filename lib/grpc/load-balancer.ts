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
import type { AnchorState } from '../anchor.js';
import { AnchorSet } from '../anchor-set.js';
import type { DesiredEntry } from '../reconcile.js';
import { SubchannelAnchor } from './anchor-subchannel.js';
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
import { ENTRIES_ATTRIBUTE, POLICY_NAME, type ResolvedEntry } from './resolver.js';

export class AnchoredRoundRobinConfig implements TypedLoadBalancingConfig {
  getLoadBalancerName(): string {
    return POLICY_NAME;
  }
  toJsonObject(): object {
    return { [POLICY_NAME]: {} };
  }
  static createFromJson(): AnchoredRoundRobinConfig {
    return new AnchoredRoundRobinConfig();
  }
}

const QUEUE: PickResult = { pickResultType: PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null };

/**
 * The READY picker: a view of the anchor set's schedule, so the round-robin cursor
 * carries on across state changes instead of restarting with every new picker. A pick
 * that finds nothing eligible (an old picker, used between two state updates) queues.
 */
class AnchoredPicker implements Picker {
  constructor(private readonly anchors: AnchorSet<SubchannelAnchor>) {}
  pick(): PickResult {
    const anchor = this.anchors.pick();
    if (anchor === undefined) return QUEUE;
    return { pickResultType: PickResultType.COMPLETE, subchannel: anchor.subchannel, status: null, onCallStarted: null, onCallEnded: null };
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
  /** Where each key's new subchannels connect, and the args they get; set by updateAddressList. */
  #addresses = new Map<string, SubchannelAddress>();
  #options: ChannelOptions = {};
  #lastError: string | null = null;
  #state: State = State.IDLE;

  constructor(helper: ChannelControlHelper) {
    this.#helper = helper;
    this.#anchors = new AnchorSet<SubchannelAnchor>(
      (spec, listener) => new SubchannelAnchor(spec, helper, this.#addresses.get(spec.key)!, this.#options, listener),
      {
        state: (anchor, state, previous) => this.#onAnchorState(anchor, state, previous),
        eligible: () => undefined,
        closed: () => undefined,
      },
      // Nothing to wait for: calls in flight keep their own reference to the subchannel.
      0,
    );
  }

  updateAddressList(endpointList: StatusOr<Endpoint[]>, config: TypedLoadBalancingConfig, options: ChannelOptions): boolean {
    if (!(config instanceof AnchoredRoundRobinConfig)) return false;
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
    log(`destroy: closing ${this.#anchors.activeCount} subchannel(s)`);
    this.#anchors.closeAll();
  }

  getTypeName(): string {
    return POLICY_NAME;
  }

  #apply(entries: readonly ResolvedEntry[], options: ChannelOptions): void {
    this.#addresses = new Map(entries.map((e) => [e.key, e.address]));
    this.#options = options;
    const desired = new Map<string, DesiredEntry>(entries.map((e) => [e.key, { addr: e.addr, anchors: e.anchors }]));
    const { created, drained } = this.#anchors.apply(desired);
    log(`${entries.length} entries, ${this.#anchors.wanted} anchors wanted: created ${created}, closed ${drained}`);
    this.#update();
  }

  #onAnchorState(anchor: SubchannelAnchor, state: AnchorState, previous: AnchorState): void {
    log(`${anchor.key}#${anchor.index} (${anchor.address}): ${previous} -> ${state}${anchor.lastError ? ` (${anchor.lastError})` : ''}`);
    if (!anchor.draining && anchor.lastError !== undefined) this.#lastError = anchor.lastError;
    if (previous === 'READY' && state !== 'READY' && !anchor.draining) {
      log('an anchor left READY: requesting re-resolution');
      this.#helper.requestReresolution();
    }
    if (!anchor.draining) this.#update();
  }

  #update(): void {
    if (this.#anchors.eligibleCount > 0) {
      this.#report(State.READY, new AnchoredPicker(this.#anchors), null);
      return;
    }
    const states = this.#anchors.byState();
    if (states.CONNECTING > 0 || states.IDLE > 0) {
      this.#report(State.CONNECTING, new QueuePicker(this), null);
      return;
    }
    const details = `${POLICY_NAME}: no connection established${this.#lastError ? `; last error: ${this.#lastError}` : ''}`;
    this.#report(State.TRANSIENT_FAILURE, new UnavailablePicker({ details }), details);
  }

  #report(state: State, picker: Picker, error: string | null): void {
    if (state !== this.#state) log(`state ${State[this.#state]} -> ${State[state]}`);
    this.#state = state;
    this.#helper.updateState(state, picker, error);
  }
}
