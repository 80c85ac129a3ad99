/**
 * The etcd3 client as anchorpool configures it, shared by discovery and registration:
 * gRPC keepalive to catch frozen connections, a deadline on every unary call (including
 * etcd3's authenticate, which takes options only from its defaults), retries left to the
 * caller's own backoff, and a short per-host circuit breaker so a dead member of several
 * is skipped. Also the one place that recognises etcd's auth refusals.
 */
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
import type { etcdOptionsSchema } from './config.js';

export type EtcdConnection = z.output<typeof etcdOptionsSchema> & { hosts: string[] };

export interface ClientTuning {
  /** Extra channel args (e.g. one that keeps this client's connection apart from others). */
  readonly grpcOptions?: Record<string, string | number>;
  /** The latest deadline (epoch ms) any call may have right now, on top of dialTimeoutMillis. */
  readonly latestDeadline?: () => number;
}

export function createEtcdClient(etcd: EtcdConnection, tuning: ClientTuning = {}): Etcd3 {
  const latest = tuning.latestDeadline ?? (() => Infinity);
  const options: IOptions = {
    hosts: etcd.hosts,
    grpcOptions: {
      'grpc.keepalive_time_ms': etcd.keepaliveTimeMillis,
      'grpc.keepalive_timeout_ms': etcd.keepaliveTimeoutMillis,
      'grpc.keepalive_permit_without_calls': 1,
      ...tuning.grpcOptions,
      ...etcd.grpcOptions,
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
  return new Etcd3(options);
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
 * only, and grpc-js then reports just "Last error: null". A refused or timed-out connection
 * names its own error and gets no hint.
 */
export function plaintextHint(etcd: Pick<EtcdConnection, 'credentials' | 'hosts'>, message: string): string {
  const tls = etcd.credentials !== undefined || etcd.hosts.some((host) => host.startsWith('https://'));
  return !tls && /Last error: null\b/.test(message)
    ? ' (etcd closed the connection without answering; if it serves TLS, give etcd.credentials, or --cacert on the command line)'
    : '';
}
