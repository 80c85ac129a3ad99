/**
 * The HTTP/2 connection under a grpc-js subchannel, for the liveness watch
 * (lib/anchors/liveness-watch.ts): what it has read, its open streams, an HTTP/2 PING,
 * and the two ways out: drop a silent connection, give up a hanging attempt. grpc-js 1.14
 * exposes none of this, so this reads private members of its Subchannel (`transport`,
 * `connector`, `transitionToState`) and Http2SubchannelTransport (`session`,
 * `activeCalls`, `messagesReceived`, `handleDisconnect`), and wraps the subchannel's
 * connector. @grpc/grpc-js is pinned exactly; when a name is gone the check turns itself
 * off rather than throw, and spec/liveness.spec.ts fails (no ping, no drop, no deadline).
 */
import type { ClientHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import { connectivityState } from '@grpc/grpc-js';
import type { SubchannelInterface } from './experimental.js';

type Subchannel = ReturnType<SubchannelInterface['getRealSubchannel']>;

/** The private members read here, as grpc-js 1.14.7 names them. */
interface TransportInternals {
  session: ClientHttp2Session;
  activeCalls: Set<unknown>;
  messagesReceived: number;
  handleDisconnect(): void;
  shutdown(): void;
}
interface ConnectorInternals {
  session: ClientHttp2Session | null;
  connect(address: unknown, secureConnector: SecureConnectorInternals, options: unknown): Promise<TransportInternals>;
}
interface SecureConnectorInternals {
  connect(socket: Socket): Promise<unknown>;
  waitForReady(): Promise<void>;
  getCallCredentials(): unknown;
  destroy(): void;
}
interface SubchannelInternals {
  transport: TransportInternals | null;
  connector: ConnectorInternals;
  transitionToState(oldStates: connectivityState[], newState: connectivityState, errorMessage?: string): boolean;
}

/**
 * What a connection's pings have been, shared by every watcher of the connection (channels
 * to the same target share subchannels, so several anchor sets may watch one connection):
 * the ping rule holds per connection, whoever pings.
 */
export interface PingLog {
  /** A PING is out and its ACK has not come. */
  inFlight: boolean;
  /** When the last ACK came (performance.now()); undefined: none yet on this connection. */
  answeredAt: number | undefined;
  /** messagesReceived() when it came. */
  messagesAtAnswer: number;
}

/** One live HTTP/2 connection; a reconnect makes a new one (compare `id`). */
export interface SubchannelConnection {
  /** The same object for the life of this connection. */
  readonly id: object;
  readonly pings: PingLog;
  /** Bytes read from its socket so far: any frame at all, a ping ack included. */
  bytesRead(): number;
  /** HTTP/2 streams open on it now (calls, and the health Watch stream). */
  openStreams(): number;
  /**
   * gRPC messages received on it so far: each one is a DATA frame the server wrote.
   * grpc-js counts them only with channelz on (its default).
   */
  messagesReceived(): number;
  /**
   * Sends a PING and logs it in `pings`; `acked` hears true on its ACK, false if it could
   * not be sent or the connection closed first.
   */
  ping(acked: (ok: boolean) => void): void;
  /**
   * Drops it as grpc-js drops a connection whose keepalive ping timed out: its calls end
   * with UNAVAILABLE "Connection dropped", the subchannel goes to IDLE (and the anchor
   * reconnects it at once), and the socket is destroyed.
   */
  drop(): void;
}

/** grpc-js's own subchannel under a wrapper; undefined for one that wraps none (the specs' fakes). */
function realOf(subchannel: SubchannelInterface): Subchannel | undefined {
  try {
    return subchannel.getRealSubchannel();
  } catch {
    return undefined;
  }
}

function internals(subchannel: SubchannelInterface): SubchannelInternals | undefined {
  return realOf(subchannel) as unknown as SubchannelInternals | undefined;
}

/** Whether a transport has the members read here (an upgrade that renamed one turns the check off, not the process). */
function isTransport(transport: TransportInternals | null | undefined): transport is TransportInternals {
  return (
    transport !== null &&
    transport !== undefined &&
    typeof transport.session?.ping === 'function' &&
    transport.activeCalls instanceof Set &&
    typeof transport.handleDisconnect === 'function'
  );
}

/** One handle per transport: the liveness watch asks for it on every tick, and its ping log is shared. */
const handles = new WeakMap<TransportInternals, SubchannelConnection>();

/** The subchannel's connection while it is READY, else undefined. */
export function subchannelConnection(subchannel: SubchannelInterface): SubchannelConnection | undefined {
  const transport = internals(subchannel)?.transport;
  if (!isTransport(transport) || transport.session.destroyed) return undefined;
  let handle = handles.get(transport);
  if (handle === undefined) {
    handle = handleOf(transport);
    handles.set(transport, handle);
  }
  return handle;
}

function handleOf(transport: TransportInternals): SubchannelConnection {
  const session = transport.session;
  const pings: PingLog = { inFlight: false, answeredAt: undefined, messagesAtAnswer: 0 };
  const messagesReceived = (): number => transport.messagesReceived ?? 0;
  return {
    id: transport,
    pings,
    // The session's socket is a proxy that allows reading properties such as bytesRead.
    bytesRead: () => session.socket?.bytesRead ?? 0,
    openStreams: () => transport.activeCalls.size,
    messagesReceived,
    ping: (acked) => {
      let sent = false;
      try {
        sent = session.ping((error) => {
          pings.inFlight = false;
          if (error === null) {
            pings.answeredAt = performance.now();
            pings.messagesAtAnswer = messagesReceived();
          }
          acked(error === null);
        });
      } catch {
        sent = false;
      }
      if (sent) pings.inFlight = true;
      else acked(false);
    },
    drop: () => transport.handleDisconnect(),
  };
}

/** The connection attempt under way, per subchannel whose attempts are tracked. */
interface Attempt {
  /** Its TCP socket once connected (the TLS and HTTP/2 handshakes run on it). */
  socket: Socket | undefined;
  aborted: boolean;
  /** For an aborted attempt: runs once grpc-js has let go of it. */
  settled?: () => void;
}
const attempts = new WeakMap<SubchannelInternals, Attempt>();
/** How long an aborted handshake may take to be let go of by grpc-js (an HTTP/2 one takes a turn or two). */
const SETTLE_FALLBACK_MILLIS = 100;

/**
 * Makes the subchannel's connection attempts abortable: wraps its connector once, so
 * each attempt's socket is known, and an aborted attempt's late result is dropped
 * instead of reaching the subchannel (grpc-js cannot tell one attempt from the next, so a
 * late failure would fail the attempt after it, and a late success would be kept).
 */
export function trackConnectAttempts(subchannel: SubchannelInterface): void {
  const real = internals(subchannel);
  const connector = real?.connector;
  if (real === undefined || attempts.has(real) || typeof connector?.connect !== 'function') return;
  attempts.set(real, { socket: undefined, aborted: false });
  const connect = connector.connect.bind(connector);
  connector.connect = (address, secureConnector, options) => {
    const attempt: Attempt = { socket: undefined, aborted: false };
    attempts.set(real, attempt);
    const watched: SecureConnectorInternals = {
      connect: (socket) => {
        attempt.socket = socket;
        return secureConnector.connect(socket);
      },
      waitForReady: () => secureConnector.waitForReady(),
      getCallCredentials: () => secureConnector.getCallCredentials(),
      destroy: () => secureConnector.destroy(),
    };
    return new Promise((resolve, reject) => {
      connect(address, watched, options).then(
        (transport) => {
          if (!attempt.aborted) return resolve(transport);
          transport.shutdown();
          attempt.settled?.();
        },
        (error: unknown) => {
          if (!attempt.aborted) return reject(error);
          attempt.settled?.();
        },
      );
    });
  };
}

/**
 * Gives up the subchannel's connection attempt, and starts the next one as soon as it is
 * failed, skipping grpc-js's backoff (the deadline was the wait). grpc-js has no connect
 * deadline: an attempt to a host that drops SYNs waits for the kernel, about two minutes,
 * and one to a host that accepts and then says nothing waits for ever. With the attempts
 * tracked (trackConnectAttempts), its socket is destroyed in the TLS or HTTP/2 handshake;
 * still in TCP connect, the socket is grpc-js's own and waits for the kernel, its result
 * dropped. Returns false when it was not connecting.
 */
export function abortConnectAttempt(subchannel: SubchannelInterface, reason: string): boolean {
  const real = realOf(subchannel);
  if (real === undefined) return false;
  const inner = real as unknown as SubchannelInternals;
  if (real.getConnectivityState() !== connectivityState.CONNECTING || typeof inner.transitionToState !== 'function') return false;
  const attempt = attempts.get(inner);
  // Given up already: grpc-js is letting go of it.
  if (attempt?.aborted === true) return false;
  const retry = (_s: unknown, _previous: connectivityState, next: connectivityState): void => {
    if (next === connectivityState.CONNECTING) return;
    real.removeConnectivityStateListener(retry);
    if (next === connectivityState.TRANSIENT_FAILURE) real.resetBackoff();
  };
  real.addConnectivityStateListener(retry);
  const fail = (): void => void inner.transitionToState([connectivityState.CONNECTING], connectivityState.TRANSIENT_FAILURE, reason);
  if (attempt?.socket !== undefined && !attempt.socket.destroyed) {
    // In a handshake: its socket closes, grpc-js cleans the attempt up (its connector
    // keeps one session slot for all attempts, so the next one starts only after that),
    // then the subchannel fails with our reason. A TLS handshake whose socket closed
    // without an error never settles in grpc-js: the fallback timer fails it then.
    attempt.aborted = true;
    let failed = false;
    const failOnce = (): void => {
      clearTimeout(fallback);
      if (failed) return;
      failed = true;
      fail();
    };
    const fallback = setTimeout(failOnce, SETTLE_FALLBACK_MILLIS);
    fallback.unref();
    attempt.settled = failOnce;
    attempt.socket.destroy();
  } else if (attempt !== undefined) {
    // In TCP connect: the socket is grpc-js's own; its late result is dropped.
    attempt.aborted = true;
    fail();
  } else if (inner.connector?.session) {
    // Not tracked: grpc-js fails the attempt itself when its handshake is destroyed.
    inner.connector.session.destroy();
  } else {
    fail();
  }
  return true;
}
