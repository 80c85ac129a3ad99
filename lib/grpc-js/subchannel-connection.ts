/**
 * The HTTP/2 connection under a grpc-js subchannel, for the liveness watch
 * (lib/anchors/liveness-watch.ts): what it has read, its open streams, an HTTP/2 PING,
 * and the two ways out when it stays silent. grpc-js 1.14 exposes none of this, so this
 * reads private members of its Subchannel (`transport`, `connector`,
 * `transitionToState`) and Http2SubchannelTransport (`session`, `activeCalls`,
 * `messagesReceived`, `handleDisconnect`); @grpc/grpc-js is pinned exactly and an
 * upgrade checks these names (spec/liveness.spec.ts fails when one is gone: no ping, no drop, no connect deadline).
 */
import type { ClientHttp2Session } from 'node:http2';
import { connectivityState } from '@grpc/grpc-js';
import type { SubchannelInterface } from './experimental.js';

/** The private members read here, as grpc-js 1.14.7 names them. */
interface TransportInternals {
  session: ClientHttp2Session;
  activeCalls: Set<unknown>;
  messagesReceived: number;
  handleDisconnect(): void;
}
interface ConnectorInternals {
  session: ClientHttp2Session | null;
}
interface SubchannelInternals {
  transport: TransportInternals | null;
  connector: ConnectorInternals;
  transitionToState(oldStates: connectivityState[], newState: connectivityState, errorMessage?: string): boolean;
}

/** One live HTTP/2 connection; a reconnect makes a new one (compare `id`). */
export interface SubchannelConnection {
  /** The same object for the life of this connection. */
  readonly id: object;
  /** Bytes read from its socket so far: any frame at all, a ping ack included. */
  bytesRead(): number;
  /** HTTP/2 streams open on it now (calls, and the health Watch stream). */
  openStreams(): number;
  /** gRPC messages received on it so far: each one is a DATA frame the server wrote. */
  messagesReceived(): number;
  /** Sends a PING; `acked` hears true on its ACK, false if it could not be sent or the connection closed first. */
  ping(acked: (ok: boolean) => void): void;
  /**
   * Drops it as grpc-js drops a connection whose keepalive ping timed out: its calls end
   * with UNAVAILABLE "Connection dropped", the subchannel goes to IDLE (and the anchor
   * reconnects it at once), and the socket is destroyed.
   */
  drop(): void;
}

function internals(subchannel: SubchannelInterface): SubchannelInternals {
  return subchannel.getRealSubchannel() as unknown as SubchannelInternals;
}

/** One handle per transport: the liveness watch asks for it on every tick. */
const handles = new WeakMap<TransportInternals, SubchannelConnection>();

/** The subchannel's connection while it is READY, else undefined. */
export function subchannelConnection(subchannel: SubchannelInterface): SubchannelConnection | undefined {
  const transport = internals(subchannel).transport;
  if (transport === null || transport === undefined || transport.session.destroyed) return undefined;
  let handle = handles.get(transport);
  if (handle === undefined) {
    handle = handleOf(transport);
    handles.set(transport, handle);
  }
  return handle;
}

function handleOf(transport: TransportInternals): SubchannelConnection {
  const session = transport.session;
  return {
    id: transport,
    // The session's socket is a proxy that allows reading properties such as bytesRead.
    bytesRead: () => session.socket?.bytesRead ?? 0,
    openStreams: () => transport.activeCalls.size,
    messagesReceived: () => transport.messagesReceived,
    ping: (acked) => {
      let sent = false;
      try {
        sent = session.ping((error) => acked(error === null));
      } catch {
        sent = false;
      }
      if (!sent) acked(false);
    },
    drop: () => transport.handleDisconnect(),
  };
}

/**
 * Gives up the subchannel's connection attempt, and starts the next one as soon as it is
 * failed, skipping grpc-js's backoff (the deadline was the wait). grpc-js has no connect
 * deadline: an attempt to a host that drops SYNs waits for the kernel, about two minutes,
 * and one to a host that accepts and then says nothing waits for ever. A handshake under
 * way is destroyed, and grpc-js fails the attempt itself. An attempt still in TCP connect
 * cannot be reached (grpc-js keeps that socket to itself): the subchannel is moved to
 * TRANSIENT_FAILURE, and grpc-js drops the stray socket when the kernel gives up on it.
 * Returns false when it was not connecting.
 */
export function abortConnectAttempt(subchannel: SubchannelInterface, reason: string): boolean {
  const real = subchannel.getRealSubchannel();
  const inner = real as unknown as SubchannelInternals;
  if (real.getConnectivityState() !== connectivityState.CONNECTING) return false;
  const retry = (_s: unknown, _previous: connectivityState, next: connectivityState): void => {
    if (next === connectivityState.CONNECTING) return;
    real.removeConnectivityStateListener(retry);
    if (next === connectivityState.TRANSIENT_FAILURE) real.resetBackoff();
  };
  real.addConnectivityStateListener(retry);
  const pending = inner.connector.session;
  if (pending !== null && pending !== undefined && !pending.destroyed) pending.destroy();
  else inner.transitionToState([connectivityState.CONNECTING], connectivityState.TRANSIENT_FAILURE, reason);
  return true;
}

/** Calls `listener` with the subchannel's state now and at each change; returns the unsubscribe. */
export function followSubchannelState(subchannel: SubchannelInterface, listener: (state: connectivityState) => void): () => void {
  const onChange = (_s: unknown, _previous: connectivityState, next: connectivityState): void => listener(next);
  subchannel.addConnectivityStateListener(onChange);
  listener(subchannel.getConnectivityState());
  return () => subchannel.removeConnectivityStateListener(onChange);
}
