/**
 * The anchored_round_robin policy's anchor: one grpc-js subchannel, made distinct from
 * its siblings by the anchor arg. It follows the subchannel's state and reconnects it
 * whenever it falls back to IDLE (a subchannel waits there after a disconnect); close()
 * drops the listener and the reference the policy held. With health checks it runs the
 * Watch stream over the subchannel's own call channel, so on that very connection, and
 * stops it before the subchannel is let go (a graceful transport shutdown would wait
 * for the never-ending stream and keep the connection open).
 */
import type { ChannelOptions } from '@grpc/grpc-js';
import { connectivityState as State } from '@grpc/grpc-js';
import { ANCHOR_ARG, Anchor, anchorArg, anchorStateOf, type AnchorListener, type AnchorSpec } from '../anchors/anchor.js';
import { HealthWatch, type HealthWatchSettings } from '../anchors/health-watch.js';
import type { ChannelControlHelper, SubchannelAddress, SubchannelInterface } from '../grpc-js/experimental.js';
import { SubchannelCallChannel } from '../grpc-js/subchannel-call-channel.js';
import { abortConnectAttempt, subchannelConnection, trackConnectAttempts, type SubchannelConnection } from '../grpc-js/subchannel-connection.js';

export interface SubchannelHealthCheck extends HealthWatchSettings {
  /** The backend has no health service: the anchor counts as healthy on this connection. */
  unimplemented(anchor: SubchannelAnchor, detail: string): void;
}

export class SubchannelAnchor extends Anchor {
  readonly subchannel: SubchannelInterface;
  /** Why the subchannel last failed, as grpc-js reported it (for the policy's TRANSIENT_FAILURE message). */
  lastError: string | undefined;
  readonly #health: HealthWatch | undefined;
  readonly #onState = (_subchannel: SubchannelInterface, _previous: State, next: State, _keepaliveTime: number, errorMessage?: string): void => {
    if (this.closed) return;
    if (errorMessage) this.lastError = errorMessage;
    else if (next === State.READY) this.lastError = undefined;
    if (next === State.IDLE) this.subchannel.startConnecting();
    this.#follow(anchorStateOf(next));
  };

  /**
   * `maxStreams`: the calls it carries at once (maxStreamsPerAnchor; with health checks,
   * the Watch stream is one of them).
   */
  constructor(
    spec: AnchorSpec,
    helper: ChannelControlHelper,
    address: SubchannelAddress,
    options: ChannelOptions,
    listener: AnchorListener,
    maxStreams: number,
    healthCheck?: SubchannelHealthCheck,
    /** Called when a parent policy holds it out of rotation or lets it back (after the change). */
    heldOutChanged?: (anchor: SubchannelAnchor) => void,
  ) {
    super(spec, maxStreams, listener, healthCheck !== undefined);
    // A refresh's replacement (generation > 0) needs a subchannel of its own, not the pooled one of its slot.
    this.subchannel = helper.createSubchannel(address, { ...options, [ANCHOR_ARG]: anchorArg(spec) });
    this.subchannel.ref();
    trackConnectAttempts(this.subchannel);
    this.#heldOutChanged = heldOutChanged;
    if (healthCheck !== undefined) {
      this.#health = new HealthWatch(
        new SubchannelCallChannel(this.subchannel),
        spec.address,
        healthCheck,
        this.healthReport((detail) => healthCheck.unimplemented(this, detail)),
      );
    }
  }

  /** grpc-js's outlier_detection (a parent policy) ejects a subchannel by marking it unhealthy. */
  readonly #heldOutChanged: ((anchor: SubchannelAnchor) => void) | undefined;
  #parentHeld = false;
  /** A short hold (pause()): another connection of its key just went away. */
  #pause: NodeJS.Timeout | undefined;
  readonly #onHealth = (healthy: boolean): void => {
    if (this.closed) return;
    this.#parentHeld = !healthy;
    this.#applyHold();
    this.#heldOutChanged?.(this);
  };

  /**
   * Takes no calls for `millis`, then calls `resumed`. For a sibling of a connection that
   * just went away: a server that shuts down sends GOAWAY on all its connections, and a
   * stream grpc-js retries after the first GOAWAY must not land on the next one.
   */
  pause(millis: number, resumed: () => void): void {
    if (this.closed) return;
    clearTimeout(this.#pause);
    this.#pause = setTimeout(() => {
      this.#pause = undefined;
      if (this.closed) return;
      this.#applyHold();
      resumed();
    }, millis);
    this.#pause.unref();
    this.#applyHold();
  }

  #applyHold(): void {
    this.setHeldOut(this.#parentHeld || this.#pause !== undefined);
  }

  start(): void {
    this.subchannel.addConnectivityStateListener(this.#onState);
    this.subchannel.addHealthStateWatcher(this.#onHealth);
    this.#parentHeld = !this.subchannel.isHealthy();
    this.#applyHold();
    const current = this.subchannel.getConnectivityState();
    this.#follow(anchorStateOf(current));
    if (current === State.IDLE) this.subchannel.startConnecting();
  }

  #follow(state: ReturnType<typeof anchorStateOf>): void {
    // Health is checked per connection: a new one starts over and waits for its first SERVING.
    if (state !== 'READY') this.#health?.stop();
    this.setState(state);
    // On the next tick: grpc-js reports READY just before the subchannel's transport is set.
    if (state === 'READY' && this.#health !== undefined) {
      process.nextTick(() => {
        if (!this.closed && this.state === 'READY') this.#health?.start();
      });
    }
  }

  override connection(): SubchannelConnection | undefined {
    return subchannelConnection(this.subchannel);
  }

  protected override abortAttempt(reason: string): boolean {
    return abortConnectAttempt(this.subchannel, reason);
  }

  /** Connects a subchannel that is IDLE (the channel left idle mode). */
  exitIdle(): void {
    if (!this.closed && this.subchannel.getConnectivityState() === State.IDLE) this.subchannel.startConnecting();
  }

  protected shutdown(): void {
    clearTimeout(this.#pause);
    this.#health?.stop();
    this.subchannel.removeHealthStateWatcher(this.#onHealth);
    this.subchannel.removeConnectivityStateListener(this.#onState);
    this.subchannel.unref();
  }
}
