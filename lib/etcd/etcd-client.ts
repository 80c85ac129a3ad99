/**
 * The etcd3 client as anchorpool configures it, shared by discovery and registration:
 * gRPC keepalive to catch frozen connections, a deadline on every unary call (including
 * etcd3's authenticate, which takes options only from its defaults), retries left to the
 * caller's own backoff, and a short per-host circuit breaker so a dead member of several
 * is skipped. Also the one place that recognises etcd's auth refusals.
 *
 * It also owns the client's connections (see EtcdChannels): close() releases every one
 * of them, whatever state etcd left them in.
 */
import { Channel as ChannelImplementation, Client as GrpcClient, Metadata, connectivityState, credentials as grpcCredentials, status, type ChannelInterface, type ChannelOptions } from '@grpc/grpc-js';
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCUnauthenticatedError,
  isRecoverableError,
  type IOptions,
} from 'etcd3';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, noop } from 'cockatiel';
import type { z } from 'zod';
import type { etcdOptionsSchema } from '../discovery/source-options.js';
import { observeCall } from '../grpc-js/observed-call.js';

export type EtcdConnection = z.output<typeof etcdOptionsSchema> & { hosts: string[] };

export interface ClientTuning {
  /** Extra channel args (e.g. one that keeps this client's connection apart from others). */
  readonly grpcOptions?: Record<string, string | number>;
  /** The latest deadline (epoch ms) any call may have right now, on top of dialTimeoutMillis. */
  readonly latestDeadline?: () => number;
}

type Call = ReturnType<ChannelInterface['createCall']>;

/** etcd's rpctypes.MetadataRequireLeaderKey and MetadataHasLeader. */
const REQUIRE_LEADER_KEY = 'hasleader';
const REQUIRE_LEADER_VALUE = 'true';
const WATCH_METHOD = '/etcdserverpb.Watch/Watch';
/** Maintenance.Status: its request is an empty message, and only whether it is refused matters here. */
const STATUS_METHOD = '/etcdserverpb.Maintenance/Status';

/**
 * The connections of one etcd3 client: one grpc-js channel per etcd host, shared by all
 * of etcd3's service clients (KV, Watch, Lease, …) of that host, and released exactly
 * once, by the client's close(). Two grpc-js behaviours make this necessary:
 *
 *   - A channel closed while its connection is in TRANSIENT_FAILURE still makes the
 *     reconnection attempt its backoff timer was waiting for (pick_first had asked it to
 *     keep connecting). If etcd is reachable by then, the connection is established and
 *     owned by nothing: it stays open until etcd closes it. etcd3 closes its service
 *     clients on every retryable error (Host.resetAllServices), and we replaced the
 *     client after failures, so an outage of a few retry cycles left such connections
 *     behind (figures in docs/decisions.md).
 *     Here etcd3's own close() of a service client does nothing (grpc-js reconnects the
 *     one channel by itself), and our release closes a channel only outside
 *     TRANSIENT_FAILURE. pick_first reports TRANSIENT_FAILURE until a connection is
 *     READY again, so a channel released during an outage closes once etcd answers; its
 *     calls were cancelled, so it carries nothing meanwhile.
 *   - channel.close() lets calls in flight run on: a watch stream or a lease keepalive
 *     would keep the connection for ever, a half-open one until keepalive notices.
 *     Every call still open is cancelled at release.
 */
class EtcdChannels {
  readonly #channels = new Map<string, ChannelImplementation>();
  /** Every call still open, with the channel (the etcd host) it runs on and its method. */
  readonly #calls = new Map<Call, { channel: ChannelImplementation; method: string }>();
  #released = false;

