/**
 * The anchored_round_robin load-balancing policy for grpc-js. For every endpoint entry
 * it keeps N subchannels, each with a distinct `anchorpool.anchor` subchannel arg, so
 * they are N connections (round_robin would collapse duplicates of an address into
 * one). Subchannels are diffed by (key, index) with the same reconcile as the lease
 * pool, so changing N never reconnects the survivors, and calls are picked in the same
 * interleaved schedule, over READY subchannels only. States aggregate as round_robin's:
 * READY if any subchannel is, else CONNECTING, else TRANSIENT_FAILURE.
 */
import { connectivityState as State, type ChannelOptions } from '@grpc/grpc-js';
import { ANCHOR_ARG } from '../anchor.js';
import { reconcile, type DesiredEntry, type LiveEntry } from '../reconcile.js';
import { buildSchedule } from '../schedule.js';
import {
  PickResultType,
  QueuePicker,
  UnavailablePicker,
  type ChannelControlHelper,
  type Endpoint,
  type LoadBalancer,
  type PickResult,
  type Picker,
  type StatusOr,
  type SubchannelAddress,
  type SubchannelInterface,
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

interface SubAnchor {
  readonly key: string;
  readonly index: number;
  readonly addr: string;
  readonly subchannel: SubchannelInterface;
  readonly listener: (subchannel: SubchannelInterface, previous: State, next: State) => void;
}

/** Round robin over a snapshot of READY subchannels (grpc-js replaces pickers whole). */
class AnchoredPicker implements Picker {
  #next = 0;
  constructor(private readonly ready: readonly SubchannelInterface[]) {}
  pick(): PickResult {
    const subchannel = this.ready[this.#next]!;
    this.#next = this.#next + 1 === this.ready.length ? 0 : this.#next + 1;
    return { pickResultType: PickResultType.COMPLETE, subchannel, status: null, onCallStarted: null, onCallEnded: null };
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

export class AnchoredRoundRobin implements LoadBalancer {
  readonly #helper: ChannelControlHelper;
  readonly #anchors = new Map<string, SubAnchor>();
  #schedule: SubAnchor[] = [];
  #lastError: string | null = null;

  constructor(helper: ChannelControlHelper) {
    this.#helper = helper;
  }

  updateAddressList(endpointList: StatusOr<Endpoint[]>, config: TypedLoadBalancingConfig, options: ChannelOptions): boolean {
    if (!(config instanceof AnchoredRoundRobinConfig)) return false;
    const attribute = options[ENTRIES_ATTRIBUTE] as ResolvedEntry[] | undefined;
    if (!endpointList.ok) {
      this.#lastError = endpointList.error.details;
      // An empty set from our resolver removes every backend; a failed resolution keeps what works.
      if (attribute !== undefined && attribute.length === 0) this.#apply([], options);
      if (this.#anchors.size === 0) {
        this.#helper.updateState(State.TRANSIENT_FAILURE, new UnavailablePicker(endpointList.error), endpointList.error.details);
      }
      return true;
    }
    this.#apply(attribute ?? entriesFromEndpoints(endpointList.value), options);
    return true;
  }

  exitIdle(): void {
    for (const anchor of this.#anchors.values()) {
      if (anchor.subchannel.getConnectivityState() === State.IDLE) anchor.subchannel.startConnecting();
    }
  }

  resetBackoff(): void {}

  destroy(): void {
    for (const anchor of this.#anchors.values()) this.#release(anchor);
    this.#anchors.clear();
    this.#schedule = [];
  }

  getTypeName(): string {
    return POLICY_NAME;
  }

  #apply(entries: readonly ResolvedEntry[], options: ChannelOptions): void {
    const desired = new Map<string, DesiredEntry>(entries.map((e) => [e.key, { addr: e.addr, anchors: e.anchors }]));
    const addresses = new Map(entries.map((e) => [e.key, e.address]));
    const live = new Map<string, LiveEntry>();
    for (const anchor of this.#anchors.values()) {
      live.set(anchor.key, { addr: anchor.addr, count: (live.get(anchor.key)?.count ?? 0) + 1 });
    }
    const plan = reconcile(desired, live);
    for (const { key, index } of plan.drain) {
      const slot = `${key}#${index}`;
      this.#release(this.#anchors.get(slot)!);
      this.#anchors.delete(slot);
    }
    const created: SubAnchor[] = [];
    for (const { key, index, addr } of plan.create) {
      const subchannel = this.#helper.createSubchannel(addresses.get(key)!, { ...options, [ANCHOR_ARG]: `${key}#${index}` });
      const anchor: SubAnchor = { key, index, addr, subchannel, listener: (_s, _previous, next) => this.#onState(anchor, next) };
      subchannel.ref();
      subchannel.addConnectivityStateListener(anchor.listener);
      this.#anchors.set(`${key}#${index}`, anchor);
      created.push(anchor);
    }
    this.#schedule = buildSchedule(
      entries.map((e) => ({ key: e.key, anchors: Array.from({ length: e.anchors }, (_, i) => this.#anchors.get(`${e.key}#${i}`)!) })),
    );
    for (const anchor of created) anchor.subchannel.startConnecting();
    this.#updateState();
  }

  #release(anchor: SubAnchor): void {
    anchor.subchannel.removeConnectivityStateListener(anchor.listener);
    anchor.subchannel.unref();
  }

  #onState(anchor: SubAnchor, next: State): void {
    if (this.#anchors.get(`${anchor.key}#${anchor.index}`) !== anchor) return; // a replaced subchannel
    // Keep every anchor connected: a subchannel waits in IDLE after a disconnect.
    if (next === State.IDLE) anchor.subchannel.startConnecting();
    this.#updateState();
  }

  #updateState(): void {
    const ready = this.#schedule.filter((a) => a.subchannel.getConnectivityState() === State.READY).map((a) => a.subchannel);
    if (ready.length > 0) {
      this.#helper.updateState(State.READY, new AnchoredPicker(ready), null);
    } else if (this.#schedule.some((a) => [State.CONNECTING, State.IDLE].includes(a.subchannel.getConnectivityState()))) {
      this.#helper.updateState(State.CONNECTING, new QueuePicker(this), null);
    } else {
      const details = `${POLICY_NAME}: no connection established${this.#lastError ? `; last error: ${this.#lastError}` : ''}`;
      this.#helper.updateState(State.TRANSIENT_FAILURE, new UnavailablePicker({ details }), details);
    }
  }
}
