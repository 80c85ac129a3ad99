/**
 * anchorpool_pinned: the load-balancing policy of the lease pool's anchor channels. It is
 * grpc-js's pick_first on the anchor's one address, with one addition: a call that fails
 * at its pick (the connection is not READY and the call does not wait for ready) carries
 * the never-sent mark in its status metadata. grpc-js knows such a call never left the
 * client but drops that knowledge from the status it reports; the mark keeps it, so
 * pool.client() can run the call again on another anchor (lib/pool/resumable-call.ts).
 * And it connects nothing once its anchor has closed the channel (AnchorHook.closed).
 */
import { connectivityState, type ChannelOptions } from '@grpc/grpc-js';
import { markNeverSent } from '../core/never-sent.js';
import {
  ChildLoadBalancerHandler,
  createChildChannelControlHelper,
  parseLoadBalancingConfig,
  PickResultType,
  type ChannelControlHelper,
  type Endpoint,
  type LoadBalancer,
  type PickArgs,
  type Picker,
  type PickResult,
  type StatusOr,
  type SubchannelInterface,
  type TypedLoadBalancingConfig,
} from './experimental.js';
import { isLoadBalancerNameRegistered, registerLoadBalancerType } from './experimental.js';

export const PINNED_POLICY_NAME = 'anchorpool_pinned';

/**
 * The channel arg that links the policy to its anchor (an AnchorHook). grpc-js compares
 * args by identity and passes them through to the policy; it never serializes them.
 */
export const ANCHOR_HOOK_ARG = 'anchorpool.internal.anchor_hook';
export interface AnchorHook {
  /** Called with each subchannel pick_first makes: the anchor's liveness watch follows it. */
  subchannel(subchannel: SubchannelInterface): void;
  /**
   * Whether the anchor has closed its channel. A resolution can still land after
   * channel.close(): grpc-js's ipv4:/ipv6: resolver answers on a tick that its destroy()
   * does not cancel, and the closed channel then makes a fresh policy for it. Its
   * pick_first would connect, and nothing would ever close that connection.
   */
  closed(): boolean;
}

class PinnedConfig implements TypedLoadBalancingConfig {
  getLoadBalancerName(): string {
    return PINNED_POLICY_NAME;
  }
  toJsonObject(): object {
    return { [PINNED_POLICY_NAME]: {} };
  }
  static createFromJson(): PinnedConfig {
    return new PinnedConfig();
  }
}

/** Marks the failures of a TRANSIENT_FAILURE picker; every other pick passes through. */
class NeverSentPicker implements Picker {
  constructor(private readonly inner: Picker) {}
  pick(args: PickArgs): PickResult {
    const result = this.inner.pick(args);
    if (result.pickResultType !== PickResultType.TRANSIENT_FAILURE || result.status === null) return result;
    return { ...result, status: markNeverSent(result.status) };
  }
}

class PinnedLoadBalancer implements LoadBalancer {
  readonly #child: InstanceType<typeof ChildLoadBalancerHandler>;
  readonly #pickFirst = parseLoadBalancingConfig({ pick_first: {} });

  constructor(helper: ChannelControlHelper) {
    this.#child = new ChildLoadBalancerHandler(
      createChildChannelControlHelper(helper, {
        createSubchannel: (address, args) => {
          const subchannel = helper.createSubchannel(address, args);
          (args[ANCHOR_HOOK_ARG] as AnchorHook | undefined)?.subchannel(subchannel);
          return subchannel;
        },
        updateState: (state, picker, errorMessage) =>
          helper.updateState(state, state === connectivityState.TRANSIENT_FAILURE ? new NeverSentPicker(picker) : picker, errorMessage),
      }),
    );
  }

  updateAddressList(endpoints: StatusOr<Endpoint[]>, _config: TypedLoadBalancingConfig, options: ChannelOptions, resolutionNote: string): boolean {
    // A late resolution on a closed anchor's channel (see AnchorHook.closed): nothing to connect.
    if ((options[ANCHOR_HOOK_ARG] as AnchorHook | undefined)?.closed() === true) return false;
    return this.#child.updateAddressList(endpoints, this.#pickFirst, options, resolutionNote);
  }
  exitIdle(): void {
    this.#child.exitIdle();
  }
  resetBackoff(): void {
    this.#child.resetBackoff();
  }
  destroy(): void {
    this.#child.destroy();
  }
  getTypeName(): string {
    return PINNED_POLICY_NAME;
  }
}

/** Registers the policy with grpc-js once; anchor channels name it in their service config. */
export function registerPinnedPolicy(): void {
  if (!isLoadBalancerNameRegistered(PINNED_POLICY_NAME)) registerLoadBalancerType(PINNED_POLICY_NAME, PinnedLoadBalancer, PinnedConfig);
}

/**
 * The `grpc.service_config` of an anchor channel: the caller's own (its method configs,
 * retry policies, timeouts) with this policy as the load-balancing config.
 */
export function pinnedServiceConfig(given: string | undefined): string {
  // The pool's option check has made sure it is a JSON object (lib/pool/pool-options.ts).
  const config = given === undefined ? {} : (JSON.parse(given) as Record<string, unknown>);
  const { loadBalancingPolicy: _policy, ...rest } = config;
  return JSON.stringify({ ...rest, loadBalancingConfig: [{ [PINNED_POLICY_NAME]: {} }] });
}