  /** A grpc-js `channelFactoryOverride`: the shared channel of `target`, seen through a view etcd3 cannot close. */
  readonly factory = (target: string, credentials: ConstructorParameters<typeof ChannelImplementation>[1], options: ChannelOptions): ChannelInterface => {
    let channel = this.#channels.get(target);
    if (channel === undefined) {
      channel = new ChannelImplementation(target, credentials, options);
      this.#channels.set(target, channel);
      if (this.#released) channel.close();
    }
    const real = channel;
    // After release the view never reaches the channel: grpc-js's getConnectivityState(true)
    // on a closed channel makes its destroyed balancer connect again (etcd3's
    // resetAllServices polls it through Client.waitForReady).
    const closed = (): Error => new Error('the etcd client was closed');
    return {
      close: () => undefined,
      getTarget: () => real.getTarget(),
      getConnectivityState: (tryToConnect) => {
        if (!this.#released) return real.getConnectivityState(tryToConnect);
        if (tryToConnect) throw closed();
        return connectivityState.SHUTDOWN;
      },
      watchConnectivityState: (state, deadline, callback) => {
        if (this.#released) throw closed();
        real.watchConnectivityState(state, deadline, callback);
      },
      getChannelzRef: () => real.getChannelzRef(),
      createCall: (method, deadline, host, parentCall, propagateFlags) => this.#track(real.createCall(method, deadline, host, parentCall, propagateFlags), real, method),
    };
  };

  release(): void {
    if (this.#released) return;
    this.#released = true;
    for (const call of [...this.#calls.keys()]) call.cancelWithStatus(status.CANCELLED, 'the etcd client was closed');
    this.#calls.clear();
    for (const channel of this.#channels.values()) closeOutsideTransientFailure(channel);
  }

  #watchReceivedAt = 0;

  /** How long ago the Watch stream last delivered a message (Infinity: never). */
  watchQuietMillis(): number {
    return this.#watchReceivedAt === 0 ? Infinity : performance.now() - this.#watchReceivedAt;
  }

  /** The channel (etcd host) of the open Watch stream, if there is one. */
  watchChannel(): ChannelImplementation | undefined {
    for (const { channel, method } of this.#calls.values()) if (method === WATCH_METHOD) return channel;
    return undefined;
  }

  #track(call: Call, channel: ChannelImplementation, method: string): Call {
    if (this.#released) {
      call.cancelWithStatus(status.CANCELLED, 'the etcd client was closed');
      return call;
    }
    return observeCall(call, {
      starting: (metadata) => {
        this.#calls.set(call, { channel, method });
        // As etcd's Go client does for watches (WithRequireLeader), on every call: a member
        // cut off from its peers refuses it at once ("etcdserver: no leader") and cancels the
        // watch streams it holds when it loses its leader, instead of answering from a stale
        // state or going silent. etcd grpc-proxy honours it for the watches it serves.
        metadata.set(REQUIRE_LEADER_KEY, REQUIRE_LEADER_VALUE);
      },
      ...(method === WATCH_METHOD && { message: () => void (this.#watchReceivedAt = performance.now()) }),
      status: () => void this.#calls.delete(call),
    });
  }
}

/**
 * Closes `channel` once it is outside TRANSIENT_FAILURE, always from a fresh turn of the
 * event loop: closed from inside a state-change callback, grpc-js's pick_first keeps its
 * listener on the subchannel and connects it again after the close.
 * A channel closed in TRANSIENT_FAILURE still makes the one attempt its backoff timer
 * waits for, and if etcd answers it, the connection belongs to nobody; so a client
 * released during an outage keeps trying (no faster than retryMaxMillis) until etcd
 * answers, and closes then. The source retries on one client and releases it only when
 * it is closed or replaced after a timeout, so there is at most one such channel per
 * closed source. Nothing here keeps the process alive: grpc-js's timers are unref'd.
 */
function closeOutsideTransientFailure(channel: ChannelImplementation): void {
  setImmediate(() => {
    const state = channel.getConnectivityState(false);
    if (state === connectivityState.SHUTDOWN) return;
    if (state !== connectivityState.TRANSIENT_FAILURE) return channel.close();
    channel.watchConnectivityState(state, Infinity, () => closeOutsideTransientFailure(channel));
  });
}

/** An etcd3 client whose close() also releases every connection it made (EtcdChannels). */
export class ManagedEtcd3 extends Etcd3 {
  readonly #channels: EtcdChannels;

  constructor(options: IOptions, channels: EtcdChannels) {
    super(options);
    this.#channels = channels;
  }

  override close(): void {
    super.close();
    this.#channels.release();
  }

  /**
   * Asks the member carrying the watch stream whether it has a leader: 'no-leader' when it
   * refuses a `hasleader` call for that ("etcdserver: no leader"); 'ok' when it answers or
   * fails otherwise (an outage is the watch's and the watchdog's to find); 'no-watch' when
   * no watch stream is open; 'busy' when the stream delivered something within
   * `quietMillis` (a member that delivers events is not cut off, and a busy fleet then
   * costs etcd no checks).
   */
  checkWatchLeader(timeoutMillis: number, quietMillis: number): Promise<'ok' | 'no-leader' | 'no-watch' | 'busy'> {
    const channel = this.#channels.watchChannel();
    if (channel === undefined) return Promise.resolve('no-watch');
    if (this.#channels.watchQuietMillis() < quietMillis) return Promise.resolve('busy');
    const client = new GrpcClient(channel.getTarget(), grpcCredentials.createInsecure(), { channelOverride: channel });
    const metadata = new Metadata();
    metadata.set(REQUIRE_LEADER_KEY, REQUIRE_LEADER_VALUE);
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        STATUS_METHOD,
        () => Buffer.alloc(0),
        (reply: Buffer) => reply,
        Buffer.alloc(0),
        metadata,
        { deadline: Date.now() + timeoutMillis },
        (err) => resolve(err !== null && /no leader/.test(err.details ?? err.message) ? 'no-leader' : 'ok'),
      );
    });
  }
}

export function createEtcdClient(etcd: EtcdConnection, tuning: ClientTuning = {}): ManagedEtcd3 {
  const latest = tuning.latestDeadline ?? (() => Infinity);
  const channels = new EtcdChannels();
  const options: IOptions = {
    hosts: etcd.hosts,
    grpcOptions: {
      // etcd members and `etcd grpc-proxy` answer pings more frequent than their
      // enforcement policy allows with GOAWAY "too many pings" (docs/decisions.md); the default is
      // 5 minutes, which both accept. Without an active call a ping counts as a strike
      // whatever the interval (PermitWithoutStream=false on both), so pings are sent only
      // while a call is open. Half-open streams are the watchdog's to catch.
      'grpc.keepalive_time_ms': etcd.keepaliveTimeMillis,
      'grpc.keepalive_timeout_ms': etcd.keepaliveTimeoutMillis,
      'grpc.keepalive_permit_without_calls': 0,
      // The one channel per host reconnects by itself (EtcdChannels): no slower than our own retries.
      'grpc.initial_reconnect_backoff_ms': etcd.retryInitialMillis,
      'grpc.max_reconnect_backoff_ms': etcd.retryMaxMillis,
      ...tuning.grpcOptions,
      ...etcd.grpcOptions,
      channelFactoryOverride: channels.factory,
    },
    // Streams (watch, lease keepalive) are long-lived and get no deadline.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Math.min(Date.now() + etcd.dialTimeoutMillis, latest()) }),
    faultHandling: {
      global: noop,
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(2) }),
    },
  };
  if (etcd.credentials) options.credentials = etcd.credentials as NonNullable<IOptions['credentials']>;
  if (etcd.auth) options.auth = { username: etcd.auth.username, password: etcd.auth.password };
  return new ManagedEtcd3(options, channels);
}

// etcd's own wording for auth problems that etcd3 has no class for (e.g. auth not enabled).
const AUTH_MESSAGE = /etcdserver: (authentication|user name|permission denied|invalid auth token|root user)/;

/** Whether etcd refused the credentials or the permissions: a config problem, not an outage. */
export function isAuthRefusal(err: unknown): boolean {
  return (
    (err instanceof Error && AUTH_MESSAGE.test(err.message)) ||
    err instanceof EtcdAuthenticationFailedError ||
    err instanceof EtcdPermissionDeniedError ||
    err instanceof EtcdInvalidAuthTokenError ||
    err instanceof GRPCUnauthenticatedError
  );
}

/**
 * What to add to an "unavailable" message when the client has no TLS and etcd closed the
 * connection without a word: that is what a plaintext client gets from an etcd serving TLS
 * only, and grpc-js then reports just "Last error: null" (or "Failed to connect"). A
 * refused or timed-out connection names its own error and gets no hint.
 */
export function plaintextHint(etcd: Pick<EtcdConnection, 'credentials' | 'hosts'>, message: string): string {
  const tls = etcd.credentials !== undefined || etcd.hosts.some((host) => host.startsWith('https://'));
  // A fresh channel says "null"; one that tried before says "Failed to connect" (grpc-js's
  // words for a connection closed before it became ready, without a socket error).
  return !tls && /Last error: (null\b|Failed to connect\b)/.test(message)
    ? ' (etcd closed the connection without answering; if it serves TLS, give etcd.credentials, or --cacert on the command line)'
    : '';
}
