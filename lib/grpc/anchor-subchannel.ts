/**
 * The anchored_round_robin policy's anchor: one grpc-js subchannel, made distinct from
 * its siblings by the anchor arg. It follows the subchannel's state and reconnects it
 * whenever it falls back to IDLE (a subchannel waits there after a disconnect); close()
 * drops the listener and the reference the policy held.
 */
import { ANCHOR_ARG, Anchor, anchorStateOf, type AnchorListener, type AnchorSpec } from '../anchor.js';
import type { ChannelControlHelper, SubchannelAddress, SubchannelInterface } from './experimental.js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { connectivityState as State } from '@grpc/grpc-js';

export class SubchannelAnchor extends Anchor {
  readonly subchannel: SubchannelInterface;
  /** Why the subchannel last failed, as grpc-js reported it (for the policy's TRANSIENT_FAILURE message). */
  lastError: string | undefined;
  readonly #onState = (_subchannel: SubchannelInterface, _previous: State, next: State, _keepaliveTime: number, errorMessage?: string): void => {
    if (this.closed) return;
    if (errorMessage) this.lastError = errorMessage;
    if (next === State.IDLE) this.subchannel.startConnecting();
    this.setState(anchorStateOf(next));
  };

  /** The policy does not cap calls per subchannel: grpc-js queues streams beyond the server's limit. */
  constructor(spec: AnchorSpec, helper: ChannelControlHelper, address: SubchannelAddress, options: ChannelOptions, listener: AnchorListener) {
    super(spec, Infinity, listener);
    this.subchannel = helper.createSubchannel(address, { ...options, [ANCHOR_ARG]: `${spec.key}#${spec.index}` });
    this.subchannel.ref();
  }

  start(): void {
    this.subchannel.addConnectivityStateListener(this.#onState);
    const current = this.subchannel.getConnectivityState();
    this.setState(anchorStateOf(current));
    if (current === State.IDLE) this.subchannel.startConnecting();
  }

  /** Connects a subchannel that is IDLE (the channel left idle mode). */
  exitIdle(): void {
    if (!this.closed && this.subchannel.getConnectivityState() === State.IDLE) this.subchannel.startConnecting();
  }

  protected shutdown(): void {
    this.subchannel.removeConnectivityStateListener(this.#onState);
    this.subchannel.unref();
  }
}
